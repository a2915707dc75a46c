"""A fake forge in a process of its own, for benchmarks: its CPU is not the measured one's.

    python3 -m bench.forge_process --kind github --port 8080 --files files.json

`files.json` is a list of `[repository, ref, path, content]` (ref "*": every commit). The
forge validates every request against the forge's API description, as in the tests, which
costs it a few ms of CPU per call: in the receiver's process that would be counted as the
receiver's. `forge_process(...)` starts it as a subprocess and yields its API URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from ci.forges.types import ForgeKind
from tests.cluster.processes import Component, free_port, wait_until
from tests.fakeforge.descriptions import API_PREFIXES, description
from tests.fakeforge.forge import FakeForge

START_SECONDS = 120.0  # loading GitHub's API description takes seconds on a busy machine


@contextmanager
def forge_process(kind: ForgeKind, files: Sequence[tuple[str, str, str, str]], *,
                  directory: Path) -> Iterator[tuple[str, Component]]:
    """The fake forge running as a process; yields its API base URL and the process."""
    seed = directory / f"forge-{kind.value}.json"
    seed.write_text(json.dumps([list(file) for file in files]))
    port = free_port()
    component = Component(
        name=f"fake-{kind.value}",
        argv=[sys.executable, "-m", "bench.forge_process", "--kind", kind.value,
              "--port", str(port), "--files", str(seed)],
        log_path=directory / f"forge-{kind.value}.log",
        cwd=Path(__file__).resolve().parents[1],
    )
    root = f"http://127.0.0.1:{port}"
    component.start()
    try:
        wait_until(lambda: _answers(root), what="the fake forge", timeout=START_SECONDS,
                   watching=[component])
        yield f"{root}{API_PREFIXES[kind]}", component
    finally:
        component.stop()


def _answers(root: str) -> bool:
    try:
        httpx.get(root, timeout=1.0)
    except httpx.TransportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=[kind.value for kind in ForgeKind], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--files", type=Path, required=True)
    args = parser.parse_args()
    kind = ForgeKind(args.kind)
    forge = FakeForge(kind)
    for repository, ref, path, content in json.loads(args.files.read_text()):
        forge.add_file(repository, ref, path, content)
    started = time.perf_counter()
    description(kind)  # before listening: the first request must not pay for it
    print(f"API description loaded in {time.perf_counter() - started:.1f}s", flush=True)
    uvicorn.run(forge, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off",
                access_log=False)


if __name__ == "__main__":
    main()
