"""Where objects are kept: ``YIZHAN_STORAGE_URL`` parsed, shown and probed.

``file:///var/lib/yizhan/objects`` keeps them in a local folder (the embedded
default); ``s3://key:secret@host:port/bucket?secure=false&region=us-east-1``
keeps them in MinIO or any S3.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

PROBE_TIMEOUT_SECONDS = 5.0


class StorageConfigError(ValueError):
    """The storage URL cannot be understood."""


class StorageUnavailable(Exception):
    """The object store cannot be reached or written."""


@dataclass(frozen=True)
class Location:
    kind: str  # file, s3
    path: Path | None = None
    endpoint: str = ""
    bucket: str = ""
    access_key: str = ""
    secret_key: str = ""
    secure: bool = True
    region: str = "us-east-1"

    def display(self) -> str:
        if self.kind == "file":
            return f"file://{self.path}"
        scheme = "https" if self.secure else "http"
        return f"s3 {scheme}://{self.endpoint}/{self.bucket} (key {self.access_key or '-'})"


def parse(url: str) -> Location:
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        if not path.is_absolute():
            raise StorageConfigError("YIZHAN_STORAGE_URL: a file:// URL needs an absolute path")
        return Location("file", path=path)
    if parts.scheme == "s3":
        bucket = parts.path.strip("/")
        if not parts.hostname or not bucket or "/" in bucket:
            raise StorageConfigError("YIZHAN_STORAGE_URL: use s3://key:secret@host:port/bucket")
        query = parse_qs(parts.query)
        secure = query.get("secure", ["true"])[0].lower() not in ("false", "0", "no")
        endpoint = parts.hostname + (f":{parts.port}" if parts.port else "")
        return Location(
            "s3",
            endpoint=endpoint,
            bucket=bucket,
            access_key=unquote(parts.username or ""),
            secret_key=unquote(parts.password or ""),
            secure=secure,
            region=query.get("region", ["us-east-1"])[0],
        )
    raise StorageConfigError("YIZHAN_STORAGE_URL: must start with file:// or s3://")


def _probe_file(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-") as handle:
        handle.write(b"ok")
    usage = os.statvfs(path)
    free_gib = usage.f_bavail * usage.f_frsize / 2**30
    return f"writable, {free_gib:.1f} GiB free"


def _probe_s3(location: Location) -> str:
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=PROBE_TIMEOUT_SECONDS, read=PROBE_TIMEOUT_SECONDS),
        retries=urllib3.Retry(total=0),
    )
    client = Minio(
        location.endpoint,
        access_key=location.access_key,
        secret_key=location.secret_key,
        secure=location.secure,
        region=location.region,
        http_client=http,
    )
    if not client.bucket_exists(location.bucket):
        return f"reachable; bucket {location.bucket!r} does not exist yet (created on first use)"
    return f"reachable; bucket {location.bucket!r} exists"


async def probe(location: Location) -> str:
    """Check that the store can be used; return a short description or raise."""
    try:
        if location.kind == "file":
            assert location.path is not None
            return await asyncio.to_thread(_probe_file, location.path)
        return await asyncio.wait_for(
            asyncio.to_thread(_probe_s3, location), timeout=PROBE_TIMEOUT_SECONDS * 3
        )
    except Exception as exc:  # each backend raises its own errors
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
