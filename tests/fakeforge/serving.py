"""Serve a fake forge over real sockets on 127.0.0.1, for tests that run Ferry as a process."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from tests.fakeforge.descriptions import API_PREFIXES
from tests.fakeforge.forge import FakeForge

STARTUP_TIMEOUT_SECONDS = 10.0


@contextlib.contextmanager
def serve(forge: FakeForge) -> Iterator[str]:
    """Run `forge` on a free port; yields its API base URL."""
    config = uvicorn.Config(forge, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"fake-{forge.kind.value}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake forge did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{API_PREFIXES[forge.kind]}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
