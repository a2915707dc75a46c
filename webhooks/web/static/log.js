// The job page: search within the logs, and the live tail of running steps (Server-Sent
// Events from .../stream; each line is text, never HTML). Without JavaScript the page is
// whole, only not live.
(function () {
  "use strict";
  var search = document.getElementById("log-search");
  if (search) {
    search.parentNode.parentNode.hidden = false;
    search.addEventListener("input", function () {
      var query = search.value.toLowerCase(), shown = 0;
      document.querySelectorAll(".log .line").forEach(function (line) {
        var hit = !query || line.textContent.toLowerCase().indexOf(query) >= 0;
        line.classList.toggle("hidden", !hit);
        if (hit && query) { shown += 1; line.closest("details").open = true; }
      });
      document.getElementById("log-search-count").textContent = query ? shown + " lines" : "";
    });
  }
  document.querySelectorAll(".log[data-log-state=live][data-stream]").forEach(function (log) {
    var step = log.dataset.step, next = parseInt(log.dataset.nextLine, 10) || 1, partial = "";
    function add(text) {
      var line = document.createElement("div"), ln = document.createElement("a");
      var body = document.createElement("span");
      line.className = "line"; line.id = step + "-L" + next;
      ln.className = "ln"; ln.href = "#" + line.id; ln.textContent = String(next);
      body.className = "text"; body.textContent = text.replace(/\x1b\[[0-?]*[ -\/]*[@-~]/g, "");
      line.appendChild(ln); line.appendChild(body); log.appendChild(line); next += 1;
    }
    var source = new EventSource(log.dataset.stream);
    source.addEventListener("log", function (event) {
      var lines = (partial + JSON.parse(event.data).text).split("\n");
      partial = lines.pop();
      lines.forEach(add);
    });
    source.addEventListener("end", function (event) {
      source.close();
      if (partial) { add(partial); partial = ""; }
      var end = JSON.parse(event.data);
      log.dataset.logState = end.lost ? "lost" : end.archived ? "archived" : "live";
      var note = log.parentNode.querySelector(".live-note");
      if (note) { note.textContent = "The step has ended."; }
    });
    source.addEventListener("error", function (event) {
      if (event.data) { source.close(); }  // the server's own error event: do not retry
    });
  });
})();
