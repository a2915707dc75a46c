"""The web pages' routes (`/ui/...`, the URLs in `webhooks.web`): repositories, runs, a
run, a job's logs, a raw log, a live tail, and the run page's buttons.

Runs and logs come from the read service (`Runtime.read`), which checks no permission
itself; who may see and do what is asked only of `Runtime.web` (`webhooks.web.identity`),
before anything else about the repository is looked up:

- no `Runtime.web` (no public URL, or no cluster): every page is 404;
- an anonymous viewer of a repository they may not read: 303 to sign in, whether or not
  the repository exists; a signed-in one: 404, the same page as for a missing repository;
- a POST without a valid `csrf` field: 403; from a viewer without write access: 404.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Form, Header, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from ci.kube.pipeline_runs import ApiRefusedError, ApiUnavailableError
from ci.kube.repositories import Repository
from webhooks.api.events import ANSWERED, HEADERS, MEDIA_TYPE, log_events, resumed_offset
from webhooks.api.routes import Name
from webhooks.api.service import DEFAULT_LIMIT, MAX_LIMIT, ApiError, ReadService
from webhooks.web import actions
from webhooks.web.identity import Viewer, WebSide
from webhooks.web.reading import StepLog, step_log
from webhooks.web.rendering import STATIC, environment, page
from webhooks.web.views import (
    FAILED,
    STATES,
    UNFINISHED,
    ForgeLinks,
    failing_step,
    filter_runs,
    ordered_jobs,
    pull_request_word,
)
from webhooks.wiring import Runtime

router = APIRouter(prefix="/ui")

_RUN_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_RUN = "/{namespace}/{repository}/runs/{run}"
_STEP = _RUN + "/jobs/{job}/steps/{step}"


def include(app: FastAPI) -> None:
    """The pages on `app`: templates compiled now, static files, the routes. After the
    sign-in's routes: `/ui/signin/{provider}` has the shape of `/ui/{namespace}/{repo}`."""
    app.state.pages = environment()
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(router)


class _AnsweredError(Exception):
    """A page answered before it was rendered (sign in, 404, 503)."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


@dataclass(frozen=True, slots=True, kw_only=True)
class _Seen:
    """A repository page's viewer, who may read it."""

    runtime: Runtime
    web: WebSide
    read: ReadService
    viewer: Viewer | None
    repository: Repository

    def common(self, request: Request) -> dict[str, Any]:
        return _common(request, self.web, self.viewer) | {"repository": self.repository,
                                                          "links": ForgeLinks.of(self.repository),
                                                          "pr_word": pull_request_word(
                                                              self.repository.forge)}


def _common(request: Request, web: WebSide | None, viewer: Viewer | None) -> dict[str, Any]:
    signed_in = web is not None and viewer is not None
    return {
        "viewer": viewer,
        "csrf": web.sessions.csrf_token(request) if signed_in and web is not None else "",
        "signin_url": _signin_url(request),
    }


def _signin_url(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path += f"?{request.url.query}"
    return f"/ui/signin?{urlencode({'next': path})}"


def _sides(request: Request) -> tuple[Runtime, WebSide, ReadService]:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None or runtime.web is None or runtime.read is None:
        raise _AnsweredError(_error(request, None, None, 404, "Not found",
                                    message="The web pages are not served here."))
    return runtime, runtime.web, runtime.read


def _error(request: Request, web: WebSide | None, viewer: Viewer | None, status: int,
           title: str, *, message: str) -> Response:
    return page(request, "error.html", _common(request, web, viewer) | {
        "title": title, "message": message, "status": status}, status=status)


def _not_found(request: Request, web: WebSide, viewer: Viewer | None) -> Response:
    # The same words for a repository that does not exist and one the viewer may not read.
    return _error(request, web, viewer, 404, "Not found",
                  message="There is nothing here, or you may not see it.")


async def _seen(request: Request, namespace: str, name: str) -> _Seen:
    runtime, web, read = _sides(request)
    viewer = web.sessions.viewer(request)
    repository = next((r for r in read.repositories()
                       if r.namespace == namespace and r.name == name), None)
    if repository is None or not await web.access.may_read(viewer, repository):
        if viewer is None:
            raise _AnsweredError(RedirectResponse(_signin_url(request), status_code=303))
        raise _AnsweredError(_not_found(request, web, viewer))
    return _Seen(runtime=runtime, web=web, read=read, viewer=viewer, repository=repository)


async def _call(request: Request, seen: _Seen, call: Any, *args: Any, **kwargs: Any) -> Any:
    """A read service call in a thread; what it refuses is a page, never a 500."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except ApiError as error:
        if error.status == 404:
            raise _AnsweredError(_not_found(request, seen.web, seen.viewer)) from error
        raise _AnsweredError(_error(request, seen.web, seen.viewer, error.status, "Refused",
                                    message=error.message)) from error
    except ApiUnavailableError as error:
        raise _AnsweredError(_error(request, seen.web, seen.viewer, 503, "Unavailable",
                                    message="The cluster does not answer; try again soon.")
                             ) from error
    except ApiRefusedError as error:
        raise _AnsweredError(_error(request, seen.web, seen.viewer, 502, "Refused",
                                    message="The cluster refused Ferry's receiver.")) from error


# --- pages ---------------------------------------------------------------------------------


@router.get("/")
async def repositories_page(request: Request) -> Response:
    try:
        _, web, read = _sides(request)
    except _AnsweredError as answered:
        return answered.response
    viewer = web.sessions.viewer(request)
    every = sorted(read.repositories(), key=lambda r: r.key)
    allowed = await asyncio.gather(*(web.access.may_read(viewer, r) for r in every))
    shown = [repository for repository, ok in zip(every, allowed, strict=True) if ok]
    return page(request, "repositories.html", _common(request, web, viewer) | {
        "repositories": shown})


@router.get("/{namespace}/{repository}")
async def runs_page(request: Request, *, namespace: Name, repository: Name,
                    branch: Annotated[str | None, Query(max_length=256)] = None,
                    state: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    try:
        seen = await _seen(request, namespace, repository)
        wanted_state = state if state in STATES else None
        limit = MAX_LIMIT if branch or wanted_state else DEFAULT_LIMIT
        runs = await _call(request, seen, seen.read.list_runs, namespace, repository,
                           limit=limit)
    except _AnsweredError as answered:
        return answered.response
    shown = filter_runs(runs, branch=branch, state=wanted_state)[:DEFAULT_LIMIT]
    return page(request, "runs.html", seen.common(request) | {
        "runs": shown, "branch": branch or "", "state": wanted_state or "",
        "states": STATES})


@router.get(_RUN)
async def run_page(request: Request, *, namespace: Name, repository: Name, run: Name,
                   done: Annotated[str | None, Query(max_length=32)] = None,
                   started: Annotated[str | None, Query(max_length=63)] = None) -> Response:
    try:
        seen = await _seen(request, namespace, repository)
        found = await _call(request, seen, seen.read.find_run, namespace, run, repository)
        jobs = ordered_jobs(found.get("jobs") or [])
        tails = await _call(request, seen, _tails, seen.read, found, jobs)
        may_write = seen.viewer is not None and await seen.web.access.may_write(
            seen.viewer, seen.repository)
    except _AnsweredError as answered:
        return answered.response
    return page(request, "run.html", seen.common(request) | {
        "run": found, "jobs": jobs, "tails": tails, "may_write": may_write,
        "can_rerun": may_write and found.get("state") not in UNFINISHED and bool(
            found.get("sha")) and bool(found.get("forgeRepository")),
        "can_cancel": may_write and found.get("inCluster") and found.get("state") in UNFINISHED,
        "message": actions.MESSAGES.get(done or ""),
        "started": started if started and _RUN_NAME.match(started) else None,
    })


def _tails(read: ReadService, run: Mapping[str, Any], jobs: list[Mapping[str, Any]]
           ) -> dict[str, StepLog]:
    """The failing step's last lines of each failed job, by job."""
    tails = {}
    for job in jobs:
        if job.get("state") in FAILED:
            step = failing_step(job)
            if step is not None:
                try:
                    tails[str(job["name"])] = step_log(read, run, job, step, failing=True,
                                                       tail=True)
                except ANSWERED:
                    continue  # the run page shows without it; the job page says why
    return tails


@router.get(_RUN + "/jobs/{job}")
async def job_page(request: Request, *, namespace: Name, repository: Name, run: Name,
                   job: Name) -> Response:
    try:
        seen = await _seen(request, namespace, repository)
        found = await _call(request, seen, seen.read.find_run, namespace, run, repository)
        wanted = next((j for j in found.get("jobs") or [] if j.get("name") == job), None)
        if wanted is None:
            raise _AnsweredError(_not_found(request, seen.web, seen.viewer))
        steps = await _call(request, seen, _steps, seen.read, found, wanted)
    except _AnsweredError as answered:
        return answered.response
    return page(request, "job.html", seen.common(request) | {
        "run": found, "job": wanted, "steps": steps})


def _steps(read: ReadService, run: Mapping[str, Any], job: Mapping[str, Any]
           ) -> list[StepLog]:
    failing = failing_step(job) if job.get("state") in FAILED else None
    return [step_log(read, run, job, step, failing=step is failing)
            for step in job.get("steps") or ()]


@router.get(_STEP + "/raw")
async def raw_log(request: Request, *, namespace: Name, repository: Name, run: Name, job: Name,
                  step: Name) -> Response:
    try:
        seen = await _seen(request, namespace, repository)
        follower = await _call(request, seen, seen.read.step_log, namespace, repository, run,
                               job, step, offset=0, follow=False)
    except _AnsweredError as answered:
        return answered.response
    filename = f"{run}-{job}-{step}.log"  # DNS labels: nothing to quote
    return StreamingResponse(iter(follower), media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@router.get(_STEP + "/stream")
async def log_stream(request: Request, *, namespace: Name, repository: Name, run: Name,
                     job: Name, step: Name, offset: Annotated[int, Query(ge=0)] = 0,
                     last_event_id: Annotated[str | None, Header()] = None) -> Response:
    """The live tail: the read API's events (`webhooks.api.events`), for the session."""
    try:
        seen = await _seen(request, namespace, repository)
        follower = await _call(request, seen, seen.read.step_log, namespace, repository, run,
                               job, step, offset=resumed_offset(offset, last_event_id),
                               follow=True)
    except _AnsweredError as answered:
        return answered.response
    return StreamingResponse(log_events(follower), media_type=MEDIA_TYPE, headers=HEADERS)


# --- buttons -------------------------------------------------------------------------------


async def _writer(request: Request, namespace: str, repository: str, run: str,
                  csrf: str | None) -> tuple[_Seen, Mapping[str, Any]]:
    seen = await _seen(request, namespace, repository)
    if not seen.web.sessions.check_csrf(request, csrf):
        raise _AnsweredError(_error(
            request, seen.web, seen.viewer, 403, "Refused",
            message="The form is too old or did not come from this site: go back, reload the "
                    "page and try again."))
    if seen.viewer is None or not await seen.web.access.may_write(seen.viewer,
                                                                  seen.repository):
        raise _AnsweredError(_not_found(request, seen.web, seen.viewer))
    found = await _call(request, seen, seen.read.find_run, namespace, run, repository)
    return seen, found


def _back(namespace: str, repository: str, run: str, outcome: actions.Outcome) -> Response:
    query = {"done": outcome.done} | ({"started": outcome.run} if outcome.run else {})
    path = f"/ui/{quote(namespace)}/{quote(repository)}/runs/{quote(run)}"
    return RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)


@router.post(_RUN + "/rerun")
async def rerun_run(request: Request, *, namespace: Name, repository: Name, run: Name,
                    csrf: Annotated[str | None, Form(max_length=512)] = None,
                    what: Annotated[str, Form(pattern="^(failed|all)$")] = "failed"
                    ) -> Response:
    try:
        seen, found = await _writer(request, namespace, repository, run, csrf)
    except _AnsweredError as answered:
        return answered.response
    assert seen.viewer is not None
    outcome = await actions.rerun(seen.runtime.receiver, seen.repository, found,
                                  login=seen.viewer.login, everything=what == "all")
    return _back(namespace, repository, run, outcome)


@router.post(_RUN + "/cancel")
async def cancel_run(request: Request, *, namespace: Name, repository: Name, run: Name,
                     csrf: Annotated[str | None, Form(max_length=512)] = None) -> Response:
    try:
        seen, _ = await _writer(request, namespace, repository, run, csrf)
    except _AnsweredError as answered:
        return answered.response
    assert seen.viewer is not None
    outcome = await actions.cancel(seen.runtime.receiver, seen.repository, run,
                                   login=seen.viewer.login)
    return _back(namespace, repository, run, outcome)
