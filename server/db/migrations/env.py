"""Alembic environment: always run through server.db.migrate with a live connection."""

from alembic import context

import server.db.models  # noqa: F401  (registers every table)
from server.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `yizhan migrate`, not the alembic command.")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
