"""A step's log into the archive (masked, cut at a limit, gzipped, streamed) and back out.

Archiving reads the log as it comes (from `pods/log`, or a local step's output), so memory
stays flat whatever the log's size: text is decoded, masked and compressed chunk by chunk
into a spooled temporary file, which the store then reads. The record is written after the
log, so a record always describes a log that is there (or says why it is not: `lost`).
"""

from __future__ import annotations

import codecs
import datetime
import gzip
import json
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any, BinaryIO

from ci.archive.layout import StepKey, parse_log_name, run_prefix
from ci.archive.store import LogStore
from ci.defaults import DEFAULT_MAX_LOG_BYTES
from ci.masking import Masker

# Spooled in memory up to this, then on disk: flat memory for any log size.
SPOOL_BYTES = 8 * 1024 * 1024
READ_CHUNK = 64 * 1024
RECORD_VERSION = 1


def cut_marker(limit: int) -> str:
    return f"\n[ferry: the log was cut here, at {limit} bytes; the whole size is in its record]\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepDetails:
    """What is known about a step besides its log."""

    job: str = ""  # the `.ci.yaml` job (a matrix variant's job names the variant's task)
    variant: str = ""  # the matrix values, e.g. "python=3.12", or ""
    exit_code: int | None = None
    started_at: str | None = None  # RFC 3339, UTC
    finished_at: str | None = None
    forge_repository: str = ""  # "owner/name" as the forge spells it
    sha: str = ""  # the commit the run built
    pod: str = ""  # the pod the log was read from (a retried job's attempt has its own)
    reason: str = ""  # how the step ended when not by itself: Skipped, TimeoutExceeded, ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    key: StepKey
    details: StepDetails
    size: int  # bytes the step printed
    stored: int  # bytes of (masked) text kept
    truncated: bool
    lost: str | None  # why there is no log (the pod was gone, ...); None: the log is kept
    archived_at: str

    def to_json(self) -> bytes:
        body: dict[str, Any] = {
            "version": RECORD_VERSION,
            "key": asdict(self.key),
            "details": asdict(self.details),
            "size": self.size,
            "stored": self.stored,
            "truncated": self.truncated,
            "lost": self.lost,
            "archivedAt": self.archived_at,
        }
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StepRecord:
        """Tolerant: fields a newer Ferry added to the details are ignored, fields an older
        one lacked take their defaults."""
        body = json.loads(data)
        known = {item.name for item in fields(StepDetails)}
        return cls(
            key=StepKey(**body["key"]),
            details=StepDetails(**{name: value for name, value in body["details"].items()
                                   if name in known}),
            size=int(body["size"]),
            stored=int(body["stored"]),
            truncated=bool(body["truncated"]),
            lost=body["lost"],
            archived_at=str(body["archivedAt"]),
        )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_step(
    store: LogStore,
    *,
    key: StepKey,
    chunks: Iterable[bytes],
    masker: Masker,
    details: StepDetails,
    max_bytes: int = DEFAULT_MAX_LOG_BYTES,
) -> StepRecord:
    """Mask, cut and store the log that `chunks` yield, then its record."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    stream = masker.stream()
    size = stored = 0
    truncated = False
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0) as compressed:

            def keep(text: str) -> None:
                nonlocal stored, truncated
                if truncated or not text:
                    return
                data = text.encode()
                room = max_bytes - stored
                if len(data) > room:
                    # Cut on a character boundary: the kept part stays valid UTF-8.
                    data = data[:room].decode(errors="ignore").encode()
                    truncated = True
                compressed.write(data)
                stored += len(data)
                if truncated:
                    compressed.write(cut_marker(max_bytes).encode())

            for chunk in chunks:
                size += len(chunk)
                keep(stream.feed(decoder.decode(chunk)))
            keep(stream.feed(decoder.decode(b"", final=True)) + stream.finish())
        spool.seek(0)
        store.put(key.log_name, spool)  # type: ignore[arg-type]  # a spool is a binary file
    record = StepRecord(key=key, details=details, size=size, stored=stored, truncated=truncated,
                        lost=None, archived_at=_now())
    _put_record(store, record)
    return record


def record_lost(store: LogStore, *, key: StepKey, details: StepDetails, reason: str
                ) -> StepRecord:
    """Say, in the archive, that a step's log could not be read and why: never silently."""
    record = StepRecord(key=key, details=details, size=0, stored=0, truncated=False,
                        lost=reason, archived_at=_now())
    _put_record(store, record)
    return record


def _put_record(store: LogStore, record: StepRecord) -> None:
    with tempfile.TemporaryFile() as file:
        file.write(record.to_json())
        file.seek(0)
        store.put(record.key.record_name, file)


def read_record(store: LogStore, key: StepKey) -> StepRecord | None:
    stream = store.open(key.record_name)
    if stream is None:
        return None
    with stream:
        return StepRecord.from_json(stream.read())


def read_log(store: LogStore, key: StepKey, *, offset: int = 0) -> Iterator[bytes] | None:
    """The archived (masked) log from byte `offset` on, decompressed as it is read; None if
    there is no log (see the record for why)."""
    stream = store.open(key.log_name)
    if stream is None:
        return None
    return _decompressed(stream, offset)


def _decompressed(stream: BinaryIO, offset: int) -> Iterator[bytes]:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    skip = offset
    with stream:
        while True:
            raw = stream.read(READ_CHUNK)
            if not raw:
                break
            data = decompressor.decompress(raw)
            if skip:
                dropped = min(skip, len(data))
                data, skip = data[dropped:], skip - dropped
            if data:
                yield data
        tail = decompressor.flush()
        if tail[skip:]:
            yield tail[skip:]


def read_tail(store: LogStore, key: StepKey, *, lines: int, max_bytes: int) -> str | None:
    """The archived log's last `lines` lines, at most `max_bytes` of them (a check-run tail
    when the pod is gone); None if there is no log. Reads the whole log, keeps only a window.
    """
    chunks = read_log(store, key)
    if chunks is None:
        return None
    window = b""
    for chunk in chunks:
        window = (window + chunk)[-max_bytes:]
    text = window.decode(errors="replace")
    kept = text.splitlines()[-lines:] if lines > 0 else []
    return "\n".join(kept)


def run_records(store: LogStore, *, namespace: str, repository: str, run: str
                ) -> list[StepRecord]:
    """Every step record of a run, in job then step order of their names."""
    records: list[StepRecord] = []
    for stored in store.list(run_prefix(namespace, repository, run)):
        if not stored.name.endswith(".json"):
            continue
        key = parse_log_name(stored.name[: -len(".json")] + ".log.gz")
        if key is None:
            continue
        record = read_record(store, key)
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda record: (record.key.job, record.details.started_at or "",
                                               record.key.step))
