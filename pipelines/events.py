"""The forge-neutral event a pipeline runs for.

Everything here except `kind` and the changed-file list is attacker-controlled text (branch
names, titles, authors): the compiler passes it to steps only as Tekton params mapped to
environment variables, never into a script.
"""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct


class EventKind(StrEnum):
    PUSH = "push"
    PULL_REQUEST = "pull_request"
    TAG = "tag"
    COMMENT = "comment"
    MANUAL = "manual"
    SCHEDULE = "schedule"


# The events something starts a run with: a forge's push, tag and pull request (`/retest` and
# `/ok-to-test` run a pull request's event again), a Repository's `spec.schedules` (the
# controller) and `ferry trigger` (both through a RunRequest, docs/schedules.md). `comment` is
# named for runs that nothing starts, so `when.event` refuses it rather than waiting for
# events that never come.
PRODUCED_EVENTS: frozenset[EventKind] = frozenset(
    {EventKind.PUSH, EventKind.PULL_REQUEST, EventKind.TAG, EventKind.MANUAL,
     EventKind.SCHEDULE}
)


class PullRequest(Struct, frozen=True, kw_only=True):
    number: int
    title: str
    head_branch: str
    base_branch: str
    author: str  # the pull request's author, never the sender of the event about it
    from_fork: bool = False
    # Where a forge's payload names the author only by id (GitLab's `author_id`), the id:
    # the trust check asks the forge about this user, whatever `author` says.
    author_id: int | None = None


class Event(Struct, frozen=True, kw_only=True):
    """What happened on the forge, reduced to what filtering and compiling need.

    `branch` is the branch a `when.branch` filter matches: the pushed branch for a push, the
    target (base) branch for a pull request, as GitHub Actions and Woodpecker do.
    `changed_files` is `None` when unknown, and then a `when.paths` filter does not skip.
    `message` is the head commit's message where the payload carries it (None: unknown); the
    receiver reads `[skip ci]` in it, nothing else does.
    """

    kind: EventKind
    repository: str  # "owner/name" as the forge spells it
    repository_url: str  # clone URL
    sha: str
    ref: str  # full ref: refs/heads/main, refs/tags/v1.0, refs/pull/7/head
    branch: str | None = None
    tag: str | None = None
    pull_request: PullRequest | None = None
    author: str = ""
    changed_files: tuple[str, ...] | None = None
    # When the forge says this happened, UTC `YYYY-MM-DDTHH:MM:SSZ` (string order is time
    # order): a push's time (GitHub `repository.pushed_at`; Gitea and GitLab send only the
    # head commit's `timestamp`), a pull request's `updated_at`. Cancelling superseded runs
    # orders by it, not by arrival; None (a payload without one) falls back on arrival.
    happened_at: str | None = None
    # The pull request's head this event replaced (GitHub's `synchronize` `before`): the
    # receiver completes a "waiting" check left there, so none stays queued.
    replaced_sha: str | None = None
    # The head commit's message, where the payload has it (skip markers).
    message: str | None = None
    # A `schedule` event's schedule name (`spec.schedules[].name`); None for other events.
    schedule: str | None = None
    # A manual run's `--param K=V` pairs, in the order given; empty for other events.
    params: tuple[tuple[str, str], ...] = ()
