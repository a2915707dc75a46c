"""Sample a benchmark's process with py-spy, and summarise where its time went.

`sampled(pid, path)` runs `py-spy record --gil --pid` for the block (py-spy is a tool, not a
dependency: `pip install py-spy`): only the thread holding the GIL is sampled, so the samples
are the process's Python CPU time, not threads waiting on sockets or locks. `summary(path)`
reads py-spy's raw output (one line per stack, `frame;frame;... count`) and gives the
functions with the most samples on top of the stack ("self"), which package those samples
fall in, and, for each sample, the innermost of Ferry's own functions on its stack (the Ferry
code that asked for the work, whoever's code then did it).
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RATE = 100  # samples per second: enough for shares of a few %, little overhead
FERRY_PACKAGES = ("ci", "webhooks", "pipelines")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


@contextmanager
def sampled(pid: int, path: Path | None) -> Iterator[None]:
    """py-spy on `pid` for the block, into `path` (None: no profiling, the block just runs)."""
    if path is None:
        yield
        return
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    process = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(RATE),
         "--gil", "--nonblocking", "--output", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    time.sleep(0.5)  # py-spy attaches
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        _, errors = process.communicate(timeout=60)
        if process.returncode not in (0, -signal.SIGINT) or not path.exists():
            raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')}")


def _frames(stack: str) -> list[tuple[str, str]]:
    """(function, file) of each frame, outermost first."""
    frames = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        if match:
            frames.append((match["function"], match["file"]))
        else:
            frames.append((frame, ""))
    return frames


def _package(file: str) -> str:
    """The top-level package (or module) a frame's file belongs to, as py-spy shortens it."""
    parts = Path(file).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    elif parts and parts[0] == "/":
        parts = parts[-2:]  # the standard library: its module name is enough
    if not parts:
        return "?"
    head = parts[0].removesuffix(".py")
    return head if head not in ("<frozen importlib._bootstrap>",) else "importlib"


def summary(path: Path, *, top: int = 12) -> list[str]:
    """Lines: samples, the top functions by self samples, self samples by package, and the
    share under each of Ferry's functions that a thread or the event loop calls first."""
    counts: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    ferry_entry: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        total += samples
        frames = _frames(stack)
        function, file = frames[-1]
        counts[f"{function} ({file})"] += samples
        packages[_package(file)] += samples
        for function, file in reversed(frames):
            if _package(file) in FERRY_PACKAGES:
                ferry_entry[f"{function} ({file})"] += samples
                break
        else:
            ferry_entry["(no Ferry frame on the stack)"] += samples
    if total == 0:
        return ["no samples"]

    def share(value: int) -> str:
        return f"{value / total * 100:5.1f}%"

    lines = [f"{total} samples at {RATE}/s of the thread holding the GIL",
             "top functions (self):"]
    lines += [f"  {share(n)}  {name}" for name, n in counts.most_common(top)]
    lines.append("self samples by package:")
    lines += [f"  {share(n)}  {name}" for name, n in packages.most_common(top)]
    lines.append("by the innermost Ferry function on the stack (what Ferry code asked for it):")
    lines += [f"  {share(n)}  {name}" for name, n in ferry_entry.most_common(top)]
    return lines
