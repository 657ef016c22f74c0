"""Receiving one file from a multipart form (``file``, optional ``title``): the size is
checked against ``Content-Length`` before a byte is read, the file streams into the
spool with its SHA-256, and whatever was not recorded is removed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from server.context import SPOOL
from server.domain.errors import N_, Invalid
from storage.spool import Spooled, TooLarge

MULTIPART_OVERHEAD = 64 * 1024
NOT_MULTIPART = N_("The upload is not a valid multipart form.")
CHUNK = 256 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def streams_body(handler: Handler) -> Handler:
    """Mark a handler that reads a long body: its request transaction only reads."""
    handler.streams_body = True  # type: ignore[attr-defined]
    return handler


@dataclass(frozen=True)
class Received:
    spooled: Spooled
    filename: str
    title: str


async def _file_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


@asynccontextmanager
async def received_file(request: web.Request, limit: int) -> AsyncIterator[Received]:
    """The form's file in the spool, for the block to record (413 past ``limit`` bytes)."""
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError):
        raise Invalid(NOT_MULTIPART, field="file") from None
    spool = request.app[SPOOL]
    title, filename = "", ""
    spooled: Spooled | None = None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Invalid(NOT_MULTIPART, field="file")
            if part.name == "title" and part.filename is None:
                title = (await part.read_chunk(1024)).decode("utf-8", "replace")
            elif part.name == "file" and part.filename is not None and spooled is None:
                filename = part.filename
                spooled = await spool.receive(_file_chunks(part), limit=limit)
        if spooled is None:
            raise Invalid(N_("Choose a file to upload."), field="file")
        yield Received(spooled, filename, title)
    except TooLarge:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=limit + 1) from None
    except ValueError:  # aiohttp's word for a malformed multipart body
        raise Invalid(NOT_MULTIPART, field="file") from None
    finally:
        if spooled is not None:
            await spool.discard(spooled.path)  # gone already if the document was recorded
