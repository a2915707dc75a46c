"""A step's log as the pages show it: numbered lines of escaped HTML with their colours, the
failing line of a failed step marked, and what state the log is in.

Logs come from the read service (`ReadService.step_log`), masked there: the archive holds
only masked text and a live log is masked as it is read. A page keeps at most `max_bytes`
of a log's end (the raw download has the whole); the lines before are counted, so line
numbers stay those of the whole log.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass

from webhooks.web.ansi import Colours, plain

# A page shows a log's last 1 MiB at most; the raw download has all of it.
PAGE_BYTES = 1024 * 1024
# Lines shown of a failing step on the run page.
TAIL_LINES = 20
# Where the failing line is looked for, from the end of a failed step's log.
FAILING_WINDOW = 50
# Words a failing line usually has; none within the window: the last line that is not blank.
_FAILING = re.compile(
    r"error|fail|fatal|exception|traceback|panic|assert|denied|not found|exit (code|status)",
    re.IGNORECASE)

# `data-log-state` values (the contract in `webhooks.web`).
LIVE, ARCHIVED, LOST, EXPIRED = "live", "archived", "lost", "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    number: int  # 1-based, in the whole log
    html: str  # escaped, with colour spans
    failing: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LogText:
    text: str  # the kept end of the log (whole lines, unless the log was cut mid-line)
    skipped_lines: int  # lines before `text` that the page leaves out
    offset: int  # bytes of the masked log read (where a live tail goes on)
    complete_offset: int  # bytes up to the end of the last whole line


def read_text(chunks: Iterable[bytes], *, max_bytes: int = PAGE_BYTES) -> LogText:
    """The log's last `max_bytes` (at a line start) and how many lines came before."""
    kept = bytearray()
    skipped = 0
    total = 0
    for chunk in chunks:
        total += len(chunk)
        kept += chunk
        if len(kept) > 2 * max_bytes:
            cut = kept.find(b"\n", len(kept) - max_bytes)
            if cut >= 0:
                skipped += kept.count(b"\n", 0, cut + 1)
                del kept[:cut + 1]
    if len(kept) > max_bytes:
        cut = kept.find(b"\n", len(kept) - max_bytes)
        if cut >= 0:
            skipped += kept.count(b"\n", 0, cut + 1)
            del kept[:cut + 1]
    last_newline = kept.rfind(b"\n")
    complete = total - (len(kept) - last_newline - 1) if last_newline >= 0 else total - len(kept)
    text = codecs.decode(bytes(kept), "utf-8", errors="replace")
    return LogText(text=text, skipped_lines=skipped, offset=total, complete_offset=complete)


def split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it starts no new one
    return lines


def failing_index(lines: list[str]) -> int | None:
    """Which of a failed step's lines most likely says why (see `_FAILING`)."""
    start = max(0, len(lines) - FAILING_WINDOW)
    last_written = None
    for index in range(len(lines) - 1, start - 1, -1):
        shown = plain(lines[index]).strip()
        if shown and _FAILING.search(shown):
            return index
        if shown and last_written is None:
            last_written = index
    if last_written is not None:
        return last_written
    return next((index for index in range(start - 1, -1, -1) if plain(lines[index]).strip()),
                None)


def render_lines(text: str, *, first_number: int = 1, failed: bool = False,
                 last: int | None = None) -> list[Line]:
    """Numbered HTML lines; `failed`: the failing line (`failing_index`) is marked; `last`:
    only the last so many (the ones before are read for their colours only)."""
    lines = split_lines(text)
    failing = failing_index(lines) if failed else None
    colours = Colours()
    first = 0 if last is None else max(0, len(lines) - last)
    for line in lines[:first]:
        colours.advance(line)
    return [Line(number=first_number + index, html=colours.line(lines[index]),
                 failing=index == failing) for index in range(first, len(lines))]


def log_state(*, lost: str | None, archived_size: int | None, running: bool,
              empty: bool) -> str:
    """What the page says about a log: kept in the archive (`archived_size`: the bytes its
    record says the step printed; None: no record), lost (the record says why), read live
    from its pod, or expired: neither in the archive nor in the cluster any more (the
    archive's retention removed it, or the pod went before it was archived)."""
    if lost:
        return LOST
    if archived_size is not None:
        return EXPIRED if empty and archived_size > 0 else ARCHIVED
    if running:
        return LIVE
    return EXPIRED if empty else LIVE
