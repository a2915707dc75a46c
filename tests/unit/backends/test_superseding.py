"""What supersedes what: the forge's event times first, arrival only where they cannot tell;
and which runs are in one group at all (`group_of`, the same for both backends).

`happened_before` is the one rule both backends cancel by; the local backend's
`cancel_superseded` is driven here with runs as `submit` records them (the Tekton backend's is
proven on the real API server, tests/integration/test_webhooks.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ci.backends import RunRequest, group_of, happened_before
from ci.backends.local import InFlight, LocalBackend, _group, _Run
from ci.backends.tekton import _group_labels
from ci.forges.payloads import moment_text
from ci.kube.repositories import Repository
from ci.local.engines import HostEngine
from ci.local.stopping import Stop
from pipelines.events import Event, EventKind, PullRequest
from pipelines.planning import Plan

EARLY, LATE = "2024-05-01T10:00:01Z", "2024-05-01T10:00:05Z"
FIRST, SECOND = "2024-05-01T11:00:00Z", "2024-05-01T11:00:01Z"  # creation times


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        ((EARLY, SECOND), (LATE, FIRST), True),  # older event, created later: superseded
        ((LATE, FIRST), (EARLY, SECOND), False),  # newer event, created first: kept
        ((EARLY, FIRST), (EARLY, SECOND), True),  # the same second: arrival decides
        ((EARLY, SECOND), (EARLY, FIRST), False),
        ((None, FIRST), (LATE, SECOND), True),  # a run without a time: arrival
        ((LATE, SECOND), (None, FIRST), False),
        ((LATE, FIRST), (EARLY, None), False),  # times decide even with creation unknown
        ((None, FIRST), (None, None), True),  # the newest run not listed yet: older
    ],
)
def test_happened_before(mine: tuple[str | None, str | None],
                         theirs: tuple[str | None, str | None], expected: bool) -> None:
    assert happened_before(mine[0], mine[1], than=theirs) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_100, "2023-11-14T22:15:00Z"),  # GitHub's push `pushed_at`
        ("2022-01-16T22:57:37+01:00", "2022-01-16T21:57:37Z"),
        ("2019-05-15T15:20:33Z", "2019-05-15T15:20:33Z"),
        ("2013-12-03 17:23:34 UTC", "2013-12-03T17:23:34Z"),  # GitLab's older format
        ("2024-02-22T01:42:03.123456+01:00", "2024-02-22T00:42:03Z"),
        ("2024-02-22T01:42:03", "2024-02-22T01:42:03Z"),  # no offset: UTC
        ("yesterday", None), ("", None), (None, None), (True, None), ([], None),
        (10**20, None), ("9" * 100, None),
    ],
)
def test_forge_times_are_read_as_utc_or_not_at_all(value: Any, expected: str | None) -> None:
    assert moment_text(value) == expected


def _request(happened_at: str | None) -> RunRequest:
    repository = Repository(namespace="team", name="app", uid="u-1", forge="github",
                            url="https://github.com/acme/app", secret="forge")
    event = Event(kind=EventKind.PUSH, repository="acme/app",
                  repository_url="https://github.com/acme/app.git", sha="a" * 40,
                  ref="refs/heads/main", branch="main", happened_at=happened_at)
    return RunRequest(repository=repository, event=event, plan=Plan(jobs=()), trusted=True,
                      forge=None,  # type: ignore[arg-type]  # never called: nothing runs
                      forge_repository="acme/app")  # type: ignore[arg-type]


def test_the_local_backend_cancels_only_runs_of_older_events(tmp_path: Path) -> None:
    backend = LocalBackend(state_directory=tmp_path, parallel_jobs=1, secrets={},
                           clone_url=lambda repository: None,
                           engine=HostEngine({}), runs_untrusted=False)
    group = "team/app#branch/main"
    runs = {name: _Run(flight=InFlight(name=name, repository_key="team/app",
                                       forge_repository="acme/app", sha="a" * 40,
                                       group=group, event_time=time),
                       stop=Stop())
            for name, time in [("older", EARLY), ("newer", LATE), ("untimed", None)]}
    backend._runs.update(runs)

    # A late event from between the two: cancels the older run and the one of no known
    # time (it arrived first), never the newer.
    cancelled = asyncio.run(backend.cancel_superseded(_request("2024-05-01T10:00:03Z"),
                                                      newest="late"))

    assert cancelled == ("older", "untimed")
    assert not runs["newer"].stop.is_set()


def _event(kind: EventKind, *, branch: str | None = "main", tag: str | None = None,
           pull_request: int | None = None) -> Event:
    return Event(
        kind=kind, repository="acme/app", repository_url="https://github.com/acme/app.git",
        sha="a" * 40, ref=f"refs/tags/{tag}" if tag else f"refs/heads/{branch}",
        branch=branch, tag=tag,
        pull_request=PullRequest(number=pull_request, title="t", head_branch="topic",
                                 base_branch="main", author="a", from_fork=False)
        if pull_request is not None else None,
    )


@pytest.mark.parametrize(
    ("event", "grouped"),
    [
        (_event(EventKind.PUSH), "branch main"),
        (_event(EventKind.PULL_REQUEST, pull_request=7), "pull request 7"),
        (_event(EventKind.TAG, branch=None, tag="v1"), None),
        # A scheduled or manual run of a branch is in no group, on either backend: a push
        # does not cancel the nightly run (the local backend grouped them by branch).
        (_event(EventKind.SCHEDULE), None),
        (_event(EventKind.MANUAL), None),
    ],
    ids=["push", "pull-request", "tag", "schedule", "manual"],
)
def test_both_backends_group_runs_by_the_one_rule(event: Event, grouped: str | None) -> None:
    request = dataclasses.replace(_request(None), event=event)
    group = group_of(event)
    said = (None if group is None else f"pull request {group.pull_request}"
            if group.pull_request is not None else f"branch {group.branch}")
    assert said == grouped
    assert bool(_group(request)) is (grouped is not None)  # the local backend's state file
    assert (_group_labels(request) is not None) is (grouped is not None)  # Tekton's labels
