"""The run page's buttons, through the same code as the pull request commands: "Re-run
failed" and "Re-run all" are a `Rerun` of source "web" given to `webhooks.commands.
on_command` (which checks the viewer's write access on the forge again, with the
Repository's own credentials, exactly as for `/retest`); "Cancel" is the backend's cancel,
as `/cancel`'s. The pages have already checked the viewer's write access (`Access`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from ci.forges.deliveries import Rerun
from ci.forges.types import DeliveryId, RepositoryName
from ci.kube.repositories import Repository
from webhooks import commands
from webhooks.handling import Receiver, Target, answer_for_error, start_run

log = structlog.get_logger(__name__)

# The words after a button, by the code the run page is sent back with (`?done=`): fixed,
# so a link cannot put words of its own on the page.
MESSAGES = {
    "rerun": "Re-run started.",
    "nothing": "Nothing was re-run: the commit's newest run is still running, or nothing in "
               "it failed.",
    "refused": "The forge says you may not re-run this repository's jobs.",
    "failed": "The re-run could not be started; try again in a moment.",
    "cancelled": "Run cancelled.",
    "finished": "The run had already finished: nothing to cancel.",
    "cancel-failed": "The run could not be cancelled; try again in a moment.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    done: str  # a key of MESSAGES
    run: str | None = None  # the run started


async def rerun(receiver: Receiver, repository: Repository, run: Mapping[str, Any], *,
                login: str, everything: bool) -> Outcome:
    sha = str(run.get("sha") or "")
    forge_name = str(run.get("forgeRepository") or "")
    if not sha or not forge_name:
        return Outcome(done="failed")  # a run known only from a pruned archive
    number = str(run.get("pullRequest") or "")
    request = Rerun(
        source="web", sha=sha, repository_url=str(run.get("repositoryUrl") or ""),
        requester=login, pull_requests=(int(number),) if number.isdigit() else (),
        branch=str(run.get("branch") or "") or None, whole=everything,
    )
    try:
        credentials = await asyncio.to_thread(receiver.credentials.for_repository, repository)
        target = Target(repository=repository, name=RepositoryName(forge_name),
                        credentials=credentials,
                        delivery_id=DeliveryId(f"web-{uuid.uuid4().hex}"), receiver=receiver)
        answer = await commands.on_command(request, target, forge_name=repository.forge,
                                           start=start_run)
    except Exception as error:
        failed = answer_for_error(error)
        if failed is None:
            raise
        log.warning("web re-run failed", repository=repository.key, outcome=failed.outcome)
        return Outcome(done="failed")
    log.info("web re-run", repository=repository.key, run=run.get("name"), by=login,
             everything=everything, outcome=answer.outcome)
    if answer.outcome in ("created", "existing"):
        started = answer.body.get("pipelineRuns") or [None]
        return Outcome(done="rerun", run=started[0])
    if answer.outcome == "ignored" and "write access" in str(answer.body.get("skipped", "")):
        return Outcome(done="refused")
    if answer.outcome == "nothing-to-run":
        return Outcome(done="nothing")
    return Outcome(done="failed")


async def cancel(receiver: Receiver, repository: Repository, run: str, *, login: str
                 ) -> Outcome:
    try:
        stopped = await receiver.backend.cancel_run(repository, run)
    except Exception as error:
        failed = answer_for_error(error)
        if failed is None:
            raise
        log.warning("web cancel failed", repository=repository.key, outcome=failed.outcome)
        return Outcome(done="cancel-failed")
    log.info("web cancel", repository=repository.key, run=run, by=login, cancelled=stopped)
    return Outcome(done="cancelled" if stopped else "finished")
