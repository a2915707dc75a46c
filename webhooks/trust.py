"""Whether a run may see the repository's secrets: the decision for forks and untrusted authors.

Trust is about the pull request's author, never the sender of the event: a maintainer who
reopens, labels, rebases or comments on a fork's pull request does not lend the fork their
access. (GitLab names the author only by `author_id`, which is what is asked about there.)

A pull request whose head is in the repository itself was pushed by someone who can push,
so it is trusted. One from a fork is trusted only if its author has write access; otherwise
the Repository's `untrustedPullRequests` policy decides: run without secrets, or wait for a
maintainer's `/ok-to-test`. The decision is logged and shown in the status description.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from ci.kube.repositories import UntrustedPolicy
from pipelines.events import Event


class Trust(StrEnum):
    TRUSTED = "trusted"
    WITHOUT_SECRETS = "without-secrets"
    WAIT_FOR_OK_TO_TEST = "wait-for-ok-to-test"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    trust: Trust
    reason: str


TRUSTED = Decision(trust=Trust.TRUSTED, reason="")


async def decide(
    event: Event,
    *,
    policy: UntrustedPolicy,
    has_write_access: Callable[[str, int | None], Awaitable[bool]],
) -> Decision:
    pull_request = event.pull_request
    if pull_request is None or not pull_request.from_fork:
        return TRUSTED
    author, author_id = pull_request.author, pull_request.author_id
    if (author or author_id is not None) and await has_write_access(author, author_id):
        return TRUSTED
    if author:
        who = f"{author} has no write access"
    elif author_id is not None:
        who = f"its author (user {author_id}) has no write access"
    else:
        who = "its author is unknown"
    if policy is UntrustedPolicy.WAIT_FOR_OK_TO_TEST:
        return Decision(
            trust=Trust.WAIT_FOR_OK_TO_TEST,
            reason=f"pull request from a fork and {who}: waiting for a maintainer's "
            "/ok-to-test",
        )
    return Decision(
        trust=Trust.WITHOUT_SECRETS,
        reason=f"pull request from a fork and {who}: running without secrets",
    )
