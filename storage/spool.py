"""The local spool: where a file waits, on disk, until the store has it.

A received upload is written here while its SHA-256 and size are computed; the
upload outbox later sends it to the store and removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from storage.base import ByteRange
from storage.keys import check_key
from storage.local import LocalStore


class TooLarge(ValueError):
    """More bytes arrived than the limit allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Spooled:
    path: Path
    size: int
    sha256: str
    head: bytes


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, key: str) -> Path:
        return self.folder / check_key(key).replace("/", "__")

    async def receive(
        self, chunks: AsyncIterator[bytes], *, limit: int, head_bytes: int = 4096
    ) -> Spooled:
        """Write ``chunks`` to a temporary spool file, refusing more than ``limit`` bytes."""
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".incoming-", dir=self.folder)
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(limit)
                    if len(head) < head_bytes:
                        head += chunk[: head_bytes - len(head)]
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(out.flush)
                await asyncio.to_thread(os.fsync, out.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        return Spooled(Path(name), size, digest.hexdigest(), head)

    async def keep(self, spooled: Spooled, key: str) -> Path:
        """Give a received file its key's name; it stays until the store has it."""
        target = self.path_for(key)
        await asyncio.to_thread(os.replace, spooled.path, target)
        return target

    async def put_bytes(self, key: str, data: bytes) -> Path:
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        target = self.path_for(key)

        def write() -> None:
            fd, name = tempfile.mkstemp(prefix=".incoming-", dir=self.folder)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(name, target)

        await asyncio.to_thread(write)
        return target

    async def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        """Read a spooled file, as the store would once it has it."""
        async for chunk in LocalStore(self.folder).read_file(self.path_for(key), byte_range):
            yield chunk

    @staticmethod
    async def discard(path: Path) -> None:
        await asyncio.to_thread(path.unlink, True)
