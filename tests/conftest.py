"""Fixtures: a fresh database on each backend (SQLite and PostgreSQL), the app, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from server.app import init_app
from server.config import Settings
from tests.s3_server import S3Server
from tests.support import BACKENDS, Clients, Templates, make_settings


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    built = Templates(tmp_path_factory.mktemp("templates"))
    try:
        built.build()
        yield built
    finally:
        built.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(templates: Templates, backend: str, tmp_path: Path) -> Iterator[str]:
    """A migrated database holding the demo court."""
    url = templates.fresh(backend, "demo", tmp_path)
    yield url
    templates.drop(url)


@pytest.fixture
def empty_database_url(templates: Templates, backend: str, tmp_path: Path) -> Iterator[str]:
    """A migrated database with no rows."""
    url = templates.fresh(backend, "empty", tmp_path)
    yield url
    templates.drop(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest.fixture
async def clients(settings: Settings) -> AsyncIterator[Clients]:
    server = TestServer(init_app(settings), host="127.0.0.1")
    await server.start_server()
    pool = Clients(server, settings)
    try:
        yield pool
    finally:
        await pool.close()
        await server.close()


@pytest.fixture
def blank_database_url(templates: Templates, backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    url = templates.fresh(backend, "blank", tmp_path)
    yield url
    templates.drop(url)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()
