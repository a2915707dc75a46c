"""The receiver's flow: one delivery in, at most one run out, a status on the commit.

`receive` takes a delivery from detection to the dispatch on what it means; `start_run` takes
an event from its spec to a queued run. Each reads top to bottom, one step per line, in the
order of DESIGN.md; the steps themselves live in small modules (`trust`, `notices`,
`commands` for comment commands and Re-run buttons, `skipping` for `[skip ci]`, ...).
What the receiver posts on a commit is in `notices` (never over a run's report) and its
words and contexts in `ci.forges.checks`, shared with the controller and the local backend.

Nothing is parsed before the signature is checked except the repository URL, which is
needed to find the secret that checks it. Refusals are exceptions (`DeliveryRejectedError`,
and the forge, credential and Kubernetes errors) that the table in `webhooks.answers` turns
into 4xx/5xx answers. What the flow works with (`Receiver`, `Target`) is `webhooks.receiver`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from msgspec.structs import replace
from structlog.contextvars import bind_contextvars

from ci.backends import RunRequest
from ci.forges import checks
from ci.forges.checks import Contexts
from ci.forges.connections import ReportMode
from ci.forges.deliveries import Comment, Delivery, Ignored, Ping, PullRequestClosed, Rerun
from ci.forges.errors import ForgeError
from ci.forges.registry import Provider, detect_forge
from ci.forges.statuses import Status
from ci.forges.types import DeliveryId, RepositoryName, RepositoryRef
from ci.kube.repositories import Conflict, Repository
from pipelines.events import Event
from pipelines.planning import NothingToRun, Plan, SkippedJob
from pipelines.preparing import Prepared, Problems
from pipelines.problems import SpecError
from pipelines.spec import Spec
from webhooks import commands
from webhooks.answers import Answer, DeliveryRejectedError, answer_for_error, skipped
from webhooks.last_events import delivery_event
from webhooks.notices import post_notices, retire_waiting
from webhooks.receiver import Incoming, Labels, Receiver, RepositoryLookup, Target
from webhooks.skipping import skip_ci, skip_marker
from webhooks.trust import Decision, Trust, decide

log = structlog.get_logger(__name__)


async def receive(incoming: Incoming, receiver: Receiver, *, labels: Labels) -> Answer:
    """Detect, find the Repository, verify, parse, dedupe; then act on what the delivery means."""
    provider = _detect(incoming.headers)
    labels.forge = provider.kind.value
    reference = provider.locate(incoming.headers, incoming.body)
    repository = _find_repository(reference, provider, receiver.repositories)
    bind_contextvars(repository=repository.key)
    access = await receiver.repository_forges.for_repository(repository)
    provider.verify(incoming.headers, incoming.body, access.webhook_secret)
    delivery = provider.parse(incoming.headers, incoming.body)
    labels.event = delivery.event_name
    bind_contextvars(delivery_id=delivery.delivery_id, event=delivery.event_name)
    key = DeliveryId(f"{repository.key}/{delivery.delivery_id}")
    remembered = receiver.deliveries.recall(key)
    if remembered is not None:
        log.info("delivery seen before; answering as then", outcome=remembered.outcome)
        return remembered
    target = Target(
        repository=repository,
        name=reference.name if reference else RepositoryName(""),
        access=access,
        delivery_id=delivery.delivery_id,
        receiver=receiver,
    )
    try:
        answer = await _act(delivery, target)
    except Exception as error:
        # Verified, so the failure is worth showing on the Repository too; then it is
        # answered by the route as any refusal.
        _note_last_event(receiver, repository, delivery, answer_for_error(error, quiet=True))
        raise
    except asyncio.CancelledError:  # the route's timeout
        _note_last_event(receiver, repository, delivery, None, outcome="timeout")
        raise
    receiver.deliveries.remember(key, answer)
    log.info("delivery handled", outcome=answer.outcome, answer=dict(answer.body))
    _note_last_event(receiver, repository, delivery, answer)
    return answer


async def start_run(
    event: Event,
    target: Target,
    *,
    trust: Decision | None = None,
    name_prefix: str = "",
    only: commands.Selector | None = None,
) -> Answer:
    """Read the spec at the commit, lint, decide trust, plan, submit, cancel older; report
    "queued" only for a backend whose runs no one else reports. `only` cuts the plan down
    to the jobs a re-run runs (`webhooks.commands`)."""
    forge, repository = target.forge, target.repository
    if event.replaced_sha and target.connection.mode is ReportMode.CHECK_RUNS:
        superseded = checks.superseded_waiting(target.receiver.contexts, event.sha)
        await retire_waiting(forge, target.name, event.replaced_sha, superseded,
                             call=target.call)
    path = repository.spec_path
    source = await target.call(lambda: forge.read_file(target.name, path, event.sha))
    if source is None:
        return _skipped(f"no {repository.spec_path} at {event.sha[:12]}", outcome="no-spec")
    prepared = target.receiver.specs.prepare(source, path=repository.spec_path, event=event)
    if isinstance(prepared, Problems):
        return await _report_invalid(prepared.problems, event=event, target=target)
    spec = prepared.spec
    decision = trust or await decide(
        event,
        policy=repository.untrusted,
        has_write_access=lambda user, user_id: target.call(
            lambda: forge.has_write_access(target.name, user, user_id=user_id)
        ),
    )
    log.info("trust decided", trust=decision.trust.value, reason=decision.reason)
    contexts = target.receiver.contexts
    if decision.trust is Trust.WAIT_FOR_OK_TO_TEST:
        await _notify(target, event, [checks.waiting(contexts, decision.reason)])
        return _skipped(decision.reason, outcome="waiting")
    event, prepared = await _with_changed_files(event, prepared, target)
    try:
        planned = prepared.outcome
        if only is not None and isinstance(planned, Plan):
            planned = only(planned)
        if isinstance(planned, NothingToRun):
            if only is None:  # a re-run that runs nothing leaves the commit as it shows
                skipped = planned.skipped or _every_job_skipped(spec, planned.reason)
                notice = checks.nothing_to_run(contexts, planned.reason)
                await _notify(target, event, [notice, *_skip_notices(contexts, skipped)])
            return _skipped(planned.reason, outcome="nothing-to-run")
        request = RunRequest(
            repository=repository,
            event=event,
            plan=_without_secrets(planned) if decision.trust is Trust.WITHOUT_SECRETS else planned,
            trusted=decision.trust is Trust.TRUSTED,
            name_prefix=name_prefix,
            clone_token=(await target.call(
                lambda: target.receiver.repository_forges.clone_token(target.connection))
                if _needs_token(decision, repository) else None),
            concurrency_limit=spec.concurrency.limit or repository.concurrency_limit,
            forge=forge,
            forge_repository=target.name,
            note=decision.reason,
        )
        submitted = await target.receiver.backend.submit(request)
    except SpecError as error:
        return await _report_invalid(error.problems, event=event, target=target)
    bind_contextvars(pipeline_run=submitted.name)
    cancelled: tuple[str, ...] = ()
    if submitted.created and (spec.concurrency.cancel_in_progress or repository.cancel_in_progress):
        cancelled = await target.receiver.backend.cancel_superseded(request, newest=submitted.name)
    if not target.receiver.backend.reports_runs:
        await _report(target, event, checks.queued(contexts, submitted.name, note=decision.reason))
    await _notify(target, event, _skip_notices(contexts, planned.skipped))
    log.info("run submitted", created=submitted.created, cancelled=list(cancelled))
    body: dict[str, Any] = {"pipelineRuns": [submitted.name]}
    if cancelled:
        body["cancelled"] = list(cancelled)
    if decision.reason:
        body["trust"] = decision.reason
    return Answer(
        status_code=202,
        body=body,
        outcome="created" if submitted.created else "existing",
        runs_created=int(submitted.created),
    )


# Steps of `receive`


def _detect(headers: Mapping[str, str]) -> Provider:
    provider = detect_forge(headers)
    if provider is None:
        raise DeliveryRejectedError(
            400,
            "not a webhook delivery: no GitHub, Gitea/Forgejo or GitLab event header",
            outcome="unknown-forge",
        )
    return provider


def _find_repository(
    reference: RepositoryRef | None, provider: Provider, repositories: RepositoryLookup
) -> Repository:
    if reference is None:
        raise DeliveryRejectedError(400, "the payload names no repository", outcome="no-repository")
    found = repositories.lookup(reference.html_url)
    if found is None:
        found = repositories.lookup(reference.clone_url)
    if found is None:
        raise DeliveryRejectedError(
            404, f"no Repository object for {reference.html_url}", outcome="unknown-repository"
        )
    if isinstance(found, Conflict):
        log.error("repository URL claimed twice", conflict=found.describe())
        raise DeliveryRejectedError(409, found.describe(), outcome="conflict")
    if found.forge != provider.kind.value:
        raise DeliveryRejectedError(
            400,
            f"Repository {found.key} is on {found.forge}, but this delivery is from "
            f"{provider.kind.value}",
            outcome="wrong-forge",
        )
    return found


def _note_last_event(
    receiver: Receiver,
    repository: Repository,
    delivery: Delivery,
    answer: Answer | None,
    *,
    outcome: str = "error",
) -> None:
    """Hand the delivery's outcome to the Repository's status writer. Only ever called after
    the signature was verified: whoever lacks the secret must not be able to write it."""
    if receiver.last_events is not None:
        receiver.last_events.record(repository, delivery_event(delivery, answer, outcome=outcome))


async def _act(delivery: Delivery, target: Target) -> Answer:
    parsed = delivery.parsed
    if isinstance(parsed, Ping):
        return Answer(
            status_code=200, body={"pong": target.repository.key}, outcome="ping"
        )
    if isinstance(parsed, Ignored):
        return _skipped(f"ignored: {parsed.reason}", outcome="ignored")
    if isinstance(parsed, PullRequestClosed):
        cancelled = await target.receiver.backend.cancel_pull_request(
            target.repository, parsed.number
        )
        log.info("pull request closed", number=parsed.number, cancelled=list(cancelled))
        return Answer(
            status_code=202,
            body={"skipped": f"pull request {parsed.number} closed", "cancelled": list(cancelled)},
            outcome="closed",
        )
    if isinstance(parsed, Comment | Rerun):
        return await commands.on_command(
            parsed, target, forge_name=delivery.forge.value, start=start_run
        )
    marker = await skip_marker(parsed, target)
    if marker is not None:
        return await skip_ci(parsed, target, marker)
    return await start_run(parsed, target)


# Steps of `start_run`


async def _report(target: Target, event: Event, status: Status) -> None:
    """Report, or log why not: failing the delivery for a status would only make the forge
    show an error for an event that was handled."""
    forge = target.forge
    try:
        await target.call(lambda: forge.report_status(target.name, event.sha, status))
    except ForgeError as error:
        log.warning("could not report the status", error=str(error), title=status.title)


async def _notify(target: Target, event: Event, notices: Sequence[Status]) -> None:
    """Post what no run reports, only under contexts the commit does not show yet."""
    if notices:
        await post_notices(target.forge, target.name, event.sha, notices, call=target.call)


def _skip_notices(contexts: Contexts, skipped: Sequence[SkippedJob]) -> list[Status]:
    return [checks.job_skipped(contexts, job.name, job.reason) for job in skipped]


def _every_job_skipped(spec: Spec, reason: str) -> tuple[SkippedJob, ...]:
    """The pipeline's own `when` skips every job, each of which may be a required check."""
    return tuple(
        SkippedJob(name=job.name, reason=reason) for job in (*spec.jobs, *spec.finally_jobs)
    )


async def _report_invalid(problems: Any, *, event: Event, target: Target) -> Answer:
    status = checks.invalid_spec(target.receiver.contexts, tuple(problems))
    log.info("invalid spec", first=status.title, problems=len(tuple(problems)))
    await _notify(target, event, [status])
    return _skipped(status.title, outcome="invalid-spec")


def _uses_paths(spec: Spec) -> bool:
    conditions = [spec.when, *(job.when for job in (*spec.jobs, *spec.finally_jobs))]
    return any(when is not None and not when.paths.is_empty for when in conditions)


async def _with_changed_files(
    event: Event, prepared: Prepared, target: Target
) -> tuple[Event, Prepared]:
    """Pull requests' changed files from the forge, only when a `when.paths` needs them, and
    the spec planned again for them."""
    pull_request = event.pull_request
    if event.changed_files is not None or pull_request is None or not _uses_paths(prepared.spec):
        return event, prepared
    forge = target.forge
    files = await target.call(lambda: forge.changed_files(target.name, pull_request.number))
    event = replace(event, changed_files=files)
    return event, prepared.for_event(event)


def _without_secrets(planned: Plan) -> Plan:
    return replace(
        planned,
        jobs=tuple(replace(job, secrets=()) for job in planned.jobs),
        finally_jobs=tuple(replace(job, secrets=()) for job in planned.finally_jobs),
    )


def _needs_token(decision: Decision, repository: Repository) -> bool:
    # A fork's code must not get a token to the private repository: its clone step runs in
    # the same pod as the fork's own steps.
    return repository.private and decision.trust is Trust.TRUSTED


def _skipped(reason: str, *, outcome: str) -> Answer:
    return skipped(reason, outcome=outcome)
