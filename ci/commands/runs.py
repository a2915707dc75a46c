"""`ferry runs [REPOSITORY]`: recent runs with state, branch, sha, event and duration, from
the cluster and the log archive (runs whose PipelineRun was pruned), as the user sees them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ci.commands.reading import CliError, ReadApi, add_connection_arguments, fail, target


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "runs", help="recent runs of a Repository (or of every one you may read)")
    parser.add_argument("repository", nargs="?", metavar="REPOSITORY",
                        help="a Repository object's name, or NAMESPACE/NAME")
    parser.add_argument("--limit", type=int, default=20, help="runs shown (default 20)")
    add_connection_arguments(parser)
    parser.set_defaults(handler=run)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def run(args: argparse.Namespace) -> int:
    try:
        where = target(args)
        api = ReadApi(where)
        try:
            if args.repository:
                namespace, _, name = args.repository.rpartition("/")
                wanted = [(namespace or where.namespace, name)]
            else:
                listed = api.get("/repositories")["repositories"]
                wanted = [(r["namespace"], r["name"]) for r in listed
                          if args.namespace is None or r["namespace"] == args.namespace]
                if not wanted:
                    raise CliError("no Repository you may read"
                                   + (f" in namespace {args.namespace}" if args.namespace else ""))
            found: list[dict[str, Any]] = []
            for namespace, name in wanted:
                found += api.get(f"/namespaces/{namespace}/repositories/{name}/runs",
                                 limit=args.limit)["runs"]
        finally:
            api.close()
    except CliError as error:
        return fail("runs", error)
    found.sort(key=lambda r: str(r.get("createdAt") or ""), reverse=True)
    rows = [("RUN", "REPOSITORY", "STATE", "BRANCH", "SHA", "EVENT", "DURATION")]
    for found_run in found[: args.limit]:
        rows.append((
            found_run["name"], f"{found_run['namespace']}/{found_run['repository']}",
            found_run["state"],
            found_run["branch"] or (f"#{found_run['pullRequest']}" if found_run["pullRequest"]
                                    else "-"),
            (found_run["sha"] or "-")[:10], found_run["event"] or "-",
            _duration(found_run["durationSeconds"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip(), file=sys.stdout)
    return 0
