"""A fake forge in a process of its own, for benchmarks: its CPU is not the measured one's.

    python3 -m bench.forge_process --kind github --port 8080 --files files.json [--validate-first N]

`files.json` is a list of `[repository, ref, path, content]` (ref "*": every commit). The
forge validates requests against the forge's API description, as in the tests, which costs
it about 10 ms of CPU per call: in the receiver's process that would be counted as the
receiver's, and on the same two cores it takes CPU the measured process would have (a real
forge spends it elsewhere). With `--validate-first N` only the first N requests are
validated (a benchmark's warm-up: the later ones have their shape). `forge_process(...)`
starts it as a subprocess and yields its API URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ci.forges.types import ForgeKind
from tests.cluster.processes import Component, free_port, wait_until
from tests.fakeforge.descriptions import API_PREFIXES, description
from tests.fakeforge.forge import FakeForge

START_SECONDS = 120.0  # loading GitHub's API description takes seconds on a busy machine


@contextmanager
def forge_process(kind: ForgeKind, files: Sequence[tuple[str, str, str, str]], *,
                  directory: Path, validate_first: int | None = None
                  ) -> Iterator[tuple[str, Component]]:
    """The fake forge running as a process; yields its API base URL and the process.
    `validate_first`: validate only that many requests (None: all)."""
    seed = directory / f"forge-{kind.value}.json"
    seed.write_text(json.dumps([list(file) for file in files]))
    port = free_port()
    component = Component(
        name=f"fake-{kind.value}",
        argv=[sys.executable, "-m", "bench.forge_process", "--kind", kind.value,
              "--port", str(port), "--files", str(seed),
              *(["--validate-first", str(validate_first)] if validate_first is not None else [])],
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


class _ValidatingFirst:
    """The forge, validating its first `count` API requests and no later ones (the start-up
    probes of `/` do not count)."""

    def __init__(self, forge: FakeForge, count: int) -> None:
        self._forge = forge
        self._left = count
        forge.validate = count > 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("path") != "/":
            self._left -= 1
        await self._forge(scope, receive, send)
        if self._left <= 0:
            self._forge.validate = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=[kind.value for kind in ForgeKind], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--files", type=Path, required=True)
    parser.add_argument("--validate-first", type=int, metavar="N",
                        help="validate only the first N requests (default: all)")
    args = parser.parse_args()
    kind = ForgeKind(args.kind)
    forge = FakeForge(kind)
    for repository, ref, path, content in json.loads(args.files.read_text()):
        forge.add_file(repository, ref, path, content)
    started = time.perf_counter()
    description(kind)  # before listening: the first request must not pay for it
    print(f"API description loaded in {time.perf_counter() - started:.1f}s", flush=True)
    app = forge if args.validate_first is None else _ValidatingFirst(forge, args.validate_first)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off",
                access_log=False)


if __name__ == "__main__":
    main()
