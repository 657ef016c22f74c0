"""Build the store ``YIZHAN_STORAGE_URL`` names."""

from __future__ import annotations

from storage.base import ObjectStore
from storage.local import LocalStore
from storage.location import parse
from storage.s3 import S3Store


def open_store(url: str, *, lock_mode: str = "governance", retention_days: int = 0) -> ObjectStore:
    location = parse(url)
    if location.kind == "file":
        assert location.path is not None
        return LocalStore(location.path)
    return S3Store(location, lock_mode=lock_mode, retention_days=retention_days)
