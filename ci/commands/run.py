"""`ferry run [FILE]`: run the pipeline of a `.ci.yaml` on this machine, as the cluster would.

Exit status: 0 when every required job passed (or nothing had to run), 1 when a job that
may not fail failed, timed out or the spec is invalid, 2 when the command line asks for
something impossible (an unknown `--job`, a missing engine), 130 after Ctrl-C.

Secrets: see `ci.local.credentials`; a secret given nowhere is left unset with a warning.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ci.local.checkouts import CheckoutError, local_event, read_checkout
from ci.local.credentials import (
    SecretArgumentError,
    job_secrets,
    parse_secret_arguments,
    secret_store,
)
from ci.local.engines import EngineName, EngineNotFoundError, find_engine
from ci.local.environment import base_environment
from ci.local.outcomes import RunResult
from ci.local.reporting import Reporter
from ci.local.running import RunOptions, run_plan
from ci.local.selecting import UnknownJobError, select_jobs
from ci.local.stopping import Stop
from ci.local.workspaces import WorkspaceError, WorkspaceOrigin, WorkspaceSource
from ci.masking import Masker
from pipelines.events import Event, EventKind
from pipelines.planning import NothingToRun, Plan
from pipelines.preparing import Problems, prepare
from pipelines.spec import DEFAULT_SPEC_PATH

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the pipeline on this machine, before pushing",
        description="Run the jobs of a .ci.yaml locally: in dependency order, independent "
        "jobs in parallel, each in a fresh checkout of the commit. Exit status 0 only when "
        "every required job passed.",
    )
    parser.add_argument("file", nargs="?", default=DEFAULT_SPEC_PATH, metavar="FILE",
                        help=f"the spec to run (default: {DEFAULT_SPEC_PATH})")
    parser.add_argument("--event", type=EventKind, choices=list(EventKind),
                        default=EventKind.PUSH, help="the event to pretend (default: push)")
    parser.add_argument("--branch", help="the branch (for a pull request: its base branch); "
                        "default: the branch checked out")
    parser.add_argument("--tag", help="the tag, for --event tag (default: a tag on the commit)")
    parser.add_argument("--sha", help="the commit to run (default: HEAD)")
    parser.add_argument("--job", action="append", default=[], metavar="JOB",
                        help="run only JOB and the jobs it needs (repeatable)")
    parser.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1, metavar="N",
                        help="how many jobs run at once (default: the number of cores)")
    parser.add_argument("--dirty", action="store_true",
                        help="run the working tree with its uncommitted changes, not HEAD")
    parser.add_argument("--engine", type=EngineName, choices=list(EngineName),
                        help="run each job's steps in its image with docker or podman "
                        "(default: on this machine, images ignored)")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE",
                        help="a secret by env name or SECRET/KEY (repeatable); otherwise "
                        "taken from the environment variable of the same name")
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class _CommandError(Exception):
    """Ends the command early with an exit status, after the reason has been printed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def run(args: argparse.Namespace) -> int:
    try:
        return _run_command(args)
    except _CommandError as stop:
        return stop.status


def _run_command(args: argparse.Namespace) -> int:
    spec_path = Path(args.file)
    source = _read(spec_path, name=args.file)
    try:
        checkout = read_checkout(
            spec_path.resolve().parent,
            sha=args.sha,
            tags=args.event is EventKind.TAG and not args.tag,
        )
        secrets_given = parse_secret_arguments(args.secret)
        engine = find_engine(args.engine, base=base_environment()) if args.engine else None
    except (CheckoutError, SecretArgumentError, EngineNotFoundError) as error:
        raise _fail(error, status=EXIT_USAGE) from error
    event = local_event(checkout, kind=args.event, branch=args.branch, tag=args.tag)
    planned = _prepare(source, name=args.file, event=event)
    if isinstance(planned, NothingToRun):
        _explain_nothing(planned)
        return 0
    try:
        planned = select_jobs(planned, args.job) if args.job else planned
    except UnknownJobError as error:
        raise _fail(error, status=EXIT_USAGE) from error

    store = secret_store(
        (ref for job in planned.all_jobs for ref in job.secrets),
        given=secrets_given,
        environment=os.environ,
    )
    reporter = Reporter(
        stream=sys.stdout, masker=Masker(store.values()), interactive=sys.stdout.isatty()
    )
    _notes(planned, reporter=reporter, store=store, uses_images=engine is not None)
    origin = WorkspaceOrigin(
        repository=checkout.root,
        sha=checkout.sha,
        source=WorkspaceSource.WORKING_TREE if args.dirty else WorkspaceSource.COMMIT,
        subdirectory=spec_path.resolve().parent.relative_to(checkout.root),
    )
    options = RunOptions(parallel=args.jobs, engine=engine, secrets=store)
    try:
        result = _run(planned, event, origin=origin, options=options, reporter=reporter)
    except WorkspaceError as error:
        raise _fail(error, status=EXIT_FAILED) from error
    reporter.summary(result)
    if result.cancelled:
        return EXIT_INTERRUPTED
    return 0 if result.passed else EXIT_FAILED


def _read(path: Path, *, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        print(f"{name}: error: cannot read the file: {error.strerror}", file=sys.stderr)
        raise _CommandError(EXIT_FAILED) from error


def _prepare(source: bytes, *, name: str, event: Event) -> Plan | NothingToRun:
    """What runs, warnings printed; or every problem printed as `ferry lint` prints them
    (both call `prepare`), and stop."""
    prepared = prepare(source, path=name, event=event)
    if isinstance(prepared, Problems):
        for problem in prepared.problems:
            print(problem, file=sys.stderr)
        errors = len(prepared.errors)
        print(f"{name}: {errors} error{'' if errors == 1 else 's'}; nothing was run",
              file=sys.stderr)
        raise _CommandError(EXIT_FAILED)
    for warning in prepared.warnings:
        print(warning, file=sys.stderr)
    return prepared.outcome


def _fail(error: Exception, *, status: int) -> _CommandError:
    print(f"ferry run: error: {error}", file=sys.stderr)
    return _CommandError(status)


def _run(
    planned: Plan,
    event: Event,
    *,
    origin: WorkspaceOrigin,
    options: RunOptions,
    reporter: Reporter,
) -> RunResult:
    stop = Stop()

    def stop_gracefully(number: int, frame: Any) -> None:
        stop.set()

    # Ctrl-C and `kill` stop the run gracefully: steps are stopped, the summary printed.
    # (`Stop.set` takes no lock, so a signal arriving anywhere in this thread is safe.)
    previous = {number: signal.signal(number, stop_gracefully)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_plan(
            planned, event, origin=origin, options=options, observer=reporter, stop=stop
        )
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _explain_nothing(nothing: NothingToRun) -> None:
    print(f"nothing to run: {nothing.reason}")
    for skipped in nothing.skipped:
        print(f"  `{skipped.name}` is skipped: {skipped.reason}")
    print("(use --event, --branch or --tag to run the pipeline as for another event)")


def _notes(planned: Plan, *, reporter: Reporter, store: dict[str, str], uses_images: bool) -> None:
    if not uses_images:
        reporter.note("steps run on this machine and images are ignored "
                      "(--engine docker|podman runs them in their images)")
    for skipped in planned.skipped:
        reporter.note(f"`{skipped.name}` is skipped: {skipped.reason}")
    if any(job.services for job in planned.all_jobs):
        reporter.note("services are not started by `ferry run`")
    for job in planned.all_jobs:
        for ref in job_secrets(job.secrets, store).missing:
            reporter.warning(
                f"secret {ref.env} ({ref.secret}/{ref.key}) of `{job.name}` is not set, so the "
                f"job runs without it: pass --secret {ref.env}=... or export {ref.env}"
            )
