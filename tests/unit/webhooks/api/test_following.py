"""The live-to-archive switch with scripted streams: whatever the live stream did (cut
mid-line, mid-secret, mid-character, broken and restarted), the reader gets the archived
log exactly once, from any offset."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator

import pytest

from ci.archive.directory import DirectoryStore
from ci.archive.layout import StepKey
from ci.archive.steps import StepDetails, StepRecord, archive_step, read_log, read_record
from ci.kube.errors import LogUnavailableError
from ci.masking import Masker
from webhooks.api.following import FollowTimings, LogFollower, Phase

SECRET = "hunter2-very-secret"
LOG = ("line one\n" f"token={SECRET}\n" "ünïcödé ✓ line\n" "\x1b[32mgreen\x1b[0m\n"
       "last line without newline").encode()
KEY = StepKey(namespace="team", repository="app", run="run-1", job="build", step="test")


class Scripted:
    """A step whose phases, live streams and archive are scripted by the test."""

    def __init__(self, store: DirectoryStore, *, phases: list[Phase],
                 streams: list[list[bytes] | None], archive_after: int) -> None:
        self.store = store
        self.phases = phases
        self.streams = streams
        self.archive_after = archive_after  # phase() calls before the archive is written
        self.calls = 0
        self.slept: list[float] = []

    def record(self) -> StepRecord | None:
        return read_record(self.store, KEY)

    def archived(self, offset: int) -> Iterator[bytes] | None:
        return read_log(self.store, KEY, offset=offset)

    def phase(self) -> Phase:
        self.calls += 1
        if self.calls == self.archive_after:
            archive_step(self.store, key=KEY, chunks=[LOG], masker=Masker([SECRET]),
                         details=StepDetails(job="build", exit_code=0))
        return self.phases.pop(0) if self.phases else Phase.ENDED

    def live(self, *, follow: bool) -> Iterator[bytes]:
        if not follow:
            return iter([LOG])
        script = self.streams.pop(0) if self.streams else [LOG]
        if script is None:
            raise LogUnavailableError("not started")
        return iter(script)


def expected(offset: int = 0) -> bytes:
    return Masker([SECRET]).mask(LOG.decode()).encode()[offset:]


def pieces(data: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def follow(source: Scripted, *, offset: int = 0) -> tuple[bytes, LogFollower]:
    follower = LogFollower(source, masker=Masker([SECRET]), offset=offset,
                           timings=FollowTimings(poll=1.0, archive_wait=5.0),
                           sleep=source.slept.append)
    return b"".join(follower), follower


@pytest.mark.parametrize("cut", [3, 9, 15, 20, 33, 36, 46, len(LOG) - 1])
def test_a_live_stream_cut_anywhere_then_the_archive_gives_the_log_once(
    tmp_path: object, cut: int
) -> None:
    # The live stream stops at `cut` (mid-line, mid-secret, mid-character: byte 36 is inside "ü"),
    # the step ends, and the rest comes from the archive.
    store = DirectoryStore(tmp_path)  # type: ignore[arg-type]
    source = Scripted(store, phases=[Phase.RUNNING], streams=[pieces(LOG[:cut], 2, 7)],
                      archive_after=2)
    text, follower = follow(source)
    assert text == expected()
    assert SECRET.encode() not in text
    assert follower.record is not None and follower.record.details.exit_code == 0
    assert follower.offset == len(expected())


def test_a_broken_connection_restarts_live_without_repeating_a_line(tmp_path: object) -> None:
    store = DirectoryStore(tmp_path)  # type: ignore[arg-type]
    source = Scripted(store, phases=[Phase.WAITING, Phase.RUNNING, Phase.RUNNING, Phase.RUNNING],
                      streams=[None, pieces(LOG[:12], 5), pieces(LOG[:40], 20)],
                      archive_after=5)
    text, _follower = follow(source)
    assert text == expected()


@pytest.mark.parametrize("offset", [0, 1, 25, len(expected()) - 1, len(expected())])
def test_reading_from_an_offset_skips_exactly_that_much(tmp_path: object, offset: int) -> None:
    store = DirectoryStore(tmp_path)  # type: ignore[arg-type]
    source = Scripted(store, phases=[Phase.RUNNING], streams=[pieces(LOG[:30], 10)],
                      archive_after=2)
    text, _follower = follow(source, offset=offset)
    assert text == expected(offset)


def test_an_archived_step_is_read_from_the_archive_alone(tmp_path: object) -> None:
    store = DirectoryStore(tmp_path)  # type: ignore[arg-type]
    archive_step(store, key=KEY, chunks=[LOG], masker=Masker([SECRET]),
                 details=StepDetails(job="build", exit_code=3))

    class NoLive(Scripted):
        def live(self, *, follow: bool) -> Iterator[bytes]:
            raise AssertionError("an archived step is never read from its pod")

    text, follower = follow(NoLive(store, phases=[], streams=[], archive_after=0), offset=5)
    assert text == expected(5)
    assert follower.record is not None and follower.record.details.exit_code == 3


def test_without_an_archive_the_pods_whole_log_finishes_the_stream(tmp_path: object) -> None:
    # No record ever appears (no archive configured): the rest comes from the pod's log,
    # masked whole, from where the live stream stopped (the held-back secret included).
    store = DirectoryStore(tmp_path)  # type: ignore[arg-type]
    source = Scripted(store, phases=[Phase.RUNNING], streams=[pieces(LOG[:20], 4)],
                      archive_after=-1)
    text, follower = follow(source)
    assert text == expected()
    assert follower.record is None
    assert source.slept.count(1.0) >= 5  # the record was awaited for `archive_wait` first


def test_the_archived_log_is_what_the_live_masking_gives() -> None:
    # The premise of the switch: chunked masking is a prefix of whole masking.
    store_text = io.BytesIO()
    masker = Masker([SECRET])
    stream = masker.stream()
    for piece in pieces(LOG, 13, 14, 15, 29):
        store_text.write(stream.feed(piece.decode(errors="ignore")).encode())
        assert expected().startswith(store_text.getvalue())
