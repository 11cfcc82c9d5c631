"""Reading a request body with a size limit enforced while reading, not after.

A declared Content-Length over the limit is refused before one byte is read; a chunked or
lying body is cut off as soon as it passes the limit. Nothing is parsed before this.
"""

from __future__ import annotations

from fastapi import Request


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"body is larger than {limit} bytes")


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
