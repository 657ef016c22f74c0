"""Recorded statements of asynchronous hearings (非同步庭审, 人民法院在线诉讼规则 Art. 20).

A party, an agent, or the judge or clerk of a dispute uploads an audio or video
recording of their statement for one of its hearing sessions (scheduled or open, not
held or cancelled).  It is kept as a write-once document with its SHA-256, and a
``transcribe_statement`` job turns it into transcript lines of the session in the
uploader's name and seat.  Everyone on the dispute may list the statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import CaseSession, Document, Job, StoredObject
from server.domain.documents import DocumentKind
from server.domain.errors import N_, Forbidden, Invalid, NotFound
from server.domain.roles import Permission, Role
from server.jobs.queue import loads
from server.jobs.runner import JobRunner
from server.jobs.transcribe import TRANSCRIBE_STATEMENT, StatementParams
from server.services import documents
from server.services import rooms as room_service
from server.services.rooms import RoomSeat, SessionFacts
from storage.spool import Spool, Spooled

STATEMENT_UPLOADERS = frozenset({Role.PARTY, Role.AGENT, Role.JUDGE, Role.CLERK})
NOT_A_HEARING = N_("Recorded statements are taken only for hearings.")


@dataclass(frozen=True)
class Uploader:
    """Who gives the statement, as the transcript will name them."""

    facts: SessionFacts
    seat: RoomSeat


@dataclass(frozen=True)
class Statement:
    job: Job
    document: Document
    stored: StoredObject
    params: StatementParams


async def may_upload(
    db: AsyncSession, principal: Principal, session_id: int, *, reverify_minutes: int
) -> Uploader:
    """Checked before a single byte of the body is read: on the dispute (else 404), a role
    that may give a statement, a hearing that is not over or cancelled."""
    facts, seat = await room_service.seat_for(
        db, principal, session_id, reverify_minutes=reverify_minutes
    )
    if principal.role not in STATEMENT_UPLOADERS:
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", dispute_id=facts.dispute_id, permission="statement.upload"
        )
    if facts.kind != "hearing":
        raise Invalid(NOT_A_HEARING)
    return Uploader(facts, seat)


async def record(
    db: AsyncSession,
    spool: Spool,
    spooled: Spooled,
    runner: JobRunner,
    *,
    principal: Principal,
    uploader: Uploader,
    filename: str,
    title: str,
    default_language: str,
) -> Statement:
    """Keep the received recording and queue its transcription (the caller's transaction)."""
    session_id = uploader.facts.session_id
    facts = await room_service.facts(db, session_id)  # still open after a long upload?
    document, stored = await documents.store_document(
        db,
        spool,
        spooled,
        principal=principal,
        dispute_id=facts.dispute_id,
        kind=DocumentKind.STATEMENT_RECORDING,
        filename=filename,
        title=title,
    )
    params = StatementParams(
        document_id=document.id,
        identity=uploader.seat.identity,
        name=uploader.seat.name,
        seat=uploader.seat.seat,
        language=facts.language or default_language,
        uploaded_at=document.created_at,
    )
    job = await runner.enqueue(
        db,
        TRANSCRIBE_STATEMENT,
        params.to_json(),
        dispute_id=facts.dispute_id,
        session_id=session_id,
        created_by=principal.actor(),
    )
    await audit.append(
        db,
        AuditEntry(
            "statement.uploaded",
            principal.actor(),
            "document",
            document.id,
            dispute_id=facts.dispute_id,
            details={
                "session_id": session_id,
                "job_id": job.id,
                "seat": params.seat,
                "size": stored.size,
                "sha256": stored.sha256,
            },
        ),
    )
    return Statement(job, document, stored, params)


async def session_for(db: AsyncSession, principal: Principal, session_id: int) -> CaseSession:
    """The session if the caller may see its dispute (else an audited 404)."""
    case_session = await db.get(CaseSession, session_id)
    if case_session is None:
        raise NotFound(N_("No such session, or it is not yours to join."))
    await access.dispute_for(db, principal, case_session.dispute_id, Permission.VIEW_DISPUTE)
    return case_session


async def list_statements(
    db: AsyncSession, principal: Principal, session_id: int
) -> Sequence[Statement]:
    """The session's recorded statements, oldest first, with their transcription jobs."""
    await session_for(db, principal, session_id)
    jobs = (
        await db.scalars(
            select(Job)
            .where(Job.session_id == session_id, Job.kind == TRANSCRIBE_STATEMENT)
            .order_by(Job.id)
        )
    ).all()
    wanted = {job.id: StatementParams.from_json(loads(job.params)) for job in jobs}
    found = {
        document.id: (document, stored)
        for document, stored in (
            await db.execute(
                select(Document, StoredObject)
                .join(StoredObject, StoredObject.id == Document.object_id)
                .where(Document.id.in_([p.document_id for p in wanted.values()]))
            )
        ).tuples()
    }
    return [
        Statement(job, *found[wanted[job.id].document_id], wanted[job.id])
        for job in jobs
        if wanted[job.id].document_id in found
    ]
