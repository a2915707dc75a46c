"""`ferry run` against plain bash and against nektos/act, on 10 trivial steps.

    python3 -m bench.local [--repeat N] [--no-act]

Runs, N times each, in alternation (medians reported):
- `bash -eo pipefail` on one script holding the 10 commands (what the steps do, no runner);
- `ferry run` on a one-job spec with the same 10 commands as 10 steps, in a fresh git
  repository: Python start, lint, plan, checkout, one process per step, report;
- nektos/act v0.2.89 running the same 10 steps as a GitHub Actions workflow on the host
  (`-P ubuntu-latest=-self-hosted`, no network: version check off, offline actions, no pull,
  no cache server). act is built once with `go install` into ~/.cache/ferry-bench when Go is
  present (about 1.5 minutes cold); without Go the act line is left out and says why;
- `python -c "import ci.cli, ci.commands.run"`, to tell the cost of loading Ferry from running,
  split by `-X importtime` into Ferry's modules (and of them, CPython building dataclasses:
  none on this path since its records became `msgspec.Struct`s), PyYAML, msgspec and the
  standard library.
Goals: `ferry run` no slower than act (ratio <= 1.0) and under 100 ms over bash. The start of a
bare Python interpreter is printed too, as the part no code of ours can remove.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.bytecode import bytecode_environment

ROOT = Path(__file__).resolve().parents[1]
STEPS = 10
TARGET_MILLISECONDS = 100
ACT_VERSION = "v0.2.89"


def _commands() -> list[str]:
    return [f"echo step {index} > /dev/null" for index in range(1, STEPS + 1)]


def _spec() -> str:
    lines = ["jobs:", "  bench:", "    steps:"]
    lines += [f"      - run: {command}" for command in _commands()]
    return "\n".join(lines) + "\n"


def _workflow() -> str:
    lines = ["on: push", "jobs:", "  bench:", "    runs-on: ubuntu-latest", "    steps:"]
    lines += [f"      - run: {command}" for command in _commands()]
    return "\n".join(lines) + "\n"


def _repository(path: Path) -> None:
    (path / ".ci.yaml").write_text(_spec())
    workflows = path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bench.yml").write_text(_workflow())
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    for args in (["init", "--quiet"], ["add", "."], ["commit", "--quiet", "-m", "bench"]):
        subprocess.run(["git", *identity, *args], cwd=path, check=True, capture_output=True)


def _act_binary() -> tuple[Path | None, str]:
    """act, built once; or None and why not."""
    cached = Path.home() / ".cache" / "ferry-bench" / f"act-{ACT_VERSION}"
    binary = cached / "act"
    if binary.exists():
        return binary, f"act {ACT_VERSION}"
    go = shutil.which("go")
    if go is None:
        return None, "act left out: no Go on this machine to build it"
    print(f"building act {ACT_VERSION} once with `go install` (about 1.5 minutes cold) ...",
          file=sys.stderr)
    cached.mkdir(parents=True, exist_ok=True)
    build = subprocess.run(
        [go, "install", f"github.com/nektos/act@{ACT_VERSION}"],
        env={**os.environ, "GOBIN": str(cached), "CGO_ENABLED": "0"},
        capture_output=True, text=True, check=False,
    )
    if build.returncode != 0 or not binary.exists():
        return None, f"act left out: its build failed: {build.stderr.strip()[-400:]}"
    return binary, f"act {ACT_VERSION}"


def _act_argv(binary: Path) -> list[str]:
    return [str(binary), "push", "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
            "--pull=false", "--no-cache-server"]


def _environment(directory: Path) -> dict[str, str]:
    # Bytecode as an installed Ferry has it (`bench.bytecode`), beside the repository.
    return {**os.environ, **bytecode_environment(directory.parent), "PYTHONPATH": str(ROOT),
            "ACT_DISABLE_VERSION_CHECK": "1"}


def _seconds(argv: Sequence[str], *, directory: Path) -> float:
    environment = _environment(directory)
    started = time.perf_counter()
    subprocess.run(argv, cwd=directory, env=environment, check=True, capture_output=True)
    return time.perf_counter() - started


_DATACLASS_CLOCK = """
import dataclasses, time
spent = [0.0]
build = dataclasses._process_class
def timed(*args, **options):
    started = time.perf_counter()
    try:
        return build(*args, **options)
    finally:
        spent[0] += time.perf_counter() - started
dataclasses._process_class = timed
import ci.cli, ci.commands.run
print(spent[0])
"""


def _importtime_rows(listing: str) -> Iterator[tuple[int, int, str]]:
    """(self, cumulative) microseconds and the module's name, indented by its nesting, of each
    line `-X importtime` wrote."""
    for line in listing.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            _, self_us, cumulative_us, name = line.replace("|", ":").split(":")
            yield int(self_us), int(cumulative_us), name


# The libraries on `ferry run`'s path, each charged with the modules it is first to import.
_LIBRARIES = ("yaml", "msgspec")
_GROUPS = ("ferry", *_LIBRARIES, "stdlib")


def _import_breakdown(directory: Path, *, repeat: int) -> dict[str, float]:
    """Milliseconds of `import ci.cli, ci.commands.run` by whose modules they are, medians:
    Ferry's modules' self times (as `-X importtime` gives them), each library's package with
    what it imports first (its cumulative time), the standard library the rest; and of them,
    CPython building the dataclasses."""
    parts: dict[str, list[float]] = {group: [] for group in (*_GROUPS, "dataclasses")}
    for _ in range(repeat):
        listing = _output([sys.executable, "-X", "importtime", "-c",
                           "import ci.cli, ci.commands.run"], directory=directory, stderr=True)
        totals = dict.fromkeys(_GROUPS, 0.0)
        after_site = False
        for self_us, cumulative_us, indented in _importtime_rows(listing):
            name = indented.strip()
            if not after_site:  # the interpreter's start: `site` ends it
                after_site = name == "site"
                continue
            if name.split(".")[0] in ("ci", "pipelines"):
                totals["ferry"] += self_us / 1000
            elif name in _LIBRARIES:  # the library's package, with all it imports first
                totals[name] += cumulative_us / 1000
            totals["stdlib"] += self_us / 1000  # every row; the others' taken off below
        totals["stdlib"] -= sum(totals[group] for group in ("ferry", *_LIBRARIES))
        for group, value in totals.items():
            parts[group].append(value)
        clock = _output([sys.executable, "-c", _DATACLASS_CLOCK], directory=directory)
        parts["dataclasses"].append(float(clock) * 1000)
    return {group: statistics.median(values) for group, values in parts.items()}


def _start_breakdown(directory: Path, *, repeat: int) -> dict[str, float]:
    """Milliseconds of what `site` imports at the start of every Python process (the .pth
    files' modules: an editable install's finder, whatever the machine adds), medians, for
    those over 1 ms."""
    seen: dict[str, list[float]] = {}
    for _ in range(repeat):
        listing = _output([sys.executable, "-X", "importtime", "-c", "pass"],
                          directory=directory, stderr=True)
        for _, cumulative_us, name in _importtime_rows(listing):
            if name.startswith("   ") and not name.startswith("    "):  # site's own imports
                seen.setdefault(name.strip(), []).append(cumulative_us / 1000)
    medians = {name: statistics.median(values) for name, values in seen.items()}
    return {name: value for name, value in medians.items() if value >= 1.0}


def _output(argv: Sequence[str], *, directory: Path, stderr: bool = False) -> str:
    done = subprocess.run(argv, cwd=directory, env=_environment(directory), check=True,
                          capture_output=True, text=True)
    return done.stderr if stderr else done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs of each (default: 15)")
    parser.add_argument("--no-act", action="store_true", help="leave act out")
    args = parser.parse_args()
    act, act_note = (None, "act left out (--no-act)") if args.no_act else _act_binary()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as scratch:
        directory = Path(scratch) / "repository"
        directory.mkdir()
        _repository(directory)
        script = directory / "steps.sh"
        script.write_text("\n".join(_commands()) + "\n")
        commands: dict[str, list[str]] = {
            "python": [sys.executable, "-c", "pass"],
            "python -S": [sys.executable, "-S", "-c", "pass"],
            "bash": ["bash", "-eo", "pipefail", str(script)],
            "ferry": [sys.executable, "-m", "ci.cli", "run"],
            "imports": [sys.executable, "-c", "import ci.cli, ci.commands.run"],
        }
        if act is not None:
            commands["act"] = _act_argv(act)
        for argv in commands.values():  # warm caches (pyc, page cache) before timing
            _seconds(argv, directory=directory)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):  # alternate, so a busy moment costs every runner alike
            for name, argv in commands.items():
                times[name].append(_seconds(argv, directory=directory))
        breakdown = _import_breakdown(directory, repeat=5)
        start = _start_breakdown(directory, repeat=5)
    median = {name: statistics.median(values) for name, values in times.items()}
    python, bash, ferry, imports = (median[k] for k in ("python", "bash", "ferry", "imports"))
    overhead = (ferry - bash) * 1000
    print(f"{STEPS} trivial steps, median of {args.repeat} runs each, in alternation")
    print(f"  bash, one script:      {bash * 1000:7.1f} ms")
    print(f"  ferry run, 10 steps:   {ferry * 1000:7.1f} ms")
    if "act" in median:
        ratio = ferry / median["act"]
        verdict = "met" if ratio <= 1.0 else "MISSED"
        print(f"  {act_note}, 10 steps: {median['act'] * 1000:7.1f} ms  "
              f"(ferry/act {ratio:.2f}; goal <= 1.0: {verdict})")
        print("    act runs the steps in its working directory; ferry run also checks the "
              "commit out into a fresh workspace first (part of 'running' below)")
    else:
        print(f"  {act_note}")
    verdict = "met" if overhead < TARGET_MILLISECONDS else "MISSED"
    print(f"  overhead over bash:    {overhead:7.1f} ms  (ratio {ferry / bash:.1f}x; "
          f"goal < {TARGET_MILLISECONDS} ms: {verdict})")
    print(f"  of which Python start: {python * 1000:7.1f} ms  (a bare `python -c pass`; "
          f"{median['python -S'] * 1000:.1f} with `-S`: no site-packages, no .pth files)")
    if start:
        print("      of it, what `site` imports (the .pth files': an editable install's "
              "finder, this machine's own): " + ", ".join(
            f"{name} {value:.1f} ms" for name, value in sorted(start.items(),
                                                               key=lambda item: -item[1])))
    print(f"  of which Ferry's imports: {(imports - python) * 1000:7.1f} ms  "
          "(`import ci.cli, ci.commands.run` less Python start); by `-X importtime`, medians "
          "of 5:")
    print(f"      Ferry's modules {breakdown['ferry']:.1f} ms, of which CPython building their "
          f"dataclasses {breakdown['dataclasses']:.1f}; PyYAML {breakdown['yaml']:.1f}; "
          f"msgspec {breakdown['msgspec']:.1f} (each with what it is first to import); "
          f"the standard library {breakdown['stdlib']:.1f}")
    print(f"  of which running:      {(ferry - imports - bash) * 1000:7.1f} ms  "
          "(checkout, lint, plan, one process per step, report)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
