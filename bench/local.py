"""The overhead of `ferry run` over plain bash, on a spec of 10 trivial steps.

    python bench/local.py [--repeat N]

Runs, N times each (medians reported):
- `bash -eo pipefail` on one script holding the 10 commands (what the steps do, no runner);
- `ferry run` on a one-job spec with the same 10 commands as 10 steps, in a fresh git
  repository: Python start, lint, plan, checkout, one process per step, report;
- `python -c "import ci.commands.run"`, to tell the cost of loading Ferry from running.
The overhead is the difference, for the whole run; the target is under 150 ms. The start of
a bare Python interpreter is printed too, as the part no code of ours can remove.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = 10
TARGET_MILLISECONDS = 150


def _commands() -> list[str]:
    return [f"echo step {index} > /dev/null" for index in range(1, STEPS + 1)]


def _spec() -> str:
    lines = ["jobs:", "  bench:", "    steps:"]
    lines += [f"      - run: {command}" for command in _commands()]
    return "\n".join(lines) + "\n"


def _repository(path: Path) -> None:
    (path / ".ci.yaml").write_text(_spec())
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    for args in (["init", "--quiet"], ["add", "."], ["commit", "--quiet", "-m", "bench"]):
        subprocess.run(["git", *identity, *args], cwd=path, check=True, capture_output=True)


def _median_seconds(argv: Sequence[str], *, directory: Path, repeat: int) -> float:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, cwd=directory, env=environment, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs of each (default: 15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as scratch:
        directory = Path(scratch)
        _repository(directory)
        script = directory / "steps.sh"
        script.write_text("\n".join(_commands()) + "\n")
        python = _median_seconds([sys.executable, "-c", "pass"], directory=directory,
                                 repeat=args.repeat)
        bash = _median_seconds(["bash", "-eo", "pipefail", str(script)], directory=directory,
                               repeat=args.repeat)
        ferry = _median_seconds([sys.executable, "-m", "ci.cli", "run"], directory=directory,
                                repeat=args.repeat)
        imports = _median_seconds([sys.executable, "-c", "import ci.cli, ci.commands.run"],
                                  directory=directory, repeat=args.repeat)
    overhead = (ferry - bash) * 1000
    print(f"{STEPS} trivial steps, median of {args.repeat} runs each")
    print(f"  bash, one script:      {bash * 1000:7.1f} ms")
    print(f"  ferry run, 10 steps:   {ferry * 1000:7.1f} ms")
    verdict = "met" if overhead < TARGET_MILLISECONDS else "MISSED"
    print(f"  overhead:              {overhead:7.1f} ms  (ratio {ferry / bash:.1f}x; "
          f"target < {TARGET_MILLISECONDS} ms: {verdict})")
    print(f"  of which Python start: {python * 1000:7.1f} ms  (a bare `python -c pass`)")
    print(f"  of which Ferry's imports: {(imports - python) * 1000:7.1f} ms  "
          "(`import ci.cli, ci.commands.run` less Python start)")
    print(f"  of which running:      {(ferry - imports - bash) * 1000:7.1f} ms  "
          "(checkout, lint, plan, one process per step, report)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
