"""`ferry render [FILE]`: print the Tekton PipelineRun a spec compiles to for one event.

Pure, like the compiler: it reads only FILE and its arguments, never git or a cluster, so the
same command gives the same bytes anywhere. Without `--sha` it uses a placeholder commit
(forty zeros) and says so on stderr.

Output and exit codes:
- the PipelineRun as YAML on stdout, warnings on stderr: exit 0;
- nothing runs for this event: the reason (and each skipped job) on stderr, nothing on
  stdout: exit 0, because "nothing to do" is a correct answer, not a failure;
- problems in the spec: every one, `FILE:LINE:COL: error: message` on stderr, exactly as
  `ferry lint` prints them (both call `pipelines.preparing.prepare`): exit 1;
- FILE missing or unreadable: exit 2.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pipelines.events import Event, EventKind, PullRequest
from pipelines.planning import NothingToRun
from pipelines.preparing import Problems, prepare
from pipelines.problems import Problem, SpecError
from pipelines.tekton import CompileOptions, compile_pipeline_run, to_yaml

PLACEHOLDER_SHA = "0" * 40
DEFAULT_REPOSITORY = "example/repository"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render",
        help="print the Tekton PipelineRun for an event",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument("file", nargs="?", default=".ci.yaml", help="the spec (default .ci.yaml)")
    parser.add_argument(
        "--event",
        choices=[kind.value for kind in EventKind],
        default=EventKind.PUSH.value,
        help="event kind (default push)",
    )
    parser.add_argument("--branch", default=None, help="pushed branch, or the PR's base branch")
    parser.add_argument("--sha", default=None, help=f"commit (default {PLACEHOLDER_SHA})")
    parser.add_argument("--tag", default=None, help="tag name, for --event tag")
    parser.add_argument("--ref", default=None, help="full ref (default derived)")
    parser.add_argument("--pr", type=int, default=None, help="pull request number")
    parser.add_argument("--pr-title", default="", help="pull request title")
    parser.add_argument("--pr-branch", default="", help="pull request head branch")
    parser.add_argument("--author", default="", help="who caused the event")
    parser.add_argument(
        "--changed-file",
        action="append",
        default=None,
        dest="changed_files",
        metavar="PATH",
        help="a changed file, for `paths` filters (repeat; default: unknown, filters hold)",
    )
    parser.add_argument("--repository", default=DEFAULT_REPOSITORY, help="owner/name")
    parser.add_argument("--repository-url", default=None, help="clone URL")
    parser.add_argument("--namespace", default=None, help="metadata.namespace of the run")
    parser.add_argument("--service-account", default=None,
                        help="the account whose API token a trusted run's pods get "
                        "(default: none, no token)")
    parser.add_argument("--untrusted", action="store_true",
                        help="render as for a pull request whose author has no write access: "
                        "no account, and the ferry.dev/untrusted label")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        with open(args.file, "rb") as handle:
            source = handle.read()
    except OSError as error:
        print(f"ferry render: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    if args.sha is None:
        print(f"ferry render: no --sha given; using {PLACEHOLDER_SHA}", file=sys.stderr)
    event = event_from_args(args)
    prepared = prepare(source, path=args.file, event=event)
    if isinstance(prepared, Problems):
        return _refused(prepared.problems)
    for warning in prepared.warnings:
        print(warning, file=sys.stderr)
    outcome = prepared.outcome
    if isinstance(outcome, NothingToRun):
        print(f"nothing runs: {outcome.reason}", file=sys.stderr)
        for skipped in outcome.skipped:
            print(f"  skipped {skipped.name}: {skipped.reason}", file=sys.stderr)
        return 0
    for skipped in outcome.skipped:
        print(f"skipped {skipped.name}: {skipped.reason}", file=sys.stderr)
    options = CompileOptions(
        namespace=args.namespace,
        service_account=args.service_account,
        untrusted=args.untrusted,
        ferry_version=_ferry_version(),
    )
    try:
        pipeline_run = compile_pipeline_run(outcome, event, options=options)
    except SpecError as error:  # the linter reports these first: a bug if it ever shows
        return _refused(error.problems)
    sys.stdout.write(to_yaml(pipeline_run))
    return 0


def _refused(problems: tuple[Problem, ...]) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1


def event_from_args(args: argparse.Namespace) -> Event:
    kind = EventKind(args.event)
    branch = args.branch
    if branch is None and kind is not EventKind.TAG:
        branch = "main"
    tag = args.tag if kind is EventKind.TAG else None
    if kind is EventKind.TAG and tag is None:
        tag = "v0.0.0"
    pull_request = None
    number = args.pr
    if kind is EventKind.PULL_REQUEST or number is not None:
        number = number if number is not None else 1
        pull_request = PullRequest(
            number=number,
            title=args.pr_title,
            head_branch=args.pr_branch,
            base_branch=branch or "main",
            author=args.author,
        )
    if args.ref is not None:
        ref = args.ref
    elif tag is not None:
        ref = f"refs/tags/{tag}"
    elif pull_request is not None:
        ref = f"refs/pull/{pull_request.number}/head"
    else:
        ref = f"refs/heads/{branch}"
    return Event(
        kind=kind,
        repository=args.repository,
        repository_url=args.repository_url or f"https://example.invalid/{args.repository}.git",
        sha=args.sha or PLACEHOLDER_SHA,
        ref=ref,
        branch=None if kind is EventKind.TAG else branch,
        tag=tag,
        pull_request=pull_request,
        author=args.author,
        changed_files=tuple(args.changed_files) if args.changed_files is not None else None,
    )


def _ferry_version() -> str:
    try:
        return version("ferry")
    except PackageNotFoundError:
        return "dev"
