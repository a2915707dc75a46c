"""The receiver's FastAPI app: `create_app(settings)`; nothing is created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI

from ci.archive.store import LogStore
from ci.logs import Redactor
from ci.settings import Settings
from webhooks import routes
from webhooks.api import routes as api_routes
from webhooks.metrics import Metrics
from webhooks.web import pages, signin
from webhooks.wiring import open_runtime


def create_app(
    settings: Settings,
    *,
    redactor: Redactor | None = None,
    forge_transport: httpx.AsyncBaseTransport | None = None,
    archive: LogStore | None = None,
) -> FastAPI:
    """The app for `settings`. `redactor` is the one `ci.logs.configure` returned, so secrets
    read while serving are masked in logs; `forge_transport` replaces the network for every
    forge call (tests pass a fake forge's); `archive` is the step-log store the read API
    serves archived logs from (None: only logs still in the cluster)."""
    redactor = redactor or Redactor()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.runtime = await open_runtime(
                settings,
                stack,
                redactor=redactor,
                metrics=app.state.metrics,
                forge_transport=forge_transport,
                archive=archive,
            )
            yield

    app = FastAPI(
        title="Ferry webhooks",
        lifespan=lifespan,
        # An internet-facing receiver publishes no API browser.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.include_router(routes.router)
    app.include_router(api_routes.router)
    # Before the pages' router: `/ui/signin/{provider}` would match `/ui/{namespace}/{repository}`.
    app.include_router(signin.router)
    pages.include(app)  # last: after any other /ui route (webhooks.web.pages)
    return app
