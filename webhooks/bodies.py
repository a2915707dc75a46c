"""Reading a delivery's body with a size limit enforced while reading, not after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping


class BodyTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes")
        self.limit = limit


async def read_limited(
    headers: Mapping[str, str], chunks: AsyncIterator[bytes], *, limit: int
) -> bytes:
    """The whole body; `BodyTooLargeError` as soon as it (or its announced length) exceeds
    `limit`, so a huge upload is refused without being held in memory."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(limit)
    return bytes(body)
