"""Write a new Alembic revision by comparing the models with a database at head.

    .venv/bin/python scripts/new_migration.py "add something"

The comparison runs on a scratch SQLite file; review the generated file by hand
(batch operations render for SQLite and work on PostgreSQL too).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection

from server.db import migrate
from server.db.engine import Database


def _revision(connection: Connection, message: str, rev_id: str) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


async def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'scratch.db'}")
        versions = sorted((migrate.MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
        if versions:
            await migrate.upgrade(db)
        rev_id = f"{len(versions) + 1:04d}"
        async with db.write_engine.begin() as conn:
            await conn.run_sync(_revision, message, rev_id)
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "change"))
