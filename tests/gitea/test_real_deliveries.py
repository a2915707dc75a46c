"""What the real Gitea sends, read by Ferry's Gitea parser: no cluster, just Gitea's own
deliveries for a real `git push`, a tag, a deleted branch and a pull request, caught by a
listener on 127.0.0.1 and checked the way the receiver checks them."""

from __future__ import annotations

import contextlib
import http.server
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ci.forges.deliveries import Ignored
from ci.forges.registry import detect_forge
from ci.forges.types import ForgeKind
from pipelines.events import Event, EventKind
from tests.cluster.processes import free_port
from tests.gitea.api import GiteaApi
from tests.gitea.pushing import WorkingCopy

SECRET = "real-gitea-secret"
WAIT_SECONDS = 60.0


@dataclass
class Caught:
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def events(self) -> list[str]:
        return [headers["x-gitea-event"] for headers, _ in self.deliveries]

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.deliveries) < count:
            assert time.monotonic() < deadline, f"only {self.events()} arrived"
            time.sleep(0.05)


@contextlib.contextmanager
def listening() -> Iterator[tuple[str, Caught]]:
    caught = Caught()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            caught.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/hooks", caught
    finally:
        server.shutdown()
        server.server_close()


def test_real_gitea_deliveries_are_detected_verified_and_parsed_as_gitea(
    gitea_api: GiteaApi, tmp_path: Path
) -> None:
    owner = gitea_api.create_user(f"dev-{secrets.token_hex(3)}")
    as_owner = gitea_api.as_user(owner)
    repository = as_owner.create_repo("app")
    with listening() as (url, caught):
        as_owner.create_hook(repository["full_name"], url, SECRET)
        work = WorkingCopy(tmp_path / "work", repository["clone_url"], owner)
        sha = work.commit({".ci.yaml": "jobs: {}\n"})
        work.push_branch("main")
        caught.wait_for(2)
        work.checkout("feature")
        feature = work.commit({"feature.txt": "new\n"})
        work.push_branch("feature")
        caught.wait_for(4)
        as_owner.create_pull(repository["full_name"], head="feature")
        caught.wait_for(5)
        work.push_tag("v1.0.0")
        tag_object = work.git("rev-parse", "refs/tags/v1.0.0")
        caught.wait_for(7)
        work.delete_branch("feature")
        caught.wait_for(8)
        deadline = time.monotonic() + WAIT_SECONDS
        while "delete" not in caught.events() and time.monotonic() < deadline:
            time.sleep(0.05)

    # A new branch (the first one too) or tag is `create` and `push`; a deletion only
    # `delete`. Gitea's queue delivers them concurrently, in no fixed order.
    assert set(caught.events()) == {"create", "push", "pull_request", "delete"}
    parsed = []
    for headers, body in caught.deliveries:
        provider = detect_forge(headers)
        # Gitea also sends X-GitHub-Event and X-Gogs-Event: it must not pass for GitHub.
        assert "x-github-event" in headers
        assert provider is not None and provider.kind is ForgeKind.GITEA
        provider.verify(headers, body, SECRET)
        parsed.append(provider.parse(headers, body).parsed)
    events = [p for p in parsed if isinstance(p, Event)]
    pushes = {(e.branch, e.sha) for e in events if e.kind is EventKind.PUSH}
    assert pushes == {("main", sha), ("feature", feature)}
    assert all(e.repository == repository["full_name"] for e in events)
    assert all(e.repository_url == repository["clone_url"] for e in events)
    [pull] = [e for e in events if e.kind is EventKind.PULL_REQUEST]
    assert pull.pull_request is not None and not pull.pull_request.from_fork
    assert (pull.sha, pull.pull_request.head_branch) == (feature, "feature")
    [tag] = [e for e in events if e.kind is EventKind.TAG]
    # Gitea's `after` for an annotated tag is the tag object; Ferry runs, and reports on, the
    # commit it points at (`head_commit.id`), which a user looks at.
    [tag_push] = [json.loads(body) for headers, body in caught.deliveries
                  if "refs/tags/" in json.loads(body).get("ref", "")
                  and headers.get("x-gitea-event") == "push"]
    assert tag_push["after"] == tag_object != feature
    assert tag.tag == "v1.0.0"
    assert tag.sha == feature
    # `create` and `delete` start nothing.
    assert sum(isinstance(p, Ignored) for p in parsed) >= 4
