"""The `yizhan` command on both backends: migrate, refuse an un-migrated database,
create-user, demo, check."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from server.app import init_app
from server.auth.passwords import verify_password
from server.db import migrate
from server.db.engine import Database
from server.db.migrate import NotMigrated
from server.db.models import User
from tests.support import TEST_SECRET, make_settings


def run_cli(
    url: str, data_dir: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "YIZHAN_DATABASE_URL": url,
        "YIZHAN_DATA_DIR": str(data_dir),
        "YIZHAN_SECRET_KEY": TEST_SECRET,
        "YIZHAN_ASR_MODEL": "tiny.en",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def cli(url: str, data_dir: Path, *args: str, **kw: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, url, data_dir, *args, **kw)


async def test_the_app_refuses_an_unmigrated_database(
    blank_database_url: str, tmp_path: Path
) -> None:
    app = init_app(make_settings(tmp_path, blank_database_url))
    server = TestServer(app, host="127.0.0.1")
    with pytest.raises(NotMigrated, match="yizhan migrate"):
        await server.start_server()
    await server.close()
    result = await cli(blank_database_url, tmp_path, "serve", "--port", "1")
    assert result.returncode == 2
    assert "Run `yizhan migrate` first" in result.stderr


async def test_migrate_brings_a_blank_database_to_head_and_is_repeatable(
    blank_database_url: str, tmp_path: Path
) -> None:
    first = await cli(blank_database_url, tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    assert f"empty -> {migrate.head_revision()}" in first.stdout
    again = await cli(blank_database_url, tmp_path, "migrate")
    assert "up to date" in again.stdout
    db = Database(blank_database_url)
    try:
        await migrate.ensure_migrated(db)
    finally:
        await db.dispose()


def _downgrade(connection: object) -> None:
    from alembic import command

    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


async def test_migrations_go_down_and_up_again(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        async with db.write_engine.begin() as conn:
            await conn.run_sync(_downgrade)
        assert await migrate.current_revision(db) is None
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == migrate.head_revision()
    finally:
        await db.dispose()


async def test_create_user_hashes_the_password_read_from_stdin(
    database_url: str, tmp_path: Path
) -> None:
    result = await cli(
        database_url,
        tmp_path,
        "create-user",
        "--role",
        "judge",
        "--name",
        "新法官",
        "--username",
        "xinfaguan",
        "--court",
        "DEMO",
        stdin="Str0ng-passw0rd\n",
    )
    assert result.returncode == 0, result.stderr
    db = Database(database_url)
    try:
        async with db.transaction(write=False) as session:
            user = await session.scalar(select(User).where(User.username == "xinfaguan"))
    finally:
        await db.dispose()
    assert user is not None and user.court_id is not None
    assert user.password_hash and user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "Str0ng-passw0rd")
    clash = await cli(
        database_url, tmp_path, "create-user", "--role", "judge", "--name", "x",
        "--username", "xinfaguan", stdin="Str0ng-passw0rd\n",
    )  # fmt: skip
    assert clash.returncode == 2 and "already exists" in clash.stderr


async def test_demo_is_idempotent_and_prints_the_logins(
    empty_database_url: str, tmp_path: Path
) -> None:
    first = await cli(empty_database_url, tmp_path, "demo")
    assert first.returncode == 0, first.stderr
    assert "demo court created" in first.stdout
    assert "tiaojie" in first.stdout and "13800000001" in first.stdout
    second = await cli(empty_database_url, tmp_path, "demo")
    assert "already present" in second.stdout


async def test_check_reports_each_part(database_url: str, tmp_path: Path) -> None:
    result = await cli(database_url, tmp_path, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    for part in ("database", "object store", "speech model"):
        assert part in result.stdout
    assert "tiny.en" in result.stdout and "int8" in result.stdout
    assert TEST_SECRET not in result.stdout


async def test_check_fails_on_what_is_not_there(tmp_path: Path) -> None:
    result = await cli(
        "postgresql://nobody@127.0.0.1:1/none",
        tmp_path,
        "check",
        YIZHAN_ASR_MODEL="large-v3",
        YIZHAN_STORAGE_URL="s3://k:s@127.0.0.1:1/bucket?secure=false",
    )
    assert result.returncode == 1
    assert result.stdout.count("[FAIL]") == 3
    assert "unreachable" in result.stdout
    assert "not installed" in result.stdout


async def test_an_invalid_setting_stops_the_command_naming_the_variable(tmp_path: Path) -> None:
    result = await cli("sqlite:///x.db", tmp_path, "check", YIZHAN_PORT="abc")
    assert result.returncode == 2
    assert "YIZHAN_PORT" in result.stderr
