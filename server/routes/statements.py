"""Recorded statements of asynchronous hearings: the upload (streamed into the spool, the
size limit checked before the body is read), the list with each transcription's
progress, and the session's statements page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel

from server.context import DATABASE, OUTBOX, SPOOL, db, require_login, settings
from server.domain.errors import Forbidden, Gone, Invalid, ReverificationRequired
from server.i18n import gettext
from server.jobs.setup import RUNNER
from server.openapi import documented
from server.routes.common import path_id
from server.routes.jobs import JobOut, job_json
from server.routes.multipart import received_file, streams_body
from server.services import documents, jobs, statements
from server.services import rooms as room_service
from server.services.statements import Statement
from server.templating import render

ACCEPT = ".wav,.mp3,.m4a,.mp4,.webm"


class DocumentOut(BaseModel):
    id: int
    dispute_id: int
    kind: str
    title: str
    filename: str
    size: int
    sha256: str
    content_type: str
    stored: bool
    created_at: str


class StatementOut(BaseModel):
    name: str
    seat: str
    uploaded_at: str
    document: DocumentOut
    job: JobOut
    job_url: str


def statement_json(statement: Statement, *, details: bool) -> dict[str, Any]:
    return {
        "name": statement.params.name,
        "seat": gettext(statement.params.seat) if statement.params.seat else "",
        "uploaded_at": statement.params.uploaded_at.isoformat(),
        "document": documents.document_json(statement.document, statement.stored),
        "job": job_json(statement.job, details=details),
        "job_url": f"/api/v1/jobs/{statement.job.id}",
    }


@documented(
    "Upload a recorded statement (audio or video) for a hearing; its transcription is "
    "queued as a job (multipart form: file, optional title)",
    response=StatementOut,
    status=202,
    tags=("sessions",),
)
@streams_body
async def upload(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    config = settings(request)
    uploader = await statements.may_upload(
        db(request), caller, session_id, reverify_minutes=config.reverify_minutes
    )
    limit = config.statement_max_mb * 1024 * 1024
    async with (
        received_file(request, limit) as upload,
        request.app[DATABASE].transaction(write=True) as session,
    ):
        statement = await statements.record(
            session,
            request.app[SPOOL],
            upload.spooled,
            request.app[RUNNER],
            principal=caller,
            uploader=uploader,
            filename=upload.filename,
            title=upload.title,
            default_language=config.asr_language,
        )
    request.app[OUTBOX].wake()
    return web.json_response(
        statement_json(statement, details=jobs.sees_details(caller)), status=202
    )


@documented(
    "A hearing's recorded statements, each with its transcription job",
    response=StatementOut,
    tags=("sessions",),
)
async def listing(request: web.Request) -> web.Response:
    caller = require_login(request)
    found = await statements.list_statements(db(request), caller, path_id(request, "session_id"))
    details = jobs.sees_details(caller)
    return web.json_response({"items": [statement_json(s, details=details) for s in found]})


async def page(request: web.Request) -> web.Response:
    """The statements page: the list with progress, and the upload form for those who may."""
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    found = await statements.list_statements(db(request), caller, session_id)
    facts = await room_service.facts(db(request), session_id, joinable=False)
    may_upload, note, reverify_url = False, "", ""
    try:
        await statements.may_upload(
            db(request), caller, session_id, reverify_minutes=settings(request).reverify_minutes
        )
        may_upload = True
    except ReverificationRequired as exc:
        note = gettext(exc.message)
        reverify_url = f"/reverify?next={quote(request.path_qs)}"
    except Forbidden:
        pass  # a role that gives no statements: the page only lists them
    except (Invalid, Gone) as exc:
        note = gettext(exc.message)
    details = jobs.sees_details(caller)
    return render(
        request,
        "statements.html",
        {
            "session": facts,
            "statements": [
                {**statement_json(s, details=details), "uploaded": s.params.uploaded_at}
                for s in found
            ],
            "may_upload": may_upload,
            "upload_note": note,
            "reverify_url": reverify_url,
            "accept": ACCEPT,
            "max_mb": settings(request).statement_max_mb,
        },
    )


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/sessions/{session_id}/statements", page, name="statements")
    r.add_get("/api/v1/sessions/{session_id}/statements", listing, name="api_session_statements")
    r.add_post(
        "/api/v1/sessions/{session_id}/statements", upload, name="api_session_statement_upload"
    )
