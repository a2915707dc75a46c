"""What the archive needs of a storage: named objects, written whole from a stream.

Names are `/`-separated paths of safe segments (see `ci.archive.layout`): no leading `/`, no
`//`, no `.` or `..`, and never both `a` and `a/b`, so that a directory of files and any
S3-compatible server (some of which keep objects as files) hold them alike. Metadata lives in
objects of its own, never in a storage's per-object metadata, which some servers keep only in
memory.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredObject:
    name: str
    size: int  # bytes as stored
    modified: datetime.datetime  # UTC


class LogStore(Protocol):
    """Call order: any; every method is safe to call from several threads at once."""

    def put(self, name: str, data: BinaryIO) -> None:
        """Store `data` (read to its end) as `name`, replacing any object of that name.
        A reader sees the old object or the new one whole, never a part."""

    def open(self, name: str) -> BinaryIO | None:
        """The object's bytes as a stream (the caller closes it); None if there is none."""

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose name starts with `prefix` (a whole segment path ending in `/`,
        or ""), in no particular order."""

    def delete(self, names: Iterable[str]) -> None:
        """Delete the objects; names that do not exist are not an error."""


class StoreError(Exception):
    """The storage failed (unreachable, refused, full); the message names the storage."""
