"""Reading the audit log (for admins)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.db.models import AuditEvent
from server.pagination import Page, paginate


async def recent(
    db: AsyncSession, page: int, per_page: int, *, dispute_id: int | None = None
) -> Page[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.seq.desc())
    if dispute_id is not None:
        query = query.where(AuditEvent.dispute_id == dispute_id)
    return await paginate(db, query, page, per_page)


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {**audit.content(event), "row_hash": event.row_hash}
