"""A step's log as Server-Sent Events, for the read API (`/api/v1/.../log/stream`) and the
web pages' live tail (`/ui/.../stream`) alike: `log` events (`{"text": ...}`, `id` the byte
offset reached, so `Last-Event-ID` resumes), then one `end` event with the outcome."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any

from ci.kube.pipeline_runs import ApiRefusedError, ApiUnavailableError
from webhooks.api.following import LogFollower
from webhooks.api.service import ApiError

# The failures a request is answered for (4xx, 502, 503), never a 500.
ANSWERED = (ApiError, ApiUnavailableError, ApiRefusedError)

MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def resumed_offset(offset: int, last_event_id: str | None) -> int:
    """Where a stream starts: a reconnecting EventSource resumes at its last event's id."""
    if last_event_id and last_event_id.isdigit():
        return int(last_event_id)
    return offset


def event(kind: str, data: dict[str, Any], *, offset: int | None = None) -> bytes:
    head = f"id: {offset}\n" if offset is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def log_events(follower: LogFollower) -> Iterator[bytes]:
    """JSON in each event's data: a log's carriage returns would otherwise end SSE lines."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    yield b": ferry step log\n\n"  # the client sees the stream open at once
    try:
        for chunk in follower:
            if not chunk:
                yield b": waiting\n\n"  # a comment: keeps proxies from closing an idle stream
                continue
            text = decoder.decode(chunk)
            if text:
                held = len(decoder.getstate()[0])
                yield event("log", {"text": text}, offset=follower.offset - held)
    except ANSWERED as error:
        yield event("error", {"error": str(error)})
        return
    text = decoder.decode(b"", final=True)
    if text:
        yield event("log", {"text": text}, offset=follower.offset)
    record = follower.record
    yield event("end", {
        "offset": follower.offset,
        "archived": record is not None and record.lost is None,
        "exitCode": record.details.exit_code if record is not None else None,
        "lost": record.lost if record is not None else None,
    })
