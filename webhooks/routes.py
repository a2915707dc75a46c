"""HTTP routes: `POST /hooks` (every forge), `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

import asyncio
import time

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from webhooks.answers import answer_for_error
from webhooks.bodies import read_limited
from webhooks.deps import MetricsDep, RuntimeDep, SettingsDep
from webhooks.handling import receive
from webhooks.metrics import CONTENT_TYPE
from webhooks.receiver import Incoming, Labels

router = APIRouter()


@router.post("/hooks")
async def hooks(
    request: Request, runtime: RuntimeDep, settings: SettingsDep, metrics: MetricsDep
) -> JSONResponse:
    """One endpoint for every forge: the forge is known from the headers."""
    started = time.perf_counter()
    # Each request runs in its own context copy: bindings never leak into another delivery.
    structlog.contextvars.clear_contextvars()
    labels = Labels()
    limits = settings.webhooks
    try:
        # The body is read inside the timeout: a client that trickles bytes is cut off too.
        async with asyncio.timeout(limits.request_timeout_seconds):
            body = await read_limited(
                request.headers, request.stream(), limit=limits.max_body_bytes
            )
            headers = {name.lower(): value for name, value in request.headers.items()}
            answer = await receive(
                Incoming(headers=headers, body=body), runtime.receiver, labels=labels
            )
    except Exception as error:
        refused = answer_for_error(error)
        if refused is None:
            raise
        answer = refused
    structlog.get_logger(__name__).debug("answered", status=answer.status_code)
    metrics.events.labels(labels.forge, labels.event, answer.outcome).inc()
    metrics.latency.labels(labels.forge).observe(time.perf_counter() - started)
    if answer.runs_created:
        metrics.runs_created.labels(labels.forge).inc(answer.runs_created)
    return JSONResponse(dict(answer.body), status_code=answer.status_code)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers; nothing else is checked (a liveness probe must not flap)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when runs can be created: API server reachable and Repository index listed."""
    reason = await runtime.readiness()
    if reason is not None:
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready", "mode": runtime.mode})


@router.get("/metrics")
async def metrics_page(metrics: MetricsDep) -> Response:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE)
