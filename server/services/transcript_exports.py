"""Transcript downloads in the court's layout (DOCX, PDF), made by a background job.

Asking for one queues a ``transcript_export`` job (the caller must be able to read the
transcript); the job lays the record out in a worker thread with progress, stores the
file through ``storage/`` as a document of the dispute (kind ``transcript_export``, with
its SHA-256) and audits it.  The result names the document, which downloads like any
other (``/api/v1/documents/{id}/content``, audited there).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth.principal import Principal
from server.db.models import Job, User
from server.domain.documents import DEFAULT_LIMITS, DocumentKind
from server.domain.errors import N_, Invalid
from server.domain.roles import Role
from server.i18n import translate_in
from server.jobs.context import JobContext
from server.jobs.errors import JobFailed
from server.jobs.runner import JobRunner
from server.services import rooms as room_service
from server.services import transcripts
from server.services.documents import store_document
from server.services.transcript_record import court_record
from transcription.court_record import CourtRecord
from transcription.documents import to_docx, to_pdf

TRANSCRIPT_EXPORT = "transcript_export"
FORMATS: dict[str, Callable[..., bytes]] = {"docx": to_docx, "pdf": to_pdf}

GATHERING = N_("Gathering the transcript")
LAYING_OUT = N_("Laying out the document")
STORING = N_("Storing the document")
GONE = N_("You may no longer read this transcript.")


async def request_export(
    db: AsyncSession,
    runner: JobRunner,
    principal: Principal,
    session_id: int,
    file_format: str,
    locale: str,
) -> Job:
    """Queue the making of a DOCX or PDF of the session's transcript."""
    if file_format not in FORMATS:
        raise Invalid(N_("Choose DOCX or PDF."), field="format")
    await transcripts.lines(db, principal, session_id)  # may the caller read it at all
    facts = await room_service.facts(db, session_id, joinable=False)
    return await runner.enqueue(
        db,
        TRANSCRIPT_EXPORT,
        {"session_id": session_id, "format": file_format, "locale": locale},
        dispute_id=facts.dispute_id,
        session_id=session_id,
        created_by=principal.actor(),
    )


async def _creator(db: AsyncSession, user_id: int | None) -> Principal:
    """The person who asked, as they are now (an account closed since may not export)."""
    user = await db.get(User, user_id) if user_id is not None else None
    if user is None or not user.active:
        raise JobFailed(GONE, "the requesting account is gone or inactive")
    return Principal(
        user_id=user.id,
        role=Role(user.role),
        name=user.name,
        court_id=user.court_id,
        session_id=0,
        method="job",
    )


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _filename(record: CourtRecord, file_format: str) -> str:
    number = "".join(c for c in record.case_number if c not in '\\/:*?"<>|')
    return f"{number} {record.title}.{file_format}"


async def export(ctx: JobContext) -> Mapping[str, Any]:
    """The job: lay the record out and store it as a document of the dispute."""
    if "document_id" in ctx.saved:  # an earlier run stored it; the job is done
        return dict(ctx.saved)
    session_id = int(ctx.params["session_id"])
    file_format = str(ctx.params["format"])
    locale = str(ctx.params.get("locale") or "zh_CN")

    def translate(message: str) -> str:
        return translate_in(locale, message)

    ctx.progress(0.02, GATHERING)
    async with ctx.database.transaction() as db:
        principal = await _creator(db, ctx.created_by_id)
        record = await court_record(
            db, principal, session_id, translate, timezone=ctx.settings.timezone
        )
    loop = asyncio.get_running_loop()
    laying_out = ctx.span(0.05, 0.9, LAYING_OUT)

    def progress(fraction: float) -> None:  # called from the worker thread
        loop.call_soon_threadsafe(laying_out, fraction)

    data = await asyncio.to_thread(FORMATS[file_format], record, translate, progress)
    ctx.progress(0.9, STORING)
    limit = DEFAULT_LIMITS[DocumentKind.TRANSCRIPT_EXPORT]
    if len(data) > limit:
        raise JobFailed(N_("The document is too large to store."), f"{len(data)} bytes")
    spooled = await ctx.spool.receive(_one(data), limit=limit)
    async with ctx.database.transaction() as db:
        document, stored = await store_document(
            db,
            ctx.spool,
            spooled,
            principal=principal,
            dispute_id=int(ctx.dispute_id or 0),
            kind=DocumentKind.TRANSCRIPT_EXPORT,
            filename=_filename(record, file_format),
            title=f"{record.title} ({file_format.upper()})",
        )
        await audit.append(
            db,
            AuditEntry(
                action="transcript.exported",
                actor=principal.actor(),
                object_type="case_session",
                object_id=session_id,
                dispute_id=document.dispute_id,
                details={
                    "format": file_format,
                    "document_id": document.id,
                    "sha256": stored.sha256,
                    "frozen_sha256": record.sha256,
                    "lines": len(record.lines),
                },
            ),
        )
        result = {
            "document_id": document.id,
            "sha256": stored.sha256,
            "size": stored.size,
            "format": file_format,
            "frozen": bool(record.sha256),
        }
    await ctx.checkpoint(**result)
    ctx.progress(1.0)
    return result
