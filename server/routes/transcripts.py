"""The transcript page of a session (live for staff, correctable by the clerk), its JSON
API (lines, corrections, merge, split, undisputed facts, each line's versions)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from server import audit
from server.audit import AuditEntry
from server.context import db, require_login
from server.db.models import TranscriptEdit, TranscriptLine
from server.domain.errors import N_, NotFound
from server.domain.roles import Permission, has_permission
from server.i18n import current_locale, gettext
from server.jobs.setup import RUNNER
from server.openapi import documented
from server.routes.api import body
from server.routes.common import path_id
from server.routes.jobs import JobOut, job_json
from server.services import jobs, transcript_exports, transcript_review, transcripts
from server.services import rooms as room_service
from server.templating import render
from transcription.formats import Cue, to_json, to_srt, to_text, to_webvtt


def line_json(line: TranscriptLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "name": line.name,
        "seat": gettext(line.seat) if line.seat else "",
        "identity": line.identity,
        "start": line.start,
        "end": line.end,
        "spoken_at": line.clock_start.isoformat(),
        "text": line.text,
        "version": line.version,
        "undisputed": line.undisputed,
        "language": line.language,
    }


def edit_json(edit: TranscriptEdit) -> dict[str, Any]:
    return {
        "version": edit.version,
        "text": edit.text,
        "action": edit.action,
        "by": edit.by_name,
        "at": edit.at.isoformat(),
    }


class LineOut(BaseModel):
    id: int
    name: str
    seat: str
    identity: str
    start: float
    end: float
    spoken_at: str
    text: str
    version: int
    undisputed: bool
    language: str


class Correction(BaseModel):
    text: str = Field(max_length=transcripts.MAX_LINE)
    version: int | None = Field(default=None, description="the version the clerk edited")


class Undisputed(BaseModel):
    undisputed: bool


class Merge(BaseModel):
    with_line: int = Field(description="the other line (same speaker) to join")


class Split(BaseModel):
    at: int = Field(description="character position to cut at")


class ExportIn(BaseModel):
    format: str = Field(description="docx or pdf", pattern="^(docx|pdf)$")


class ExportOut(BaseModel):
    job: JobOut


async def transcript_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    rows = await transcripts.lines(db(request), caller, session_id)
    facts = await room_service.facts(db(request), session_id, joinable=False)
    return render(
        request,
        "transcript.html",
        {
            "session": facts,
            "lines": [line_json(line) for line in rows],
            "may_edit": has_permission(caller.role, Permission.EDIT_TRANSCRIPT),
            "review": await transcript_review.state(db(request), caller, session_id),
        },
    )


@documented("A session's transcript, line by line", response=LineOut)
async def transcript_lines(request: web.Request) -> web.Response:
    caller = require_login(request)
    rows = await transcripts.lines(db(request), caller, path_id(request, "session_id"))
    return web.json_response({"items": [line_json(line) for line in rows]})


@documented("Correct a line's text (a new version)", body=Correction, response=LineOut)
async def correct(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, Correction)
    line = await transcripts.correct(
        db(request), caller, path_id(request), data.text, version=data.version
    )
    return web.json_response(line_json(line))


@documented("Mark a line as an undisputed fact, or not", body=Undisputed, response=LineOut)
async def undisputed(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, Undisputed)
    line = await transcripts.mark_undisputed(db(request), caller, path_id(request), data.undisputed)
    return web.json_response(line_json(line))


@documented("Merge two lines of the same speaker", body=Merge, response=LineOut)
async def merge(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, Merge)
    line = await transcripts.merge(db(request), caller, path_id(request), data.with_line)
    return web.json_response(line_json(line))


@documented("Split a line in two", body=Split)
async def split(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, Split)
    head, tail = await transcripts.split(db(request), caller, path_id(request), data.at)
    return web.json_response({"items": [line_json(head), line_json(tail)]})


@documented("Every version of a line: text, action, who, when")
async def history(request: web.Request) -> web.Response:
    caller = require_login(request)
    edits = await transcripts.history(db(request), caller, path_id(request))
    return web.json_response({"items": [edit_json(edit) for edit in edits]})


EXPORTS: dict[str, tuple[Callable[[Sequence[Cue]], str], str]] = {
    "txt": (to_text, "text/plain"),
    "vtt": (to_webvtt, "text/vtt"),
    "srt": (to_srt, "application/x-subrip"),
    "json": (to_json, "application/json"),
}


def as_cues(rows: Sequence[TranscriptLine]) -> list[Cue]:
    """Lines on one clock: the session's first room opening is zero."""
    if not rows:
        return []
    zero = min(line.clock_start for line in rows)
    cues = []
    for line in rows:
        offset = (line.clock_start - zero).total_seconds()
        seat = gettext(line.seat) if line.seat else ""
        cues.append(
            Cue(line.start + offset, line.end + offset, line.text, line.name, seat, line.identity)
        )
    return sorted(cues, key=lambda cue: (cue.start, cue.end))


async def download(request: web.Request) -> web.Response:
    """The transcript as plain text, WebVTT (voice tags), SRT or JSON; audited."""
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    kind = request.match_info["format"]
    if kind not in EXPORTS:
        raise NotFound(N_("No such download."))
    rows = await transcripts.lines(db(request), caller, session_id)
    render_as, content_type = EXPORTS[kind]
    text = render_as(as_cues(rows))
    facts = await room_service.facts(db(request), session_id, joinable=False)
    await audit.append(
        db(request),
        AuditEntry(
            action="transcript.downloaded",
            actor=caller.actor(),
            object_type="case_session",
            object_id=session_id,
            dispute_id=facts.dispute_id,
            details={"format": kind, "sha256": hashlib.sha256(text.encode()).hexdigest()},
        ),
    )
    name = f"transcript-{session_id}.{kind}"
    return web.Response(
        text=text,
        content_type=content_type,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@documented(
    "Make the transcript as DOCX or PDF in the court's layout (a background job; its result "
    "names the stored document)",
    body=ExportIn,
    response=ExportOut,
)
async def export(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, ExportIn)
    job = await transcript_exports.request_export(
        db(request),
        request.app[RUNNER],
        caller,
        path_id(request, "session_id"),
        data.format,
        current_locale.get(),
    )
    return web.json_response({"job": job_json(job, details=jobs.sees_details(caller))}, status=202)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/sessions/{session_id}/transcript", transcript_page, name="transcript")
    r.add_get("/sessions/{session_id}/transcript.{format}", download, name="transcript_download")
    r.add_get("/api/v1/sessions/{session_id}/transcript", transcript_lines, name="api_transcript")
    r.add_post(
        "/api/v1/sessions/{session_id}/transcript/exports", export, name="api_transcript_export"
    )
    r.add_post("/api/v1/transcript/lines/{id}", correct, name="api_transcript_correct")
    r.add_post("/api/v1/transcript/lines/{id}/undisputed", undisputed, name="api_transcript_mark")
    r.add_post("/api/v1/transcript/lines/{id}/merge", merge, name="api_transcript_merge")
    r.add_post("/api/v1/transcript/lines/{id}/split", split, name="api_transcript_split")
    r.add_get("/api/v1/transcript/lines/{id}/history", history, name="api_transcript_history")
