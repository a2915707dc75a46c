"""`[skip ci]` and `[ci skip]` in the head commit's message: run nothing, and say so.

The commit gets a notice under the run's context only where it shows nothing yet
(`webhooks.notices`), and the notice is pending, never a pass: a required check must not
turn green for a commit nothing tested. A command (`/retest`, `/ok-to-test`, a Re-run
button) still runs the commit: someone asked for it.

Where the payload does not carry the head commit's message (pull request events on GitHub
and Gitea), it is read from the API (`CommitMessageReader`); where it stays unknown, or the
read fails, the event runs: never skip on a guess.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ci.forges import checks
from ci.forges.client import CommitMessageReader
from ci.forges.errors import ForgeError
from pipelines.events import Event
from webhooks.answers import Answer, skipped
from webhooks.notices import post_notices

if TYPE_CHECKING:
    from webhooks.receiver import Target

log = structlog.get_logger(__name__)

MARKERS = ("[skip ci]", "[ci skip]")


async def skip_marker(event: Event, target: Target) -> str | None:
    """The marker the head commit's message holds (any case), if any."""
    message = event.message
    if message is None and event.pull_request is not None:
        message = await _read_message(event, target)
    lowered = (message or "").lower()
    return next((marker for marker in MARKERS if marker in lowered), None)


async def _read_message(event: Event, target: Target) -> str | None:
    forge = target.forge
    if not isinstance(forge, CommitMessageReader):
        return None
    try:
        return await target.call(lambda: forge.commit_message(target.name, event.sha))
    except ForgeError as error:
        log.warning("could not read the head commit's message; running", error=str(error))
        return None


async def skip_ci(event: Event, target: Target, marker: str) -> Answer:
    notice = checks.skipped_by_commit(target.receiver.contexts, marker)
    log.info("skipped by the commit message", marker=marker)
    await post_notices(target.forge, target.name, event.sha, [notice], call=target.call)
    return skipped(f"the head commit's message says {marker}", outcome="skip-ci")
