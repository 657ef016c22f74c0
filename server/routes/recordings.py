"""Playing a session's recording back: the playback page (the media beside the transcript,
the recording's timeline, each file's SHA-256, the compose job), its JSON API, a new
compose on request, and each file's bytes with byte ranges (audited when a playback
starts and on every download)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field

from server import audit
from server.audit import AuditEntry
from server.auth.principal import Principal
from server.context import DATABASE, SPOOL, STORE, db, require_login, settings
from server.db.models import RecordingEvent
from server.domain.errors import N_
from server.i18n import gettext
from server.jobs.setup import RUNNER
from server.openapi import documented
from server.routes.common import path_id
from server.routes.documents import check_in_store, requested_range
from server.routes.jobs import JobOut, job_json
from server.services import jobs, recording_compose, recording_retention, recording_view
from server.services import rooms as room_service
from server.services.documents import open_bytes
from server.services.recording_view import MediaFile, PlayableFile, RecordingView
from server.templating import render
from storage.base import ByteRange

EVENT_LABELS = {
    "started": N_("Recording started"),
    "paused": N_("Recording paused"),
    "resumed": N_("Recording resumed"),
    "stopped": N_("Recording stopped"),
    "interrupted": N_("Recording interrupted"),
    "joined": N_("Joined"),
    "left": N_("Left"),
    "dropped": N_("Connection dropped"),
    "reconnected": N_("Reconnected"),
    "recorder_error": N_("Recorder error"),
    "held": N_("Legal hold placed"),
    "released": N_("Legal hold released"),
    "purged": N_("Recording removed at the end of its retention"),
}
REASON_LABELS = {
    "recess": N_("Recess"),
    "non_public_evidence": N_("Examination of non-public evidence"),
    "mediation": N_("Mediation"),
    "server_stopped": N_("The server stopped"),
    "restart": N_("After an interruption"),
}
SOURCE_LABELS = {
    "mic": N_("Microphone"),
    "camera": N_("Camera"),
    "screen": N_("Shared screen"),
}
# timeline entries that mark a change of what is being recorded
MARKS = frozenset({"started", "paused", "resumed", "stopped", "interrupted", "recorder_error"})
COMPOSITE = N_("Everyone (composite)")
NOT_IN_FILE = N_("The requested range is not in the file.")
TRUE = ("1", "true", "yes")


def clock(seconds: float) -> str:
    """Seconds on the recording's clock as m:ss, or h:mm:ss past an hour."""
    sign = "-" if seconds < 0 else ""
    whole = int(abs(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes}:{secs:02d}"


def _detail(event: RecordingEvent) -> dict[str, Any]:
    try:
        parsed = json.loads(event.detail or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def event_json(event: RecordingEvent, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "label": gettext(EVENT_LABELS.get(event.kind, event.kind)),
        "reason": event.reason,
        "reason_label": gettext(REASON_LABELS[event.reason])
        if event.reason in REASON_LABELS
        else event.reason,
        "at": event.at.isoformat(),
        "at_local": event.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "offset": event.offset,
        "clock": clock(event.offset),
        "actor": event.actor,
        "subject": event.subject,
        "detail": _detail(event),
        "mark": event.kind in MARKS,
    }


def media_url(file_id: int) -> str:
    return f"/api/v1/recording-files/{file_id}/media"


def file_json(playable: PlayableFile) -> dict[str, Any]:
    f, stored = playable.file, playable.stored
    composite = f.role == "composite"
    return {
        "id": f.id,
        "role": f.role,
        "identity": f.identity,
        "name": gettext(COMPOSITE) if composite else f.name,
        "seat": gettext(f.seat) if f.seat else "",
        "duration": f.duration,
        "clock": clock(f.duration),
        "has_video": f.has_video,
        "sha256": f.sha256 or (stored.sha256 if stored else ""),
        "size": stored.size if stored else None,
        "content_type": media_type(stored.content_type, f.has_video) if stored else None,
        "document_id": f.document_id,
        "stored": stored is not None and stored.status == "stored",
        "media_url": media_url(f.id) if stored else None,
        "download_url": f"{media_url(f.id)}?download=1" if stored else None,
    }


def view_json(view: RecordingView, zone: ZoneInfo, *, details: bool) -> dict[str, Any]:
    recording = view.recording
    segments = view.segments
    return {
        "session_id": view.session_id,
        "dispute_id": view.dispute_id,
        "case_number": view.case_number,
        "state": recording.state if recording else "none",
        "playback": view.playback,
        "started_at": recording.started_at.isoformat() if recording else None,
        "started_local": recording.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        if recording
        else None,
        "ended_at": recording.ended_at.isoformat() if recording and recording.ended_at else None,
        "ended_local": recording.ended_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        if recording and recording.ended_at
        else None,
        "runs": recording.runs if recording else 0,
        "legal_hold": recording.legal_hold if recording else False,
        "hold_reason": recording.hold_reason if recording else "",
        "manifest_sha256": recording.manifest_sha256 if recording else "",
        "events": [event_json(e, zone) for e in view.events],
        "files": [file_json(p) for p in view.files],
        "segments": {
            "count": segments.count,
            "bytes": segments.bytes,
            "stored": segments.stored,
            "tracks": [
                {
                    "track": t.track,
                    "identity": t.identity,
                    "name": t.name,
                    "seat": gettext(t.seat) if t.seat else "",
                    "source": t.source,
                    "source_label": gettext(SOURCE_LABELS.get(t.source, t.source)),
                    "kind": t.kind,
                    "segments": t.segments,
                    "bytes": t.bytes,
                    "start": t.start,
                    "end": t.end,
                }
                for t in segments.tracks
            ],
        },
        "lines": [
            {
                "id": line.id,
                "offset": line.offset,
                "end": line.end,
                "clock": clock(line.offset),
                "identity": line.identity,
                "name": line.name,
                "seat": gettext(line.seat) if line.seat else "",
                "text": line.text,
            }
            for line in view.lines
        ],
        "compose_job": job_json(view.compose_job, details=details) if view.compose_job else None,
    }


class EventOut(BaseModel):
    id: int
    kind: str = Field(description="started, paused, resumed, stopped, interrupted, joined, ...")
    label: str
    reason: str
    reason_label: str
    at: str
    at_local: str = Field(description="in the court's time zone")
    offset: float = Field(description="seconds from the recording's start")
    clock: str
    actor: str
    subject: str
    detail: dict[str, Any]
    mark: bool


class FileOut(BaseModel):
    id: int
    role: str = Field(description="composite or participant")
    identity: str
    name: str
    seat: str
    duration: float
    clock: str
    has_video: bool
    sha256: str
    size: int | None
    content_type: str | None
    document_id: int | None
    stored: bool = Field(description="in the object store (else still in the local spool)")
    media_url: str | None = Field(description="the bytes, with byte ranges")
    download_url: str | None


class TrackOut(BaseModel):
    track: str
    identity: str
    name: str
    seat: str
    source: str = Field(description="mic, camera or screen")
    source_label: str
    kind: str
    segments: int
    bytes: int
    start: float
    end: float


class SegmentsOut(BaseModel):
    count: int
    bytes: int
    stored: int
    tracks: list[TrackOut]


class SyncLineOut(BaseModel):
    id: int
    offset: float = Field(description="seconds from the recording's start")
    end: float
    clock: str
    identity: str
    name: str
    seat: str
    text: str


class RecordingOut(BaseModel):
    session_id: int
    dispute_id: int
    case_number: str
    state: str = Field(description="none, recording, paused, stopped or purged")
    playback: str = Field(description="none, in_progress, composing, not_composed, ready or purged")
    started_at: str | None
    started_local: str | None
    ended_at: str | None
    ended_local: str | None
    runs: int
    legal_hold: bool
    hold_reason: str
    manifest_sha256: str
    events: list[EventOut]
    files: list[FileOut]
    segments: SegmentsOut
    lines: list[SyncLineOut]
    compose_job: JobOut | None


class ComposeOut(BaseModel):
    job_id: int
    job: JobOut


async def _view(request: web.Request) -> tuple[RecordingView, dict[str, Any]]:
    caller = require_login(request)
    found = await recording_view.view(db(request), caller, path_id(request, "session_id"))
    zone = ZoneInfo(settings(request).timezone)
    return found, view_json(found, zone, details=jobs.sees_details(caller))


async def recording_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    found, data = await _view(request)
    facts = await room_service.facts(db(request), found.session_id, joinable=False)
    composite = found.composite
    return render(
        request,
        "recording.html",
        {
            "session": facts,
            "view": data,
            "current": file_json(composite) if composite else None,
            "timezone": settings(request).timezone,
            # the court's staff, once something recorded has stopped being recorded
            "may_compose": caller.role in recording_compose.COMPOSERS
            and found.segments.count > 0
            and found.playback not in ("none", "in_progress", "purged"),
            # the judge, the clerk and the court's administrator (set_hold checks the court)
            "may_hold": caller.role in recording_retention.HOLDERS
            and found.playback not in ("none", "purged"),
        },
    )


@documented(
    "A session's recording: state, timeline, playable files (each with its media URL and "
    "SHA-256), segments, the transcript lines on the recording's clock, the compose job",
    response=RecordingOut,
)
async def recording_api(request: web.Request) -> web.Response:
    _, data = await _view(request)
    return web.json_response(data)


@documented(
    "Make the recording's playable files again (a background job)",
    response=ComposeOut,
    status=202,
)
async def compose(request: web.Request) -> web.Response:
    caller = require_login(request)
    job = await recording_compose.request_compose(
        db(request), caller, path_id(request, "session_id")
    )
    request.app[RUNNER].wake_after_commit(db(request))
    return web.json_response(
        {"job_id": job.id, "job": job_json(job, details=jobs.sees_details(caller))}, status=202
    )


def media_type(content_type: str, has_video: bool) -> str:
    base = content_type.split(";")[0].strip().lower()
    for container in ("mp4", "webm"):
        if base.endswith(f"/{container}"):
            return f"{'video' if has_video else 'audio'}/{container}"
    return base


def _filename(found: MediaFile, extension: str) -> str:
    words = [found.case_number, gettext(N_("Recording")), str(found.recording.session_id)]
    if found.file.role != "composite" and found.file.name:
        words.append(found.file.name)
    name = "".join(c for c in " ".join(words) if c.isprintable() and c not in '\\/:*?"<>|')
    return f"{name.strip() or 'recording'}.{extension}"


def _disposition(found: MediaFile, content_type: str, *, download: bool) -> str:
    """RFC 6266 with an ASCII fallback and the full name in RFC 5987 form."""
    extension = content_type.rsplit("/", 1)[-1]
    fallback = f"recording-{found.recording.session_id}-{found.file.id}.{extension}"
    name = quote(_filename(found, extension), safe="")
    kind = "attachment" if download else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{name}"


def _unsatisfiable(size: int) -> web.Response:
    return web.json_response(
        {"error": {"code": "http_416", "message": gettext(NOT_IN_FILE)}},
        status=416,
        headers={"Content-Range": f"bytes */{size}"},
    )


async def _audit_access(
    request: web.Request,
    caller: Principal,
    found: MediaFile,
    action: str,
    byte_range: ByteRange | None,
) -> None:
    async with request.app[DATABASE].transaction(write=True) as session:
        await audit.append(
            session,
            AuditEntry(
                action=action,
                actor=caller.actor(),
                object_type="case_session",
                object_id=found.recording.session_id,
                dispute_id=found.recording.dispute_id,
                details={
                    "recording_id": found.recording.id,
                    "file_id": found.file.id,
                    "role": found.file.role,
                    "identity": found.file.identity,
                    "sha256": found.stored.sha256,
                    "range": request.headers.get("Range", ""),
                    "from_byte": byte_range.start if byte_range else 0,
                },
            ),
        )


@documented(
    "A playable file's bytes (single byte ranges: 206, or 416 past the end); a playback "
    "start and every download are audited",
    query={"download": "1: as an attachment named for the case and session"},
)
async def media(request: web.Request) -> web.StreamResponse:
    caller = require_login(request)
    found = await recording_view.media_file(db(request), caller, path_id(request))
    stored = found.stored
    await check_in_store(
        request,
        found.stored,
        found.recording.dispute_id,
        N_("The stored recording failed its integrity check; the court has been told."),
    )
    download = request.query.get("download", "").lower() in TRUE
    etag = f'"{stored.sha256}"'
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range != etag:
        header = None  # the file changed since the client's copy (it never does): send it all
    try:
        byte_range = requested_range(header, stored.size)
    except web.HTTPRequestRangeNotSatisfiable:
        return _unsatisfiable(stored.size)
    # what follows may take as long as the playback does: end the request's read
    # transaction now, so that no database connection waits on the client
    await db(request).commit()
    sending = request.method != "HEAD"
    if sending and download:
        await _audit_access(request, caller, found, "recording.downloaded", byte_range)
    elif sending and (byte_range is None or byte_range.start == 0):
        await _audit_access(request, caller, found, "recording.played", byte_range)
    content_type = media_type(stored.content_type, found.file.has_video)
    response = web.StreamResponse(status=206 if byte_range else 200)
    response.content_type = content_type
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = etag
    response.headers["Content-Disposition"] = _disposition(found, content_type, download=download)
    # the headers go out before the handler returns: set those the pipeline adds later
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.content_length = byte_range.length if byte_range else stored.size
    if byte_range:
        response.headers["Content-Range"] = (
            f"bytes {byte_range.start}-{byte_range.end}/{stored.size}"
        )
    await response.prepare(request)
    if sending:
        store, spool = request.app[STORE], request.app[SPOOL]
        try:
            async for chunk in open_bytes(store, spool, stored, byte_range):
                await response.write(chunk)
        except ConnectionResetError:
            return response  # the player let go (a seek, a pause, a closed page)
    await response.write_eof()
    return response


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/sessions/{session_id}/recording", recording_page, name="recording")
    r.add_get("/api/v1/sessions/{session_id}/recording", recording_api, name="api_recording")
    r.add_post(
        "/api/v1/sessions/{session_id}/recording/compose", compose, name="api_recording_compose"
    )
    r.add_get("/api/v1/recording-files/{id}/media", media, name="api_recording_media")
