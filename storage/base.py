"""The ``ObjectStore`` protocol every backend implements, and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

CHUNK = 1024 * 1024


class StorageError(Exception):
    """A store operation failed."""


class ObjectMissing(StorageError):
    """No object under this key."""


class ObjectExists(StorageError):
    """A write-once object is already there; it is never overwritten."""


class StoreUnavailable(StorageError):
    """The store could not be reached; the operation may succeed later."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    modified: datetime | None = None


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range, as in HTTP ``Range: bytes=start-end``."""

    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class ObjectStore(Protocol):
    """Where objects live.  Keys are checked by ``storage.keys.check_key`` first."""

    name: str

    async def ensure_ready(self) -> None:
        """Create the bucket or folder if it is missing (idempotent)."""

    async def put_file(
        self, key: str, path: Path, *, content_type: str, write_once: bool
    ) -> ObjectInfo:
        """Store the file at ``path`` under ``key``; a write-once key is never replaced."""

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str, write_once: bool
    ) -> ObjectInfo:
        """Store ``data`` under ``key``."""

    def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        """Stream the object (or one byte range of it) in chunks."""

    async def stat(self, key: str) -> ObjectInfo:
        """Size and type of the object; ``ObjectMissing`` when absent."""

    async def delete(self, key: str) -> None:
        """Remove the object (callers refuse this for write-once kinds)."""

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``."""

    async def presigned_url(self, key: str, seconds: int) -> str | None:
        """A direct, short-lived download URL, or None where downloads are proxied."""
