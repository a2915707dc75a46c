"""Forge calls retried on temporary failures, with the delays from settings (backoff is data)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from ci.forges.errors import ForgeError
from ci.settings import ForgeSettings

T = TypeVar("T")
log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]


async def with_retries(
    call: Callable[[], Awaitable[T]], *, settings: ForgeSettings, sleep: Sleep = asyncio.sleep
) -> T:
    """`call()`, again after each delay in `settings.backoff_seconds` while it fails with a
    temporary `ForgeError`. A `Retry-After` beyond `max_retry_after_seconds` is not waited
    for: the delivery fails now and the forge shows it, rather than holding the request."""
    delays = iter(settings.backoff_seconds)
    while True:
        try:
            return await call()
        except ForgeError as error:
            delay = next(delays, None) if error.temporary else None
            if delay is None:
                raise
            if error.retry_after is not None:
                if error.retry_after > settings.max_retry_after_seconds:
                    raise
                delay = max(delay, error.retry_after)
            log.info("forge call failed; retrying", error=str(error), retry_in=delay)
            await sleep(delay)
