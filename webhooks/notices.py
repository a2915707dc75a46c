"""What the receiver shows on a commit when no run reports: a notice never hides a verdict.

An event that starts no run (nothing to run, waiting for `/ok-to-test`, an invalid spec, a
job `when` filtered out) still says so on the commit, or a required check would wait
forever. But forges keep one status per context, last writer wins, and a GitHub check
suite shows the newest check run of a name: a "skipped" (success on GitHub's and Gitea's
commit statuses) posted after a failed run would turn the commit green. So before posting,
the commit's statuses (or check runs) are read back, and a notice goes only under a context
that shows nothing yet, whoever wrote there: on a commit that nothing has reported on,
"nothing ran and nothing will" is the truth; anywhere else, a run's report stays.

What is left open: a run created for another event in the same instant, which its reporter
has not yet reported when the read-back happens. Its reports come after the notice and
replace it, so the commit still ends with the run's verdict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import structlog

from ci.forges.client import CheckRunLookup, ForgeClient
from ci.forges.errors import ForgeError
from ci.forges.statuses import Status
from ci.forges.types import RepositoryName

log = structlog.get_logger(__name__)
T = TypeVar("T")



class Retrying(Protocol):
    """How a forge call is made: `Target.call`, which retries temporary failures."""

    async def __call__(self, call: Callable[[], Awaitable[T]], /) -> T: ...


async def post_notices(
    forge: ForgeClient,
    repository: RepositoryName,
    sha: str,
    notices: Sequence[Status],
    *,
    call: Retrying,
) -> tuple[str, ...]:
    """Post each notice whose context the commit does not show yet; the contexts posted.

    Best effort, as any status the receiver posts: a forge that fails is logged, not
    answered with an error, since the event itself was handled. A failed read-back posts
    nothing: not knowing what is there must not risk covering a verdict.
    """
    if not notices:
        return ()
    try:
        shown = await call(lambda: forge.shown_contexts(repository, sha))
    except ForgeError as error:
        log.warning("could not read the commit's statuses; posting nothing", error=str(error))
        return ()
    posted: list[str] = []
    for notice in notices:
        if notice.context in shown:
            log.info("the commit shows this context already; notice not posted",
                     context=notice.context, title=notice.title)
        elif await _post(forge, repository, sha, notice, call=call):
            posted.append(notice.context)
    return tuple(posted)


async def _post(
    forge: ForgeClient, repository: RepositoryName, sha: str, notice: Status, *, call: Retrying
) -> bool:
    try:
        await call(lambda: forge.report_status(repository, sha, notice))
    except ForgeError as error:
        log.warning("could not report the status", error=str(error), title=notice.title)
        return False
    return True


async def retire_waiting(
    forge: ForgeClient, repository: RepositoryName, sha: str, retired: Status, *, call: Retrying
) -> bool:
    """Complete the receiver's own "waiting" check run on `sha` (a pull request head a newer
    push replaced) as `retired`, if it is there and still open; whether it was.

    Found by `retired.external_id` (`checks.WAITING_EXTERNAL_ID`): a check run a run took
    over carries the run's id instead and is left alone, as is one already completed. Best
    effort, like every notice: a forge that fails is logged.
    """
    if not isinstance(forge, CheckRunLookup):
        return False
    try:
        found = await call(lambda: forge.find_check_run(repository, sha, retired))
        if found is None or found.completed:
            return False
        await call(lambda: forge.report_status(repository, sha, retired,
                                               report_id=found.report_id))
    except ForgeError as error:
        log.warning("could not complete the waiting check run", error=str(error), sha=sha)
        return False
    log.info("waiting check run completed: superseded", sha=sha, report_id=found.report_id)
    return True
