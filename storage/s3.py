"""S3 (MinIO in production, any S3) through the ``minio`` client.

The client is synchronous: each call runs in a worker thread.  Files over
``MULTIPART_THRESHOLD`` go up in 8 MiB parts.  Write-once objects get an object-lock
retention when the bucket has object lock, and are never overwritten either way.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.error import S3Error
from minio.retention import Retention
from urllib3.exceptions import HTTPError

from storage.base import (
    CHUNK,
    ByteRange,
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    StorageError,
    StoreUnavailable,
)
from storage.keys import check_key
from storage.location import Location

MULTIPART_THRESHOLD = 8 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
MISSING_CODES = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}


class S3Store:
    name = "s3"

    def __init__(
        self,
        location: Location,
        *,
        lock_mode: str = "governance",
        retention_days: int = 0,
        timeout: float = 30.0,
    ) -> None:
        self.bucket = location.bucket
        self.lock_mode = GOVERNANCE if lock_mode == "governance" else COMPLIANCE
        self.retention_days = retention_days
        self.object_lock = False
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            retries=urllib3.Retry(total=0),  # the upload outbox retries, with back-off
            maxsize=16,
        )
        self.client = Minio(
            location.endpoint,
            access_key=location.access_key,
            secret_key=location.secret_key,
            secure=location.secure,
            region=location.region,
            http_client=http,
        )

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except S3Error as exc:
            if exc.code in MISSING_CODES:
                raise ObjectMissing(str(args[1]) if len(args) > 1 else exc.code) from None
            raise StorageError(f"S3 {exc.code}: {exc.message}") from exc
        except (HTTPError, OSError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def ensure_ready(self) -> None:
        if not await self._call(self.client.bucket_exists, self.bucket):
            await self._call(self.client.make_bucket, self.bucket, None, self.retention_days > 0)
        if self.retention_days > 0:
            # no default retention on the bucket: only write-once kinds are locked, each
            # right after its upload (a default would lock evidence drafts too)
            try:
                await self._call(self.client.get_object_lock_config, self.bucket)
                self.object_lock = True
            except StorageError:
                self.object_lock = False  # an existing bucket made without object lock

    def _locks(self, write_once: bool) -> bool:
        return write_once and self.object_lock and self.retention_days > 0

    async def _lock(self, key: str) -> None:
        """Put a retention on ``key`` unless it has one (PutObjectRetention sends Content-MD5)."""
        try:
            current = await asyncio.to_thread(self.client.get_object_retention, self.bucket, key)
        except Exception:  # no retention yet: servers answer this in different ways
            current = None
        if current is not None and current.mode:
            return
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=self.retention_days)
        await self._call(
            self.client.set_object_retention, self.bucket, key, Retention(self.lock_mode, until)
        )

    async def _refuse_overwrite(self, key: str, write_once: bool) -> None:
        if not write_once:
            return
        try:
            await self.stat(key)
        except ObjectMissing:
            return
        if self._locks(write_once):
            await self._lock(key)  # an earlier upload may have stopped before locking
        raise ObjectExists(key)

    async def put_file(
        self, key: str, path: Path, *, content_type: str, write_once: bool
    ) -> ObjectInfo:
        check_key(key)
        await self._refuse_overwrite(key, write_once)
        await self._call(
            self.client.fput_object,
            self.bucket,
            key,
            str(path),
            content_type=content_type,
            part_size=PART_SIZE,
            num_parallel_uploads=1,
        )
        if self._locks(write_once):
            await self._lock(key)
        return await self.stat(key)

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str, write_once: bool
    ) -> ObjectInfo:
        check_key(key)
        await self._refuse_overwrite(key, write_once)
        await self._call(
            self.client.put_object,
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            part_size=PART_SIZE,
        )
        if self._locks(write_once):
            await self._lock(key)
        return await self.stat(key)

    async def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        found = await self._call(self.client.stat_object, self.bucket, key)
        return ObjectInfo(
            key,
            int(found.size or 0),
            found.content_type or "application/octet-stream",
            found.last_modified,
        )

    async def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        offset, length = (byte_range.start, byte_range.length) if byte_range else (0, 0)
        response = await self._call(self.client.get_object, self.bucket, key, offset, length)
        try:
            while True:
                chunk = await asyncio.to_thread(response.read, CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def delete(self, key: str) -> None:
        check_key(key)
        await self.stat(key)
        await self._call(self.client.remove_object, self.bucket, key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        found = await self._call(
            lambda: list(
                self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            )
        )
        for item in found:
            yield ObjectInfo(item.object_name, int(item.size or 0), "", item.last_modified)

    async def presigned_url(self, key: str, seconds: int) -> str | None:
        check_key(key)
        url: str = await self._call(
            self.client.presigned_get_object, self.bucket, key, timedelta(seconds=seconds)
        )
        return url
