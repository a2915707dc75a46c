"""Pull request commands (`/ok-to-test`, `/retest`, `/retest JOB`, `/cancel`) and GitHub's
"Re-run" buttons (`check_run` and `check_suite` `rerequested`).

Who may: only someone with write access to the repository, for every command and button.

What each does (docs/webhooks.md, "Comment commands"):

- `/ok-to-test` runs the pull request's head with the repository's secrets: the one way an
  untrusted pull request becomes trusted.
- `/retest` re-runs the jobs of the commit's newest run that did not pass, and every job that
  needs one of them; the jobs that passed are not run again (their checks stay). `/retest
  JOB` re-runs that job (every variant of a matrix job) and what needs it. A re-run keeps the
  newest run's trust: it is trusted only if that run was; otherwise trust is decided again
  for the pull request's author, exactly as for a push. A commit with no run yet runs whole.
- `/cancel` stops the pull request's unfinished runs.
- The web pages' buttons (`webhooks.web.actions`) are a `Rerun` of source "web": "Re-run
  failed" is `/retest`, "Re-run all" runs the newest run's every job (`Rerun.whole`).
- "Re-run" on one of Ferry's job checks is `/retest JOB`; on the run's own check, and "Re-run
  failed checks" on the suite, `/retest`; "Re-run all checks" when nothing failed runs the
  commit again whole (GitHub sends the same `check_suite` event for both buttons).

A GitHub comment or check run payload does not carry the pull request's head commit and
author, so they are read from the API (`PullRequestReader`); Gitea and GitLab send them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from ci.backends import PreviousRun
from ci.forges.client import PullRequestReader
from ci.forges.deliveries import Comment, Rerun
from pipelines.events import Event, EventKind
from pipelines.planning import NothingToRun, Plan, jobs_named, rerun
from webhooks.answers import Answer, skipped
from webhooks.trust import Decision, Trust

if TYPE_CHECKING:
    from webhooks.handling import Target

log = structlog.get_logger(__name__)

OK_TO_TEST = "/ok-to-test"
RETEST = "/retest"
CANCEL = "/cancel"
COMMANDS = (OK_TO_TEST, RETEST, CANCEL)

# What `start_run` is given to cut its plan down to the jobs re-run: the plan to submit, or
# why nothing is re-run (which posts nothing: the commit shows what its runs reported).
Selector = Callable[[Plan], "Plan | NothingToRun"]


class StartRun(Protocol):
    """`webhooks.handling.start_run`, passed in so this module does not import the flow."""

    def __call__(
        self,
        event: Event,
        target: Target,
        *,
        trust: Decision | None = None,
        name_prefix: str = "",
        only: Selector | None = None,
    ) -> Awaitable[Answer]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """Which jobs of a commit's plan a re-run runs: `job` (by name), else the `failed` planned
    jobs, else (both None) every job."""

    run: str | None = None  # the newest run's name, for messages
    failed: frozenset[str] | None = None
    job: str | None = None

    def __call__(self, planned: Plan) -> Plan | NothingToRun:
        if self.job is not None:
            names = jobs_named(planned, self.job)
            if not names:
                listed = ", ".join(sorted({job.spec_job for job in planned.all_jobs}))
                return _nothing(f"no job {self.job!r} runs for this commit (jobs: {listed})")
            return rerun(planned, names) or _nothing(
                f"{self.job!r} is a finally job, which runs only after others"
            )
        if self.failed is None:
            return planned
        return rerun(planned, self.failed) or _nothing(
            f"the jobs that failed in {self.run} are no regular jobs of this commit's plan"
        )


def _nothing(reason: str) -> NothingToRun:
    return NothingToRun(reason=f"nothing re-run: {reason}")


def choose(previous: PreviousRun | None, *, job: str | None, whole_if_passed: bool,
           whole: bool = False) -> Selection | str:
    """What a re-run runs, or why it runs nothing (see the module docstring); `whole`: every
    job, failed or not (the web page's "Re-run all")."""
    if previous is None:
        return Selection(job=job)  # nothing ran yet: the whole plan (or that job)
    if not previous.finished:
        return f"{previous.name} is still running: wait for it, or /cancel it"
    if job is not None or whole:
        return Selection(run=previous.name, job=job)  # that job, else (whole) every job
    failed = previous.failed
    if not failed:
        if whole_if_passed:
            return Selection(run=previous.name)
        return f"nothing failed in {previous.name}; /retest JOB re-runs one job"
    return Selection(run=previous.name, failed=failed)


def rerun_trust(previous: PreviousRun | None, *, who: str) -> Decision | None:
    """Trusted only if the run re-run was; None: decide again, as for the pull request's own
    events. Never the commenter's access: that is what `/ok-to-test` says, and only it."""
    if previous is not None and previous.trusted:
        return Decision(trust=Trust.TRUSTED, reason=f"re-run by {who}")
    return None


async def on_command(
    command: Comment | Rerun, target: Target, *, forge_name: str, start: StartRun
) -> Answer:
    """A comment, or a Re-run button: check who asks, then act."""
    if isinstance(command, Comment):
        return await _on_comment(command, target, forge_name=forge_name, start=start)
    return await _on_rerun(command, target, start=start)


async def _on_comment(
    comment: Comment, target: Target, *, forge_name: str, start: StartRun
) -> Answer:
    command = comment.command
    if command not in COMMANDS:
        return skipped(
            "ignored: the comment is not /ok-to-test, /retest or /cancel", outcome="ignored"
        )
    who = comment.author or "someone"
    if not await _may_command(target, comment.author):
        log.info("command refused", command=command, author=comment.author)
        return skipped(f"ignored: {command} from {who}, who has no write access",
                       outcome="ignored")
    if command == CANCEL:
        cancelled = await target.receiver.backend.cancel_pull_request(
            target.repository, comment.number
        )
        log.info("cancelled by command", number=comment.number, cancelled=list(cancelled))
        return Answer(
            status_code=202,
            body={
                "skipped": f"/cancel by {who}: pull request {comment.number}'s unfinished "
                "runs stopped",
                "cancelled": list(cancelled),
            },
            outcome="cancelled",
        )
    event = comment.pull_request or await _read_pull_request(
        target, comment.number, forge_name=forge_name
    )
    if isinstance(event, str):
        return skipped(f"ignored: {command}: {event}", outcome="ignored")
    if command == OK_TO_TEST:
        # One name per commit, unlike a secret-less run of it, the same across redeliveries.
        decision = Decision(trust=Trust.TRUSTED, reason=f"{OK_TO_TEST} by {who}")
        return await start(event, target, trust=decision, name_prefix="ok-")
    previous = await target.receiver.backend.newest_run(
        target.repository, event.sha, pull_request=comment.number
    )
    return await _rerun(event, target, previous, job=comment.argument, who=who,
                        whole_if_passed=False, start=start)


async def _on_rerun(rerun_request: Rerun, target: Target, *, start: StartRun) -> Answer:
    button = f"{rerun_request.source} re-run"
    who = rerun_request.requester or "someone"
    if not await _may_command(target, rerun_request.requester):
        log.info("re-run refused", requester=rerun_request.requester)
        return skipped(f"ignored: {button} by {who}, who has no write access", outcome="ignored")
    backend = target.receiver.backend
    previous = await backend.newest_run(target.repository, rerun_request.sha)
    event = await _rerun_event(rerun_request, target, previous)
    if isinstance(event, str):
        return skipped(f"ignored: {button}: {event}", outcome="ignored")
    return await _rerun(event, target, previous, job=rerun_request.job, who=who,
                        whole_if_passed=rerun_request.source == "check_suite",
                        whole=rerun_request.whole, start=start)


async def _rerun(
    event: Event,
    target: Target,
    previous: PreviousRun | None,
    *,
    job: str | None,
    who: str,
    whole_if_passed: bool,
    start: StartRun,
    whole: bool = False,
) -> Answer:
    selection = choose(previous, job=job, whole_if_passed=whole_if_passed, whole=whole)
    if isinstance(selection, str):
        return skipped(f"nothing re-run: {selection}", outcome="nothing-to-run")
    # A new name for every request: a re-run is never a redelivery of an earlier one.
    digest = hashlib.sha256(target.delivery_id.encode()).hexdigest()[:6]
    log.info("re-run", previous=previous.name if previous else None, job=job,
             failed=sorted(selection.failed or ()))
    return await start(
        event,
        target,
        trust=rerun_trust(previous, who=who),
        name_prefix=f"retest-{digest}-",
        only=selection,
    )


async def _may_command(target: Target, user: str) -> bool:
    if not user:
        return False
    forge = target.forge
    return await target.call(lambda: forge.has_write_access(target.name, user))


async def _read_pull_request(target: Target, number: int, *, forge_name: str) -> Event | str:
    """The event pull request `number`'s head runs, from the forge's API; or why not."""
    forge = target.forge
    if not isinstance(forge, PullRequestReader):
        return (f"the {forge_name} comment does not carry the pull request's head commit, "
                "and Ferry cannot read it from the API")
    found = await target.call(lambda: forge.pull_request(target.name, number))
    return found if found is not None else f"pull request {number} is not open"


async def _rerun_event(
    rerun_request: Rerun, target: Target, previous: PreviousRun | None
) -> Event | str:
    """The event the re-run commit was run for: its pull request's (the newest run's, else
    the one GitHub lists), else a push of the suite's branch."""
    number = previous.pull_request if previous is not None else None
    if number is None and previous is None and rerun_request.pull_requests:
        number = rerun_request.pull_requests[0]
    if number is not None:
        event = await _read_pull_request(target, number, forge_name="GitHub")
        if isinstance(event, Event) and event.sha != rerun_request.sha:
            return (f"pull request {number}'s head is now {event.sha[:12]}, not the re-run "
                    f"commit {rerun_request.sha[:12]}")
        return event
    if rerun_request.branch is None:
        return f"{rerun_request.sha[:12]} is on no branch or pull request Ferry knows"
    return Event(
        kind=EventKind.PUSH,
        repository=target.name,
        repository_url=rerun_request.repository_url,
        sha=rerun_request.sha,
        ref=f"refs/heads/{rerun_request.branch}",
        branch=rerun_request.branch,
        author=rerun_request.requester,
    )
