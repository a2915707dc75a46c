"""One step's log for a reader: from the archive when it is there, else live from the pod,
switching to the archive once the step has ended, with no gap and no line twice.

Why it works: the live log is masked with the same rule as the archive (`ci.masking`), and a
stream masked chunk by chunk gives out a prefix of what masking the whole would give, so
every byte sent live is the byte at the same offset of the archived log. The reader keeps the
offset it has reached; after the live stream ends (the step ended, or the connection broke)
it goes on from that offset: in a new live stream (whose first bytes it skips) while the
step runs, then in the archive. If no record appears within `archive_wait` seconds (no
archive configured, or the controller is late), the pod's whole log is read once more,
masked whole, and sent from the same offset.

A log cut by the archive's size limit is the exception: past the cut, the archive has only
its marker line, so a reader that followed live past it sees no marker.
"""

from __future__ import annotations

import codecs
import enum
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ci.archive.steps import StepRecord
from ci.kube.errors import LogUnavailableError
from ci.masking import Masker


class Phase(enum.Enum):
    WAITING = "waiting"  # no container yet (queued, pending, earlier steps running)
    RUNNING = "running"
    ENDED = "ended"  # terminated, skipped, or the run is over


class StepSource(Protocol):
    def record(self) -> StepRecord | None:
        """The step's archive record; None until it is archived."""

    def archived(self, offset: int) -> Iterator[bytes] | None:
        """The archived log from `offset`; None if there is none."""

    def phase(self) -> Phase:
        """Where the step is now (read again on each call)."""

    def live(self, *, follow: bool) -> Iterator[bytes]:
        """The container's raw log from its first byte; raises `LogUnavailableError`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowTimings:
    poll: float = 1.0  # seconds between looks while a step waits, or its record is awaited
    archive_wait: float = 30.0  # seconds an ended step's record is awaited before the pod


class LogFollower:
    """Iterate for the masked log's bytes from `offset` (an empty chunk now and then while a
    step waits to start); then `record` is the step's record (None: it was not archived) and
    `offset` where the log ended."""

    def __init__(self, source: StepSource, *, masker: Masker, offset: int = 0,
                 follow: bool = True, timings: FollowTimings = FollowTimings(),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._source = source
        self._masker = masker
        self.offset = offset
        self._follow = follow
        self._timings = timings
        self._sleep = sleep
        self.record: StepRecord | None = None

    def source_record(self) -> StepRecord | None:
        """The step's record now (blocks: it reads the store)."""
        return self._source.record()

    def archived_length(self) -> int:
        """Bytes of the archived log, its cut marker included; 0 when not archived."""
        record = self._source.record()
        if record is None:
            return 0
        if not record.truncated:
            return record.stored
        return sum(len(chunk) for chunk in self._source.archived(0) or ())

    def __iter__(self) -> Iterator[bytes]:
        self.record = self._source.record()
        if self.record is not None:
            yield from self._from_archive()
            return
        if self._follow:
            yield from self._while_running()
            self.record = self._awaited_record()
            if self.record is not None:
                yield from self._from_archive()
                return
        yield from self._from_pod()

    def _from_archive(self) -> Iterator[bytes]:
        chunks = self._source.archived(self.offset)
        for chunk in chunks or ():
            self.offset += len(chunk)
            yield chunk

    def _while_running(self) -> Iterator[bytes]:
        while True:
            phase = self._source.phase()
            if phase is Phase.ENDED:
                return
            if phase is Phase.WAITING:
                self._sleep(self._timings.poll)
                yield b""  # nothing yet: lets a stream say it is alive, and see a reader gone
                continue
            try:
                chunks = self._source.live(follow=True)
            except LogUnavailableError:
                self._sleep(self._timings.poll)
                yield b""
                continue
            before = self.offset
            yield from self._skipping(self._masked(chunks, finish=False))
            if self.offset == before:  # nothing new: the step is ending; look again soon
                self._sleep(self._timings.poll)

    def _awaited_record(self) -> StepRecord | None:
        poll, wait = self._timings.poll, self._timings.archive_wait
        looks = 1 + (math.ceil(wait / poll) if poll > 0 else 0)
        for look in range(looks):
            if look:
                self._sleep(poll)
            record = self._source.record()
            if record is not None:
                return record
        return None

    def _from_pod(self) -> Iterator[bytes]:
        try:
            chunks = self._source.live(follow=False)
        except LogUnavailableError:
            return
        yield from self._skipping(self._masked(chunks, finish=True))

    def _masked(self, chunks: Iterator[bytes], *, finish: bool) -> Iterator[bytes]:
        """The masked text of a log read from its start, as bytes; without `finish`, what the
        masker holds back at the end (a secret's possible beginning) is not given out."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream = self._masker.stream(eager=True)  # a quiet step's last line shown at once
        for chunk in chunks:
            text = stream.feed(decoder.decode(chunk))
            if text:
                yield text.encode()
        if finish:
            rest = stream.feed(decoder.decode(b"", final=True)) + stream.finish()
            if rest:
                yield rest.encode()

    def _skipping(self, masked: Iterator[bytes]) -> Iterator[bytes]:
        """`masked` (a log from its first byte) from `self.offset` on."""
        position = 0
        for data in masked:
            end = position + len(data)
            if end > self.offset:
                yield data[max(0, self.offset - position):]
                self.offset = end
            position = end
