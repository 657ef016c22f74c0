"""The embedded default: objects as files under one folder, written atomically."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from storage.base import CHUNK, ByteRange, ObjectExists, ObjectInfo, ObjectMissing, StorageError
from storage.keys import check_key

TYPE_SUFFIX = ".content-type"
TEMP_PREFIX = ".tmp-"


class LocalStore:
    """Keys map to paths below ``root``; no path component may be a symlink."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def ensure_ready(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        path = self.root.joinpath(*key.split("/"))
        # refuse a symlink anywhere between the root and the object
        current = self.root
        for part in key.split("/"):
            current = current / part
            if current.is_symlink():
                raise StorageError(f"refusing to follow a symlink at {part!r}")
        return path

    def _write(
        self, key: str, source: Path | bytes, content_type: str, write_once: bool
    ) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    with source.open("rb") as handle:
                        shutil.copyfileobj(handle, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            if write_once:
                try:
                    os.link(tmp, path)  # fails if the key exists: never replaces
                except FileExistsError:
                    raise ObjectExists(key) from None
                tmp.unlink()
            else:
                os.replace(tmp, path)
            (path.parent / (path.name + TYPE_SUFFIX)).write_text(content_type, encoding="utf-8")
        finally:
            tmp.unlink(missing_ok=True)
        return self._stat(key)

    async def put_file(
        self, key: str, path: Path, *, content_type: str, write_once: bool
    ) -> ObjectInfo:
        return await asyncio.to_thread(self._write, key, path, content_type, write_once)

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str, write_once: bool
    ) -> ObjectInfo:
        return await asyncio.to_thread(self._write, key, data, content_type, write_once)

    def _stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        type_file = path.parent / (path.name + TYPE_SUFFIX)
        content_type = (
            type_file.read_text(encoding="utf-8")
            if type_file.exists()
            else "application/octet-stream"
        )
        return ObjectInfo(
            key, info.st_size, content_type, datetime.fromtimestamp(info.st_mtime, UTC)
        )

    async def stat(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._stat, key)

    def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        return self.read_file(self._path(key), byte_range, key)

    async def read_file(
        self, path: Path, byte_range: ByteRange | None = None, key: str = ""
    ) -> AsyncIterator[bytes]:
        """Stream ``path`` (never through a symlink), or one byte range of it."""
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise ObjectMissing(key or path.name) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StorageError("refusing to follow a symlink") from None
            raise
        with os.fdopen(fd, "rb") as handle:
            remaining = None
            if byte_range is not None:
                await asyncio.to_thread(handle.seek, byte_range.start)
                remaining = byte_range.length
            while remaining is None or remaining > 0:
                size = CHUNK if remaining is None else min(CHUNK, remaining)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def remove() -> None:
            try:
                path.unlink()
            except FileNotFoundError:
                raise ObjectMissing(key) from None
            (path.parent / (path.name + TYPE_SUFFIX)).unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        def walk() -> list[str]:
            keys = []
            for folder, dirs, files in os.walk(self.root, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith(TYPE_SUFFIX) or name.startswith(TEMP_PREFIX):
                        continue
                    key = (Path(folder) / name).relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        keys.append(key)
            return keys

        for key in await asyncio.to_thread(walk):
            yield await self.stat(key)

    async def presigned_url(self, key: str, seconds: int) -> str | None:
        return None  # the app proxies local downloads through its authorised route
