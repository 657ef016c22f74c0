"""The audit log: append-only rows, each carrying the SHA-256 of the row before it.

Every state change of a dispute and every security event is written here: who
(actor, role, IP), what (action, object, before/after summary), when (UTC).
Appends must run inside a writing transaction: on PostgreSQL an advisory lock
orders them, on SQLite the writing transaction already holds the file lock, and
the unique ``seq`` makes a lost race fail loudly instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import AuditEvent

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 0x59_5A_41_55  # "YZAU"
SECRET_KEYS = frozenset(
    {"password", "code", "otp", "token", "secret", "totp", "totp_code", "csrf", "cookie", "key"}
)
VERIFY_BATCH = 1000


@dataclass(frozen=True)
class Actor:
    """Who did something: a user, or the system itself (``id`` None)."""

    id: int | None = None
    role: str = "system"
    name: str = ""
    ip: str = ""


SYSTEM = Actor()


@dataclass(frozen=True)
class AuditEntry:
    action: str
    actor: Actor = SYSTEM
    object_type: str = ""
    object_id: str | int = ""
    dispute_id: int | None = None
    outcome: str = "ok"
    details: Mapping[str, Any] = field(default_factory=dict)


def scrub(value: Any) -> Any:
    """Remove anything that looks like a secret from a details structure."""
    if isinstance(value, Mapping):
        return {
            str(k): ("[removed]" if str(k).lower() in SECRET_KEYS else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def content(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "actor_name": event.actor_name,
        "ip": event.ip,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "dispute_id": event.dispute_id,
        "outcome": event.outcome,
        "details": event.details,
    }


def row_hash(prev_hash: str, event: AuditEvent) -> str:
    payload = json.dumps(content(event), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + "\n" + payload).encode("utf-8")).hexdigest()


async def _lock(session: AsyncSession) -> None:
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})


async def append(session: AsyncSession, entry: AuditEntry) -> AuditEvent:
    """Add one row to the chain inside the caller's transaction."""
    await _lock(session)
    last = (
        await session.execute(
            select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
        )
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    event = AuditEvent(
        seq=seq,
        at=datetime.now(UTC),
        actor_id=entry.actor.id,
        actor_role=entry.actor.role,
        actor_name=entry.actor.name,
        ip=entry.actor.ip,
        action=entry.action,
        object_type=entry.object_type,
        object_id=str(entry.object_id),
        dispute_id=entry.dispute_id,
        outcome=entry.outcome,
        details=scrub(dict(entry.details)),
        prev_hash=prev,
    )
    # JSON round trip so the hash covers exactly what the database gives back
    event.details = json.loads(json.dumps(event.details, ensure_ascii=False))
    event.row_hash = row_hash(prev, event)
    session.add(event)
    await session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_broken_seq: int | None = None
    first_broken_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


async def _rows(session: AsyncSession) -> AsyncIterator[AuditEvent]:
    after = 0
    while True:
        batch = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.seq > after)
                .order_by(AuditEvent.seq)
                .limit(VERIFY_BATCH)
            )
        ).all()
        if not batch:
            return
        for event in batch:
            yield event
        after = batch[-1].seq
        session.expunge_all()


async def verify(session: AsyncSession) -> ChainReport:
    """Walk the chain in order; name the first row whose link or content is wrong."""
    prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    async for event in _rows(session):
        count += 1
        problem = ""
        if event.seq != expected_seq:
            problem = (
                f"sequence gap: expected {expected_seq}, found {event.seq} (a row was removed)"
            )
        elif event.prev_hash != prev:
            problem = "link broken: prev_hash does not match the previous row"
        elif row_hash(prev, event) != event.row_hash:
            problem = "content changed: the row's hash does not match its fields"
        if problem:
            return ChainReport(count, event.seq, event.id, problem)
        prev = event.row_hash
        expected_seq += 1
    return ChainReport(count)
