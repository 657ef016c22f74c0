"""The audit log is a hash chain: tampering is found and named, concurrent appends stay linked."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select, text

from server import audit
from server.audit import Actor, AuditEntry
from server.db.engine import Database
from server.db.models import AuditEvent
from tests.support import TEST_SECRET


async def _verify(url: str) -> audit.ChainReport:
    db = Database(url)
    try:
        async with db.transaction(write=False) as session:
            return await audit.verify(session)
    finally:
        await db.dispose()


async def _sql(url: str, statement: str) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(text(statement))
    finally:
        await db.dispose()


def _cli(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "YIZHAN_DATABASE_URL": url,
        "YIZHAN_DATA_DIR": str(data_dir),
        "YIZHAN_SECRET_KEY": TEST_SECRET,
    }
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_seeded_chain_verifies(database_url: str) -> None:
    report = await _verify(database_url)
    assert report.ok and report.rows > 10


async def test_a_row_edited_in_the_database_is_found_and_named(
    database_url: str, tmp_path: Path
) -> None:
    await _sql(database_url, "UPDATE audit_events SET actor_name = 'someone else' WHERE seq = 5")
    report = await _verify(database_url)
    assert not report.ok
    assert report.first_broken_seq == 5
    assert "content changed" in report.problem
    result = await asyncio.to_thread(_cli, database_url, tmp_path, "audit", "verify")
    assert result.returncode == 1
    assert "BROKEN at row seq=5" in result.stdout


async def test_a_forged_row_with_a_recomputed_hash_breaks_the_next_link(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            row = await session.scalar(select(AuditEvent).where(AuditEvent.seq == 3))
            assert row is not None
            row.actor_name = "forger"
            row.row_hash = audit.row_hash(row.prev_hash, row)
    finally:
        await db.dispose()
    report = await _verify(database_url)
    assert report.first_broken_seq == 4
    assert "link broken" in report.problem


async def test_a_deleted_row_is_found(database_url: str) -> None:
    await _sql(database_url, "DELETE FROM audit_events WHERE seq = 7")
    report = await _verify(database_url)
    assert report.first_broken_seq == 8
    assert "sequence gap" in report.problem


async def test_an_intact_chain_passes_the_command(database_url: str, tmp_path: Path) -> None:
    result = await asyncio.to_thread(_cli, database_url, tmp_path, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "audit chain intact" in result.stdout


async def test_concurrent_appends_stay_in_one_chain(database_url: str) -> None:
    db = Database(database_url)
    before = (await _verify(database_url)).rows

    async def one(i: int) -> None:
        async with db.transaction() as session:
            await audit.append(session, AuditEntry("test.concurrent", Actor(role="system"), "n", i))

    try:
        await asyncio.gather(*(one(i) for i in range(20)))
    finally:
        await db.dispose()
    report = await _verify(database_url)
    assert report.ok, report.problem
    assert report.rows == before + 20


async def test_secrets_never_reach_the_audit_rows(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            event = await audit.append(
                session,
                AuditEntry("test.secret", details={"password": "hunter2", "code": "123456"}),
            )
            stored = event.details
    finally:
        await db.dispose()
    assert "hunter2" not in str(stored) and "123456" not in str(stored)
