"""Helpers shared by the tests: fresh databases on both backends, logged-in clients."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.engine import make_url

from server.config import Settings, load_settings
from server.db import migrate
from server.db.engine import Database
from server.db.models import CaseSession, OutboxMessage
from server.demo import DEMO_PASSWORD, seed

POSTGRES_URL = os.environ.get(
    "YIZHAN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
BACKENDS = ("sqlite", "postgresql")


def _admin_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")


async def pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(_admin_dsn())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(name: str) -> str:
    url = make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def _prepare(url: str, *, demo: bool) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
        if demo:
            async with db.transaction() as session:
                await seed(session)
    finally:
        await db.dispose()


class Templates:
    """Migrated (and demo-seeded) template databases, copied for each test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.prefix = f"yz_{uuid.uuid4().hex[:8]}"
        self.pg_databases: list[str] = []

    def build(self) -> None:
        for kind, demo in (("empty", False), ("demo", True)):
            path = self.workdir / f"template-{kind}.db"
            asyncio.run(_prepare(f"sqlite+aiosqlite:///{path}", demo=demo))
            name = f"{self.prefix}_tpl_{kind}"
            asyncio.run(pg_execute(f'CREATE DATABASE "{name}"'))
            self.pg_databases.append(name)
            asyncio.run(_prepare(pg_url(name), demo=demo))

    def fresh(self, backend: str, kind: str, target_dir: Path) -> str:
        """A new database: ``blank`` (no schema), ``empty`` (migrated) or ``demo``."""
        if backend == "sqlite":
            path = target_dir / "yizhan.db"
            if kind != "blank":
                shutil.copyfile(self.workdir / f"template-{kind}.db", path)
            return f"sqlite+aiosqlite:///{path}"
        name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
        template = "template0" if kind == "blank" else f"{self.prefix}_tpl_{kind}"
        asyncio.run(pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self.pg_databases.append(name)
        return pg_url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        if make_url(url).get_backend_name() == "postgresql" and name in self.pg_databases:
            asyncio.run(pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.pg_databases.remove(name)

    def close(self) -> None:
        for name in list(self.pg_databases):
            asyncio.run(pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.pg_databases.clear()


def make_settings(data_dir: Path, database_url: str, **extra: str) -> Settings:
    env = {
        "YIZHAN_DATA_DIR": str(data_dir),
        "YIZHAN_DATABASE_URL": database_url,
        "YIZHAN_SECRET_KEY": TEST_SECRET,
        "YIZHAN_ASR_MODEL": "tiny.en",
        "YIZHAN_LOGIN_SLOWDOWN_SECONDS": "0",
        "YIZHAN_LOG_FORMAT": "text",
        # live captions load a speech model on the first speech: only tests/media/
        # test_captions.py turns them on, so the other media tests' tones cost nothing
        "YIZHAN_CAPTIONS": "false",
        **extra,
    }
    return load_settings(env)


class Clients:
    """Several browsers (cookie jars) against one running test server."""

    def __init__(self, server: TestServer, settings: Settings) -> None:
        self.server = server
        self.settings = settings
        self.clients: list[TestClient[Any, Any]] = []

    async def new(self) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()

    async def csrf(self, client: TestClient[Any, Any]) -> str:
        response = await client.get("/api/v1/csrf")
        assert response.status == 200
        token: str = (await response.json())["csrf_token"]
        return token

    async def post_json(
        self, client: TestClient[Any, Any], path: str, body: Any, **headers: str
    ) -> Any:
        token = await self.csrf(client)
        return await client.post(path, json=body, headers={"X-CSRF-Token": token, **headers})

    async def staff(self, account: str, password: str = DEMO_PASSWORD) -> TestClient[Any, Any]:
        client = await self.new()
        response = await self.post_json(
            client, "/api/v1/auth/login", {"account": account, "password": password}
        )
        assert response.status == 200, await response.text()
        return client

    async def latest_code(self, destination: str) -> str:
        db = Database(self.settings.database_url)
        try:
            async with db.transaction(write=False) as session:
                message = await session.scalar(
                    select(OutboxMessage)
                    .where(OutboxMessage.destination == destination)
                    .order_by(OutboxMessage.id.desc())
                    .limit(1)
                )
        finally:
            await db.dispose()
        assert message is not None, f"no message was sent to {destination}"
        digits = [word for word in message.body.replace("，", " ").split() if word.isdigit()]
        return digits[0]

    async def party(self, phone: str) -> TestClient[Any, Any]:
        client = await self.new()
        response = await self.post_json(client, "/api/v1/auth/code", {"account": phone})
        assert response.status == 202
        code = await self.latest_code(phone)
        response = await self.post_json(
            client, "/api/v1/auth/code/verify", {"account": phone, "code": code}
        )
        assert response.status == 200, await response.text()
        return client


@contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def demo_session(clients: Clients) -> int:
    """The id of the demo loan dispute's scheduled mediation (hosted by tiaojie)."""
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            found = await session.scalar(select(CaseSession.id).where(CaseSession.dispute_id == 1))
    finally:
        await db.dispose()
    assert found is not None
    return found
