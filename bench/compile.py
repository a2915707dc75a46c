"""Median time to lint + plan + compile a 20-job spec, against `yaml.load` with CSafeLoader.

    python3 -m bench.compile [--rounds N]

The ratio is the cost of everything Ferry does with a spec (parse with positions, lint, filter,
plan, compile to a PipelineRun dict) relative to just reading the same text with libyaml.
Target: <= 3. `to_yaml` is timed separately: the webhook sends the dict, not YAML.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import yaml

from pipelines.events import Event, EventKind
from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
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


def median_seconds(function: Callable[[], object], rounds: int) -> float:
    function()  # warm caches (glob regexes, imports)
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    text = spec_text()

    def ferry() -> object:
        spec, _ = load_spec(text)
        planned = plan(spec, EVENT)
        assert isinstance(planned, Plan)
        return compile_pipeline_run(planned, EVENT, options=CompileOptions())

    def libyaml() -> object:
        return yaml.load(text, Loader=yaml.CSafeLoader)

    run = ferry()
    ferry_seconds = median_seconds(ferry, args.rounds)
    yaml_seconds = median_seconds(libyaml, args.rounds)
    dump_seconds = median_seconds(lambda: to_yaml(run), max(args.rounds // 4, 5))  # type: ignore[arg-type]
    print(f"spec: 20 jobs, {len(text)} bytes; {args.rounds} rounds")
    print(f"lint + plan + compile: {ferry_seconds * 1000:.2f} ms (median)")
    print(f"yaml.load CSafeLoader: {yaml_seconds * 1000:.2f} ms (median)")
    print(f"ratio:                 {ferry_seconds / yaml_seconds:.2f} (target <= 3)")
    print(f"to_yaml of the run:    {dump_seconds * 1000:.2f} ms (median, not in the ratio)")


if __name__ == "__main__":
    main()
