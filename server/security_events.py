"""Writing the audit row of a refused request, after its own transaction rolled back."""

from __future__ import annotations

from server import audit
from server.audit import Actor, AuditEntry
from server.db.engine import Database
from server.domain.errors import DomainError


async def record_denial(database: Database, actor: Actor, error: DomainError, where: str) -> None:
    async with database.transaction(write=True) as session:
        await audit.append(
            session,
            AuditEntry(
                action=error.audit_action or "security." + error.code,
                actor=actor,
                object_type="request",
                object_id=where[:64],
                dispute_id=error.dispute_id,
                outcome="denied",
                details={**error.audit_details, "where": where},
            ),
        )
