"""`ferry logs RUN [JOB[/STEP]] [-f]`: a run's step logs, masked as archived, colours kept;
live while a step runs (`-f` follows it as it prints, then the archive takes over)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO

from ci.commands.reading import (
    CliError,
    ReadApi,
    add_connection_arguments,
    fail,
    parse_run,
    target,
)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("logs", help="a run's step logs, live or archived")
    parser.add_argument("run", metavar="RUN", help="the run's name (`ferry runs`), or NS/RUN")
    parser.add_argument("step", nargs="?", metavar="JOB[/STEP]",
                        help="one job (all its steps) or one step; default: every step")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="follow running steps as they print")
    add_connection_arguments(parser)
    parser.set_defaults(handler=run)


def _chosen(found: dict[str, Any], wanted: str | None) -> list[tuple[str, str]]:
    job_name, _, step_name = (wanted or "").partition("/")
    chosen: list[tuple[str, str]] = []
    for job in found.get("jobs") or ():
        if job_name and job_name not in (job["name"], job["job"]):
            continue
        for step in job["steps"]:
            if not step_name or step["name"] == step_name:
                chosen.append((job["name"], step["name"]))
    if not chosen:
        what = f"job {job_name}" if not step_name else f"step {job_name}/{step_name}"
        known = ", ".join(f"{job['name']}/{step['name']}" for job in found.get("jobs") or ()
                          for step in job["steps"])
        raise CliError(f"run {found['name']} has no {what}" if wanted else
                       f"run {found['name']} has no steps yet"
                       + (f" (its steps: {known})" if known else ""))
    return chosen


def _print_step(api: ReadApi, path: str, *, follow: bool, out: BinaryIO) -> bytes:
    """One step's log onto `out`; its last byte (b"" if it printed nothing)."""
    last = b""
    if follow:
        for kind, data in api.events(f"{path}/stream"):
            if kind == "log" and data["text"]:
                text = str(data["text"]).encode()
                out.write(text)
                out.flush()
                last = text[-1:]
            elif kind == "end" and data.get("lost"):
                out.write(f"[ferry: no log: {data['lost']}]\n".encode())
                last = b"\n"
            elif kind == "error":
                raise CliError(str(data.get("error")))
    else:
        for chunk in api.text(path):
            if chunk:
                out.write(chunk)
                last = chunk[-1:]
    out.flush()
    return last


def run(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    try:
        where = target(args)
        namespace, name = parse_run(args.run, where.namespace)
        api = ReadApi(where)
        try:
            found = api.get(f"/namespaces/{namespace}/runs/{name}")
            steps = _chosen(found, args.step)
            base = f"/namespaces/{namespace}/repositories/{found['repository']}/runs/{name}"
            last = b"\n"
            for job, step in steps:
                if len(steps) > 1:
                    # A log that did not end its last line gets one before the next header.
                    if last != b"\n":
                        out.write(b"\n")
                    out.write(f"==> {job}/{step} <==\n".encode())
                    out.flush()
                    last = b"\n"
                last = _print_step(api, f"{base}/jobs/{job}/steps/{step}/log",
                                   follow=args.follow, out=out) or last
        finally:
            api.close()
    except CliError as error:
        return fail("logs", error)
    return 0
