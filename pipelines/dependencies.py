"""Checks across jobs: unique names, `needs` that point somewhere, no cycles, finally rules.

Tekton finally tasks cannot have `runAfter`: they all start once every regular task is done.
So a finally job may not `need` anything, and no regular job may `need` a finally job.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.job_sources import JobSource
from pipelines.reading import Collector, suggestion


def check_dependencies(out: Collector, *, jobs: Sequence[JobSource],
                       finally_jobs: Sequence[JobSource]) -> None:
    seen: dict[str, JobSource] = {}
    for source in (*jobs, *finally_jobs):
        first = seen.setdefault(source.job.name, source)
        if first is not source:
            out.error(source.key, _path(source), f"job name `{source.job.name}` is used twice "
                      f"(first at line {first.key.position.line})",
                      hint="job names must be unique across `jobs` and `finally`")
    regular = {source.job.name: source for source in jobs}
    final = {source.job.name for source in finally_jobs}
    for source in finally_jobs:
        if source.needs_node is not None:
            out.error(source.needs_node, f"{_path(source)}.needs",
                      f"finally job `{source.job.name}` cannot have `needs`",
                      hint="finally jobs all run after every other job has finished; "
                           "remove `needs`")
    needed: dict[str, str] = {}
    for source in jobs:
        listed: set[str] = set()
        for name, position in source.needs:
            path = f"{_path(source)}.needs"
            if name in listed:
                out.warn(position, path, f"`{name}` is listed twice in `needs`")
                continue
            listed.add(name)
            if name in final and name not in regular:
                out.error(position, path,
                          f"job `{source.job.name}` needs `{name}`, which is a finally job",
                          hint="finally jobs run after all others; move it to `jobs` "
                               "or drop it from `needs`")
            elif name not in regular:
                out.error(position, path,
                          f"job `{source.job.name}` needs `{name}`, which is not a job",
                          hint=suggestion(name, list(regular)))
            else:
                needed.setdefault(name, source.job.name)
    for name, by in needed.items():
        job = regular[name].job
        if job.allow_failure:
            out.warn(job.position_of("allow_failure"), f"jobs.{name}.allow_failure",
                     f"job `{name}` may fail (`allow_failure`), but `{by}` needs it",
                     hint=f"`{by}` will not run when `{name}` fails")
    _check_cycles(out, regular)


def _check_cycles(out: Collector, jobs: dict[str, JobSource]) -> None:
    """Report each cycle once, as `a -> b -> a`, at the `needs` entry that closes it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    reported: set[frozenset[str]] = set()
    for start, source in jobs.items():
        if state.get(start):
            continue
        # Iterative depth-first search: a 100-job chain must not hit the recursion limit.
        path: list[str] = [start]
        state[start] = 1
        iterators = [iter(source.needs)]
        while iterators:
            advanced = False
            for name, position in iterators[-1]:
                if name not in jobs:
                    continue
                if state.get(name) == 1:
                    cycle = [*path[path.index(name):], name]
                    members = frozenset(cycle)
                    if members not in reported:
                        reported.add(members)
                        out.error(position, f"{_path(jobs[path[-1]])}.needs",
                                  f"dependency cycle: {' -> '.join(cycle)}",
                                  hint="remove one of these `needs`")
                elif not state.get(name):
                    state[name] = 1
                    path.append(name)
                    iterators.append(iter(jobs[name].needs))
                    advanced = True
                    break
            if not advanced:
                state[path.pop()] = 2
                iterators.pop()


def _path(source: JobSource) -> str:
    return f"{'finally' if source.job.is_finally else 'jobs'}.{source.job.name}"
