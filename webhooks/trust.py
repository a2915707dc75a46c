"""Whether a run may see the repository's secrets: the decision for forks and untrusted authors.

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
    has_write_access: Callable[[str], Awaitable[bool]],
) -> Decision:
    pull_request = event.pull_request
    if pull_request is None or not pull_request.from_fork:
        return TRUSTED
    author = pull_request.author
    if author and await has_write_access(author):
        return TRUSTED
    who = f"{author} has no write access" if author else "its author is unknown"
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
