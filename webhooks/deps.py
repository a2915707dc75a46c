"""The routes' dependencies, as `Annotated` aliases, read from `app.state` (set by
`create_app` and its lifespan). Tests swap no dependency: they build the app with real
settings and reach its parts through `app.state.runtime`.

They are `async def` though they never wait: FastAPI runs a plain `def` dependency in its
thread pool, three thread hand-offs per delivery for three attribute reads (4.5% of the
receiver's CPU, `python3 -m bench.webhooks --profile`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ci.settings import Settings
from webhooks.metrics import Metrics
from webhooks.wiring import Runtime


async def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


async def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


async def metrics(request: Request) -> Metrics:
    found: Metrics = request.app.state.metrics
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]
SettingsDep = Annotated[Settings, Depends(settings)]
MetricsDep = Annotated[Metrics, Depends(metrics)]
