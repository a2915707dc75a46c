"""The words on the forge: titles, the job table, failing log tails, the details link."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

from ci.controller.reporting import Report
from ci.controller.runs import JobState, RunState
from ci.forges.checks import (
    DEFAULT_PREFIX,
    WORDS,
    Contexts,
    format_duration,
    job_title,
    verdict,
    with_note,
)
from ci.forges.statuses import Conclusion, Status
from ci.kube import labels
from ci.kube.pipeline_runs import REPOSITORY_OBJECT_LABEL

# `repository` is the forge's "owner/name", `repository_object` the Repository's name, `job`
# the pipeline task (a matrix variant's own; empty on the run's own status).
DETAILS_URL_FIELDS = frozenset({"namespace", "name", "uid", "repository", "repository_object",
                                "sha", "task_run", "job"})


def check_details_url_template(template: str | None) -> None:
    """Fail at startup, not at the first report, on a template naming an unknown field."""
    if template is None:
        return
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in DETAILS_URL_FIELDS:
            raise ValueError(
                f"details URL template names {{{name}}}; known: {sorted(DETAILS_URL_FIELDS)}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Presentation:
    context_prefix: str = DEFAULT_PREFIX
    details_url_template: str | None = None
    # A job's own status links here instead, when set (the web pages' job page).
    job_details_url_template: str | None = None


def run_context(state: RunState, presentation: Presentation) -> str:
    contexts = Contexts(prefix=presentation.context_prefix)
    return contexts.run(state.run.annotations.get(labels.PIPELINE))


def details_url(
    state: RunState, presentation: Presentation, *, job: JobState | None = None
) -> str | None:
    template = presentation.details_url_template
    if job is not None and presentation.job_details_url_template is not None:
        template = presentation.job_details_url_template
    if template is None:
        return None
    run = state.run
    return template.format(
        namespace=run.namespace,
        name=run.name,
        uid=run.uid,
        repository=run.repository or "",
        repository_object=run.labels.get(REPOSITORY_OBJECT_LABEL, ""),
        sha=run.sha or "",
        task_run=job.task_run.name if job is not None and job.task_run is not None else "",
        job=job.pipeline_task if job is not None else "",
    )


def web_page_templates(public_url: str) -> tuple[str, str]:
    """The details links to the web pages under `public_url` (`webhooks.web`): the run page
    for the run's status, the job page for each job's."""
    base = public_url.rstrip("/").replace("{", "{{").replace("}", "}}")
    run = f"{base}/ui/{{namespace}}/{{repository_object}}/runs/{{name}}"
    return run, f"{run}/jobs/{{job}}"


def job_table(state: RunState) -> str:
    rows = ["| Job | Status | Duration |", "| --- | --- | --- |"]
    rows.extend(
        f"| `{job.name}` | {WORDS[job.conclusion]} | {format_duration(job.duration)} |"
        for job in state.jobs
    )
    return "\n".join(rows)


def run_title(state: RunState) -> str:
    # The receiver's note says why the run is as it is ("running without secrets": a fork
    # whose author has no write access); the issue asks that the decision be visible here.
    failed = [job.name for job in state.jobs if job.conclusion in _BAD]
    title = verdict(state.conclusion, seconds=state.duration, failed=failed)
    return with_note(title, state.run.annotations.get(labels.NOTE, ""))


_BAD = frozenset({Conclusion.FAILURE, Conclusion.ERROR, Conclusion.TIMED_OUT})


def log_section(job: JobState, log_tail: str | None) -> str:
    step = job.task_run.failing_step if job.task_run is not None else None
    message = job.task_run.condition.message if job.task_run and job.task_run.condition else ""
    parts = [f"### `{job.name}`"]
    if message:
        parts.append(message)
    if step is not None and log_tail is not None:
        # Four backticks: a log line with three must not end the block early.
        parts.append(f"Last lines of step `{step.name}`:\n\n````\n{log_tail.rstrip()}\n````")
    return "\n\n".join(parts)


def render(
    report: Report,
    state: RunState,
    *,
    presentation: Presentation,
    log_tails: Mapping[str, str],
) -> Status:
    """The status for one planned report. `log_tails` holds masked tails by job name."""
    external_id = f"{state.run.uid}/{report.key}"
    job = report.job
    if job is None:
        failed = [j for j in state.jobs if j.conclusion in _BAD]
        text = "\n\n".join(log_section(j, log_tails.get(j.name)) for j in failed)
        return Status(
            conclusion=report.conclusion,
            context=run_context(state, presentation),
            title=run_title(state),
            summary=job_table(state),
            text=text,
            details_url=details_url(state, presentation),
            external_id=external_id,
        )
    title = job_title(job.conclusion, seconds=job.duration)
    text = log_section(job, log_tails.get(job.name)) if job.conclusion in _BAD else ""
    return Status(
        conclusion=report.conclusion,
        context=Contexts(prefix=presentation.context_prefix).job(
            job.name, state.run.annotations.get(labels.PIPELINE)
        ),
        title=title,
        summary=f"Job `{job.name}` of run `{state.run.name}`: {title.lower()}.",
        text=text,
        details_url=details_url(state, presentation, job=job),
        external_id=external_id,
    )
