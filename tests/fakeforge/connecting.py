"""Clients wired to a fake forge, failing the test on any request the real API would reject."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from tests.fakeforge.forge import FakeForge


@contextlib.asynccontextmanager
async def connected(forge: FakeForge) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to `forge` in-process; checks for violations on exit."""
    async with httpx.AsyncClient(transport=forge.transport(), timeout=10) as http:
        yield http
    forge.assert_no_violations()
