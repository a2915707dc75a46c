"""Leader election on a Lease: only the holder reports, admits and prunes.

`held()` is checked before every forge call, not just at startup: a leader whose renewals
fail stops reporting once its lease may have run out, before a standby can take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from ci.controller.settings import LeaderSettings
from ci.kube.leases import Leases, now

log = structlog.get_logger(__name__)

# Of the lease's duration, the share a leader trusts itself with after a renewal: clocks
# drift and the renewal's own round trip counts against it.
TRUSTED_SHARE = 0.8


class Leadership:
    def __init__(self, leases: Leases | None, *, identity: str, settings: LeaderSettings
                 ) -> None:
        self._leases = leases  # None: leader election is off (one replica)
        self._identity = identity
        self._settings = settings
        self._valid_until = 0.0

    def held(self) -> bool:
        return self._leases is None or time.monotonic() < self._valid_until

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait for the lease; False if stopped first."""
        while not stop.is_set():
            if await self._try():
                log.info("leading", identity=self._identity)
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.retry_interval)
        return False

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew until stopped (then release) or until the lease is lost (then return)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.renew_interval)
            if stop.is_set():
                break
            renewed = await self._try()
            if not renewed and not self.held():
                log.error("lost the lease", identity=self._identity)
                return
        await self._release()

    async def _try(self) -> bool:
        if self._leases is None:
            return True
        leases = self._leases
        started = time.monotonic()
        try:
            record = await asyncio.to_thread(leases.read)
            moment = now()
            if record.holder not in (None, self._identity) and not record.expired(moment):
                return False
            written = await asyncio.to_thread(
                leases.write, previous=record, holder=self._identity,
                duration=self._settings.duration, moment=moment,
            )
        except Exception as error:  # the API server is down: keep what we had, for now
            log.warning("lease call failed", error=repr(error)[:300])
            return False
        if written:
            self._valid_until = started + self._settings.duration * TRUSTED_SHARE
        return written

    async def _release(self) -> None:
        if self._leases is None or not self.held():
            return
        leases = self._leases
        self._valid_until = 0.0
        try:
            record = await asyncio.to_thread(leases.read)
            await asyncio.to_thread(leases.release, previous=record, holder=self._identity)
        except Exception as error:  # the standby takes over after the duration anyway
            log.warning("lease release failed", error=repr(error)[:300])
