"""The read API, `/api/v1/...`: repositories, runs, one run's jobs and steps, a step's log as
text (`Range` or `?offset=`) and as Server-Sent Events (`/log/stream`). docs/logs.md says
what each answers; `webhooks.api.service` does the work.

Every route needs `Authorization: Bearer <token>`: a Kubernetes token, checked with a
TokenReview, and the caller must be allowed `get` on `pipelineruns` in the namespace.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ci.kube.pipeline_runs import ApiRefusedError, ApiUnavailableError
from ci.kube.reviews import Identity
from webhooks.api.events import ANSWERED, HEADERS, MEDIA_TYPE, log_events, resumed_offset
from webhooks.api.service import DEFAULT_LIMIT, MAX_LIMIT, ApiError, ReadService

router = APIRouter(prefix="/api/v1")

TEXT = "text/plain; charset=utf-8"
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
# Every name in a path is a DNS label (namespaces, Repositories, runs, tasks, steps): anything
# else is refused with 422 before it reaches a label selector or an archive path.
Name = Annotated[str, Path(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]


def _service(request: Request) -> ReadService:
    runtime = getattr(request.app.state, "runtime", None)
    service: ReadService | None = getattr(runtime, "read", None)
    if service is None:
        raise ApiError(404, "the read API needs a cluster (this receiver runs pipelines "
                            "locally)")
    return service


def _failed(error: Exception) -> JSONResponse:
    if isinstance(error, ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)
    if isinstance(error, ApiUnavailableError):
        return JSONResponse({"error": f"the API server is unavailable: {error}"},
                            status_code=503)
    assert isinstance(error, ApiRefusedError)
    # Ferry's own ServiceAccount was refused: a deployment problem, never the caller's.
    return JSONResponse({"error": f"the API server refused the receiver: {error}"},
                        status_code=502)


_ANSWERED = ANSWERED


async def _allowed(request: Request, authorization: str | None, namespace: str | None
                   ) -> tuple[ReadService, Identity]:
    service = _service(request)
    identity = await asyncio.to_thread(service.caller, authorization)
    if namespace is not None:
        await asyncio.to_thread(service.check, identity, namespace)
    return service, identity


Authorization = Annotated[str | None, Header()]


@router.get("/repositories")
async def repositories(request: Request, authorization: Authorization = None) -> Response:
    try:
        service, identity = await _allowed(request, authorization, None)
        found = await asyncio.to_thread(service.repositories_for, identity)
    except _ANSWERED as error:
        return _failed(error)
    return JSONResponse({"repositories": found})


@router.get("/namespaces/{namespace}/repositories/{repository}/runs")
async def runs(request: Request, namespace: Name, repository: Name,
               limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
               authorization: Authorization = None) -> Response:
    try:
        service, _ = await _allowed(request, authorization, namespace)
        found = await asyncio.to_thread(service.list_runs, namespace, repository, limit=limit)
    except _ANSWERED as error:
        return _failed(error)
    return JSONResponse({"runs": found})


@router.get("/namespaces/{namespace}/runs/{run}")
async def run_anywhere(request: Request, namespace: Name, run: Name,
                       authorization: Authorization = None) -> Response:
    """One run, its Repository found from the run (what `ferry logs RUN` asks)."""
    try:
        service, _ = await _allowed(request, authorization, namespace)
        found = await asyncio.to_thread(service.find_run, namespace, run)
    except _ANSWERED as error:
        return _failed(error)
    return JSONResponse(found)


@router.get("/namespaces/{namespace}/repositories/{repository}/runs/{run}")
async def one_run(request: Request, namespace: Name, repository: Name, run: Name,
                  authorization: Authorization = None) -> Response:
    try:
        service, _ = await _allowed(request, authorization, namespace)
        found = await asyncio.to_thread(service.find_run, namespace, run, repository)
    except _ANSWERED as error:
        return _failed(error)
    return JSONResponse(found)


_STEP = "/namespaces/{namespace}/repositories/{repository}/runs/{run}/jobs/{job}/steps/{step}"


@router.get(f"{_STEP}/log")
async def step_log(request: Request, *, namespace: Name, repository: Name, run: Name, job: Name,
                   step: Name, offset: Annotated[int, Query(ge=0)] = 0,
                   authorization: Authorization = None,
                   range_header: Annotated[str | None, Header(alias="Range")] = None
                   ) -> Response:
    """The log as text from `offset` (or `Range: bytes=N-[M]`, answered 206 once archived).
    A step still running gives what it printed so far (`X-Ferry-Log: live`)."""
    wanted = _RANGE.fullmatch(range_header.strip()) if range_header else None
    if range_header and wanted is None:
        return JSONResponse({"error": "only one `bytes=N-` or `bytes=N-M` range is served"},
                            status_code=416)
    first = int(wanted.group(1)) if wanted else offset
    last = int(wanted.group(2)) if wanted and wanted.group(2) else None
    if last is not None and last < first:
        return JSONResponse({"error": "the range ends before it starts"}, status_code=416)
    try:
        service, _ = await _allowed(request, authorization, namespace)
        follower = await asyncio.to_thread(
            service.step_log, namespace, repository, run, job, step, offset=first,
            follow=False)
        record = await asyncio.to_thread(follower.source_record)
    except _ANSWERED as error:
        return _failed(error)
    headers = {"X-Ferry-Log": "archived" if record is not None else "live",
               "Accept-Ranges": "bytes"}
    if record is not None and record.lost is not None:
        headers["X-Ferry-Log-Lost"] = record.lost[:200].encode("ascii", "replace").decode()
    if wanted is None or record is None:
        # A live log's length is not known yet: a Range is ignored (RFC 9110), `?offset` is not.
        return StreamingResponse(iter(follower), media_type=TEXT, headers=headers)
    total = await asyncio.to_thread(follower.archived_length)
    if first >= total:
        return JSONResponse({"error": f"the log has {total} bytes"}, status_code=416,
                            headers={"Content-Range": f"bytes */{total}"})
    end = total - 1 if last is None else min(last, total - 1)
    headers["Content-Range"] = f"bytes {first}-{end}/{total}"
    return StreamingResponse(_limited(iter(follower), end - first + 1), status_code=206,
                             media_type=TEXT, headers=headers)


def _limited(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    for chunk in chunks:
        if size <= 0:
            return
        yield chunk[:size]
        size -= len(chunk)


@router.get(f"{_STEP}/log/stream")
async def step_log_stream(request: Request, *, namespace: Name, repository: Name, run: Name,
                          job: Name, step: Name, offset: Annotated[int, Query(ge=0)] = 0,
                          authorization: Authorization = None,
                          last_event_id: Annotated[str | None, Header()] = None) -> Response:
    """Server-Sent Events: `log` events (`{"text": ...}`, `id` the byte offset reached) while
    the step prints, live then from the archive; one `end` event with the outcome."""
    offset = resumed_offset(offset, last_event_id)
    try:
        service, _ = await _allowed(request, authorization, namespace)
        follower = await asyncio.to_thread(
            service.step_log, namespace, repository, run, job, step, offset=offset,
            follow=True)
    except _ANSWERED as error:
        return _failed(error)
    return StreamingResponse(log_events(follower), media_type=MEDIA_TYPE, headers=HEADERS)
