"""Alembic, driven from code: apply migrations and tell whether a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from server.db.engine import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class NotMigrated(Exception):
    """The database schema is not at the code's head revision."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.read_engine.connect() as conn:
        return await conn.run_sync(_current)


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations up to ``revision``; return (before, after)."""
    before = await current_revision(db)
    async with db.write_engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)
    return before, await current_revision(db)


async def ensure_migrated(db: Database) -> None:
    current = await current_revision(db)
    head = head_revision()
    if current != head:
        state = "empty (no schema)" if current is None else f"at revision {current}"
        raise NotMigrated(
            f"The database {db.display_url()} is {state}, but this version needs {head}. "
            "Run `yizhan migrate` first."
        )
