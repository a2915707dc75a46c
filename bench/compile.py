"""Lint + plan + compile of a 20-job spec against `yaml.load` with CSafeLoader; and `to_yaml`.

    python3 -m bench.compile [--rounds N]

The ratio is the cost of everything Ferry does with a spec (parse with positions, lint, filter,
plan, compile to a PipelineRun dict) relative to just reading the same text with libyaml.
Target: <= 2. Writing the run as YAML (`to_yaml`, for `ferry render`; the webhook sends the
dict) must cost no more than compiling it. Target: to_yaml / compile <= 1. Also printed: the
receiver's cost for a spec text it has met before (`pipelines.preparing.Specs` lints each
text once), plan + compile only; and the first figure's parts (parsing into nodes with
positions, linting, planning and compiling), where to look first.

Each round times them one after the other, in CPU time of this process: on a loaded
machine, wall-clock medians taken minutes apart measure the neighbours, not the code.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import yaml

from pipelines.events import Event, EventKind
from pipelines.linting import lint_spec
from pipelines.parsing import parse_yaml
from pipelines.planning import Plan
from pipelines.preparing import Prepared, Specs, prepare
from pipelines.tekton import CompileOptions, compile_pipeline_run, to_yaml

EVENT = Event(
    kind=EventKind.PUSH,
    repository="acme/widget",
    repository_url="https://git.example.com/acme/widget.git",
    sha="3f786850e387550fdab836ed7e6dc881de23001b",
    ref="refs/heads/main",
    branch="main",
    changed_files=("src/widget/core.py",),
)


def spec_text(jobs: int = 20) -> str:
    """A realistic spec: a DAG in layers, env, services, secrets, `when`, a finally job."""
    lines = ["env:", "  LANG: C.UTF-8", "jobs:"]
    for index in range(jobs):
        lines += [
            f"  job-{index}:",
            "    image: python:3.12",
            "    timeout: 20m",
            "    env:",
            f"      JOB_INDEX: '{index}'",
            "      PIP_CACHE_DIR: /workspace/source/.pip",
        ]
        if index >= 4:
            lines += [f"    needs: [job-{index - 4}, job-{index - 3}]"]
        if index % 5 == 0:
            lines += ["    services:", "      db:", "        image: postgres:16",
                      "        env:", "          POSTGRES_PASSWORD: test"]
        if index % 7 == 0:
            lines += ["    secrets:", "      TOKEN: deploy-token/token"]
        if index % 6 == 0:
            lines += ["    when:", "      branch: [main, 'release/*']", "      paths: ['src/**']"]
        lines += [
            "    steps:",
            "      - name: install",
            "        run: pip install -e '.[test]'",
            "      - name: test",
            "        run: |",
            f"          python -m pytest -q tests/part_{index}",
            "          echo done",
        ]
    lines += ["finally:", "  notify:", "    steps:", "      - run: echo finished"]
    return "\n".join(lines) + "\n"


def cpu_seconds(function: Callable[[], object]) -> float:
    start = time.process_time()
    function()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    text = spec_text()

    def ferry() -> dict[str, Any]:
        prepared = prepare(text, event=EVENT)  # what `ferry render` and the receiver call
        assert isinstance(prepared, Prepared) and isinstance(prepared.outcome, Plan)
        return compile_pipeline_run(prepared.outcome, EVENT, options=CompileOptions())

    specs = Specs()

    def receiver() -> dict[str, Any]:
        prepared = specs.prepare(text, event=EVENT)  # the text met before: planned only
        assert isinstance(prepared, Prepared) and isinstance(prepared.outcome, Plan)
        return compile_pipeline_run(prepared.outcome, EVENT, options=CompileOptions())

    def libyaml() -> object:
        return yaml.load(text, Loader=yaml.CSafeLoader)

    def parse() -> object:  # the first part of `ferry`: the text into nodes with positions
        return parse_yaml(text, filename=".ci.yaml")

    def lint() -> object:  # parse and lint: the part `Specs` does once per text
        return lint_spec(text)

    run = ferry()
    to_yaml(run), libyaml(), receiver()  # warm caches (glob regexes, imports, Specs)
    measured: dict[str, Callable[[], object]] = {
        "ferry": ferry, "yaml": libyaml, "dump": lambda: to_yaml(run), "receiver": receiver,
        "parse": parse, "lint": lint,
    }
    timings: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(args.rounds):  # interleaved, so each sees the same machine
        for name, function in measured.items():
            timings[name].append(cpu_seconds(function))
    ferry_seconds, yaml_seconds, dump_seconds, receiver_seconds, parse_seconds, lint_seconds = (
        statistics.median(timings[name]) for name in measured)
    print(f"spec: 20 jobs, {len(text)} bytes; {args.rounds} rounds, CPU time, medians")
    print(f"lint + plan + compile: {ferry_seconds * 1000:.2f} ms")
    print(f"yaml.load CSafeLoader: {yaml_seconds * 1000:.2f} ms")
    print(f"ratio:                 {ferry_seconds / yaml_seconds:.2f} (target <= 2)")
    print(f"  of which parsing (nodes with positions): {parse_seconds * 1000:.2f} ms "
          f"({parse_seconds / yaml_seconds:.2f} of yaml.load), linting "
          f"{(lint_seconds - parse_seconds) * 1000:.2f} ms, planning and compiling "
          f"{(ferry_seconds - lint_seconds) * 1000:.2f} ms")
    print(f"to_yaml of the run:    {dump_seconds * 1000:.2f} ms, "
          f"{dump_seconds / ferry_seconds:.2f} of the compile (target <= 1)")
    print(f"receiver, spec text met before (Specs: plan + compile): "
          f"{receiver_seconds * 1000:.2f} ms, {receiver_seconds / yaml_seconds:.2f} of yaml.load")


if __name__ == "__main__":
    main()
