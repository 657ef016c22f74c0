"""One contract, two backends: the local folder and S3 (moto's server on loopback)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from storage.base import ByteRange, ObjectExists, ObjectMissing, ObjectStore, StorageError
from storage.factory import open_store
from storage.keys import UnsafeKey
from storage.local import LocalStore
from storage.s3 import S3Store
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server
) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        built = open_store((tmp_path / "objects").as_uri())
    else:
        built = open_store(s3_server.url())
    await built.ensure_ready()
    yield built


async def read_all(store: ObjectStore, key: str, byte_range: ByteRange | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.open(key, byte_range)])


async def test_put_bytes_then_stat_read_and_ranges(store: ObjectStore) -> None:
    data = bytes(range(256)) * 40
    info = await store.put_bytes(
        "evidence/a/b.bin", data, content_type="application/pdf", write_once=False
    )
    assert info.size == len(data)
    stat = await store.stat("evidence/a/b.bin")
    assert stat.size == len(data) and stat.content_type == "application/pdf"
    assert await read_all(store, "evidence/a/b.bin") == data
    assert await read_all(store, "evidence/a/b.bin", ByteRange(10, 19)) == data[10:20]
    assert (
        await read_all(store, "evidence/a/b.bin", ByteRange(len(data) - 5, len(data) - 1))
        == data[-5:]
    )


async def test_put_file_over_the_multipart_threshold(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(9 * 1024 * 1024 + 123)  # more than one 8 MiB part
    source.write_bytes(data)
    info = await store.put_file(
        "recording/big.webm", source, content_type="video/webm", write_once=False
    )
    assert info.size == len(data)
    digest = hashlib.sha256()
    async for chunk in store.open("recording/big.webm"):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_write_once_objects_are_never_replaced(store: ObjectStore) -> None:
    await store.put_bytes(
        "agreement/x.pdf", b"%PDF-1 first", content_type="application/pdf", write_once=True
    )
    with pytest.raises(ObjectExists):
        await store.put_bytes(
            "agreement/x.pdf", b"%PDF-1 second", content_type="application/pdf", write_once=True
        )
    assert await read_all(store, "agreement/x.pdf") == b"%PDF-1 first"
    # an ordinary object may be replaced
    await store.put_bytes("evidence/y.txt", b"one", content_type="text/plain", write_once=False)
    await store.put_bytes("evidence/y.txt", b"two", content_type="text/plain", write_once=False)
    assert await read_all(store, "evidence/y.txt") == b"two"


async def test_missing_objects_and_deletion(store: ObjectStore) -> None:
    with pytest.raises(ObjectMissing):
        await store.stat("evidence/none.pdf")
    with pytest.raises(ObjectMissing):
        await read_all(store, "evidence/none.pdf")
    await store.put_bytes("evidence/del.txt", b"bye", content_type="text/plain", write_once=False)
    await store.delete("evidence/del.txt")
    with pytest.raises(ObjectMissing):
        await store.stat("evidence/del.txt")
    with pytest.raises(ObjectMissing):
        await store.delete("evidence/del.txt")


async def test_listing_by_prefix(store: ObjectStore) -> None:
    for key in (
        "evidence/2026/d1/a.txt",
        "evidence/2026/d1/b.txt",
        "evidence/2026/d2/c.txt",
        "ruling/r.pdf",
    ):
        await store.put_bytes(key, key.encode(), content_type="text/plain", write_once=False)
    listed = sorted([info.key async for info in store.list("evidence/2026/d1/")])
    assert listed == ["evidence/2026/d1/a.txt", "evidence/2026/d1/b.txt"]
    everything = [info.key async for info in store.list()]
    assert len(everything) == 4


@pytest.mark.parametrize(
    "key",
    [
        "../escape.txt",
        "/etc/passwd",
        "evidence/../../x",
        "a\x00b",
        "a\\b",
        "",
        "evidence//x",
        "./x",
    ],
)
async def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(UnsafeKey):
        await store.put_bytes(key, b"x", content_type="text/plain", write_once=False)


async def test_download_urls(store: ObjectStore) -> None:
    await store.put_bytes(
        "evidence/u.txt", b"presigned", content_type="text/plain", write_once=False
    )
    url = await store.presigned_url("evidence/u.txt", 60)
    if isinstance(store, LocalStore):
        assert url is None  # local objects are served through the app's authorised route
        return
    assert url is not None and "X-Amz-Signature" in url

    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback server)
            return bytes(response.read())

    assert await asyncio.to_thread(fetch) == b"presigned"


async def test_local_store_refuses_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalStore(root)
    await store.ensure_ready()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not read")
    (root / "evidence").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError):
        await read_all(store, "evidence/secret.txt")
    with pytest.raises(StorageError):
        await store.put_bytes("evidence/new.txt", b"x", content_type="text/plain", write_once=False)
    assert not (outside / "new.txt").exists()
    (root / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(StorageError):
        await read_all(store, "link.txt")


async def test_s3_buckets_use_object_lock_for_write_once_kinds(s3_server: S3Server) -> None:
    store = open_store(s3_server.url(), lock_mode="governance", retention_days=1)
    assert isinstance(store, S3Store)
    await store.ensure_ready()
    assert store.object_lock
    await store.put_bytes(
        "ruling/locked.pdf", b"%PDF-1 ruling", content_type="application/pdf", write_once=True
    )
    # read the lock back with another S3 client (boto3, which moto depends on)
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{s3_server.port}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    head = s3.head_object(Bucket=store.bucket, Key="ruling/locked.pdf")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC)
    await store.put_bytes(
        "evidence/free.pdf", b"%PDF-1 e", content_type="application/pdf", write_once=False
    )
    assert "ObjectLockMode" not in s3.head_object(Bucket=store.bucket, Key="evidence/free.pdf")
