"""No loss when the store is down: the S3 server stops half-way through 50 uploads and
the app restarts; every upload completes once, with its hash."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select

from server.db.engine import Database
from server.db.models import StoredObject
from server.uploads import RetryPolicy, UploadOutbox
from storage.base import ObjectStore
from storage.factory import open_store
from storage.keys import new_key
from storage.location import parse
from storage.s3 import S3Store
from storage.spool import Spool
from tests.s3_server import S3Server

UPLOADS = 50


@pytest.fixture
def own_s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def count(database: Database, status: str | None = None) -> int:
    async with database.transaction(write=False) as session:
        query = select(func.count()).select_from(StoredObject)
        if status:
            query = query.where(StoredObject.status == status)
        return int(await session.scalar(query) or 0)


async def wait_until(check: object, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def enqueue(database: Database, spool: Spool) -> dict[str, str]:
    rng = random.Random(7)
    expected: dict[str, str] = {}
    async with database.transaction() as session:
        for _ in range(UPLOADS):
            data = os.urandom(rng.randint(10_000, 400_000))
            key = new_key("evidence", None, "bin")
            await spool.put_bytes(key, data)
            digest = hashlib.sha256(data).hexdigest()
            expected[key] = digest
            session.add(
                StoredObject(
                    key=key,
                    kind="evidence",
                    size=len(data),
                    sha256=digest,
                    content_type="application/octet-stream",
                    status="pending",
                )
            )
    return expected


async def hashes_in(store: ObjectStore) -> dict[str, str]:
    found: dict[str, str] = {}
    async for info in store.list("evidence/"):
        digest = hashlib.sha256()
        async for chunk in store.open(info.key):
            digest.update(chunk)
        found[info.key] = digest.hexdigest()
    return found


async def test_uploads_survive_a_store_outage_and_a_restart(
    empty_database_url: str, own_s3_server: S3Server, tmp_path: Path
) -> None:
    database = Database(empty_database_url)
    # a short timeout: a stopped server may leave connections that never answer
    store = S3Store(parse(own_s3_server.url()), timeout=2.0)
    await store.ensure_ready()
    spool = Spool(tmp_path / "spool")
    policy = RetryPolicy(first_delay=0.05, max_delay=0.4)
    expected = await enqueue(database, spool)

    outbox = UploadOutbox(database, store, spool, policy, batch=5)
    outbox.start()
    try:
        await wait_until(lambda: _at_least(database, 10), 60)
        own_s3_server.stop()  # the store goes away mid-batch
        await wait_until(lambda: _retried(database), 60)
        assert await count(database, "pending") > 0
    finally:
        await outbox.stop()  # ...and the app stops too
    stalled = await count(database, "stored")
    assert 10 <= stalled < UPLOADS

    # the store comes back on the same address; a new app process resumes
    own_s3_server.server = ThreadedMotoServer(
        ip_address="127.0.0.1", port=own_s3_server.port, verbose=False
    )
    own_s3_server.start()
    resumed = UploadOutbox(database, store, spool, policy, batch=5)
    resumed.start()
    try:
        await wait_until(lambda: _all_stored(database), 90)
    finally:
        await resumed.stop()

    assert await hashes_in(store) == expected  # nothing lost, nothing extra, every hash right
    assert list((tmp_path / "spool").iterdir()) == []
    await database.dispose()


async def _at_least(database: Database, n: int) -> bool:
    return await count(database, "stored") >= n


async def _all_stored(database: Database) -> bool:
    return await count(database, "stored") == UPLOADS


async def _retried(database: Database) -> bool:
    async with database.transaction(write=False) as session:
        failed = await session.scalar(
            select(func.count()).select_from(StoredObject).where(StoredObject.attempts > 0)
        )
    return bool(failed)


async def test_the_sweep_keeps_pending_files_and_removes_stale_orphans(
    empty_database_url: str, tmp_path: Path
) -> None:
    database = Database(empty_database_url)
    spool = Spool(tmp_path / "spool")
    store = open_store((tmp_path / "objects").as_uri())
    pending_key = new_key("evidence", None, "txt")
    await spool.put_bytes(pending_key, b"waiting for the store")
    async with database.transaction() as session:
        session.add(
            StoredObject(
                key=pending_key, kind="evidence", size=21, sha256="0" * 64,
                content_type="text/plain", status="pending",
            )
        )  # fmt: skip
    orphan = await spool.put_bytes(new_key("evidence", None, "txt"), b"its request failed")
    fresh_orphan = await spool.put_bytes(new_key("evidence", None, "txt"), b"just arrived")
    cut_off = spool.folder / ".incoming-abc"
    cut_off.write_bytes(b"half a body")
    old = time.time() - 7200
    for path in (orphan, cut_off, spool.path_for(pending_key)):
        os.utime(path, (old, old))
    outbox = UploadOutbox(database, store, spool)
    assert await outbox.sweep() == 2
    assert spool.path_for(pending_key).exists() and fresh_orphan.exists()
    assert not orphan.exists() and not cut_off.exists()
    await database.dispose()
