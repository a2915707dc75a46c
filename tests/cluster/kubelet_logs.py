"""The simulated kubelet's log endpoint: what the API server asks a kubelet for `pods/log`.

`kubectl logs` and `GET .../pods/NAME/log` reach the API server, which proxies to the Node's
kubelet at `status.addresses` and `status.daemonEndpoints.kubeletEndpoint.Port` over HTTPS:
`GET /containerLogs/{namespace}/{pod}/{container}?follow=&tailLines=&timestamps=`. This
serves the real output of the scripts the simulated kubelet ran (one file per container);
a step it did not run has a one-line log saying why. `follow` streams until the container
ends (its `.done` marker) or the pod is gone.

Timestamps (`timestamps=true`) are the time a line is served, not printed: the files keep
no per-line times. The API server does not check a kubelet's serving certificate unless
`--kubelet-certificate-authority` is set, and this endpoint does not check the caller: it
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_PATH = re.compile(r"/containerLogs/([a-z0-9-]+)/([a-z0-9.-]+)/([a-z0-9-]+)")
FOLLOW_POLL_SECONDS = 0.1


def log_file(pods_root: Path, namespace: str, pod: str, container: str) -> Path:
    return pods_root / namespace / pod / "logs" / f"{container}.log"


def done_marker(log: Path) -> Path:
    return log.with_suffix(".done")


def _stamp() -> bytes:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ ").encode()


class KubeletLogServer:
    """Start with `start()` (returns the port), stop with `stop()`."""

    def __init__(self, *, pods_root: Path, cert: Path, key: Path,
                 pod_alive: Callable[[str, str], bool]) -> None:
        self._pods_root = pods_root
        self._pod_alive = pod_alive
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> int:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = self._context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="simulated-kubelet-logs", daemon=True)
        self._thread.start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(request.path)
        match = _PATH.fullmatch(url.path)
        if match is None:
            request.send_error(404, "not a containerLogs path")
            return
        namespace, pod, container = match.groups()
        query = urllib.parse.parse_qs(url.query)
        follow = query.get("follow", ["false"])[0] == "true"
        timestamps = query.get("timestamps", ["false"])[0] == "true"
        tail = query.get("tailLines", [None])[0]
        log = log_file(self._pods_root, namespace, pod, container)
        # A running pod's folder may not exist yet: its first step is only starting.
        if not log.parent.parent.is_dir() and not self._pod_alive(namespace, pod):
            request.send_error(404, f"pod {namespace}/{pod} is not on this node")
            return
        request.send_response(200)
        request.send_header("Content-Type", "text/plain")
        request.end_headers()

        def send(data: bytes) -> None:
            if timestamps:
                data = b"".join(_stamp() + line for line in data.splitlines(keepends=True))
            request.wfile.write(data)
            request.wfile.flush()

        position = 0
        if log.is_file():
            data = log.read_bytes()
            position = len(data)
            if tail is not None and tail.isdigit():
                data = b"".join(data.splitlines(keepends=True)[-int(tail):]) if int(tail) else b""
            send(data)
        while follow and not self._stopping.is_set():
            done = done_marker(log).exists()
            if log.is_file() and log.stat().st_size > position:
                with log.open("rb") as file:
                    file.seek(position)
                    # Whole lines only while the step runs; the rest once it is done.
                    chunk = file.read()
                    if not done and b"\n" in chunk:
                        chunk = chunk[: chunk.rindex(b"\n") + 1]
                    elif not done:
                        chunk = b""
                position += len(chunk)
                if chunk:
                    send(chunk)
                    continue
            if done or not self._pod_alive(namespace, pod):
                break
            time.sleep(FOLLOW_POLL_SECONDS)
