"""Playing a session's recording back: what the playback page and its API show (the
recording's state and timeline, its playable files with their documents, a summary of
its segments, the compose job) and the transcript lines placed on the recording's clock.

Everyone who may see the dispute may play its recording (``DocumentKind.RECORDING`` is
readable by everyone on it); anyone else is told that there is no such recording, in
the same words whether the session exists or not, and the attempt is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import access
from server.auth.principal import Principal
from server.db.models import (
    CaseSession,
    Dispute,
    Document,
    Job,
    Recording,
    RecordingEvent,
    RecordingFile,
    RecordingSegment,
    StoredObject,
)
from server.domain.documents import DocumentKind, may_read
from server.domain.errors import N_, Gone, NotFound
from server.domain.roles import Permission
from server.services.transcripts import session_lines

NO_RECORDING = N_("No such recording, or it is not yours to see.")
RECORDING_GONE = N_("The recording is no longer there.")
COMPOSE_JOB = "recording_compose"
LIVE_STATES = ("recording", "paused")
PURGED = "purged"
WORKING_JOB_STATES = ("queued", "running")


@dataclass(frozen=True)
class PlayableFile:
    """A composite or participant file; ``document``/``stored`` are None once removed."""

    file: RecordingFile
    document: Document | None
    stored: StoredObject | None


@dataclass(frozen=True)
class TrackSummary:
    track: str
    identity: str
    name: str
    seat: str  # msgid
    source: str
    kind: str
    segments: int
    bytes: int
    start: float
    end: float


@dataclass(frozen=True)
class SegmentsSummary:
    count: int = 0
    bytes: int = 0
    stored: int = 0  # how many have reached the object store (the rest wait in the spool)
    tracks: list[TrackSummary] = field(default_factory=list)


@dataclass(frozen=True)
class SyncLine:
    """A transcript line placed on the recording's clock (seconds from its start)."""

    id: int
    offset: float
    end: float
    identity: str
    name: str
    seat: str  # msgid
    text: str


@dataclass(frozen=True)
class RecordingView:
    session_id: int
    dispute_id: int
    case_number: str
    recording: Recording | None
    events: list[RecordingEvent]
    files: list[PlayableFile]
    segments: SegmentsSummary
    lines: list[SyncLine]
    compose_job: Job | None

    @property
    def playback(self) -> str:
        """What the page can offer: none, in_progress, purged, ready, composing or
        not_composed (stopped, and no playable file made yet)."""
        if self.recording is None:
            return "none"
        if self.recording.state in LIVE_STATES:
            return "in_progress"
        if self.recording.state == PURGED:
            return PURGED
        if any(f.stored is not None for f in self.files):
            return "ready"
        if self.composing:
            return "composing"
        return "not_composed"

    @property
    def composing(self) -> bool:
        return self.compose_job is not None and self.compose_job.state in WORKING_JOB_STATES

    @property
    def composite(self) -> PlayableFile | None:
        for playable in self.files:
            if playable.file.role == "composite" and playable.stored is not None:
                return playable
        return next((p for p in self.files if p.stored is not None), None)


@dataclass(frozen=True)
class MediaFile:
    """One playable file's bytes, checked for the caller."""

    file: RecordingFile
    recording: Recording
    document: Document
    stored: StoredObject
    case_number: str


async def _visible_session(db: AsyncSession, principal: Principal, session_id: int) -> Dispute:
    """The session's dispute if the caller may play its recording; else NotFound."""
    case_session = await db.get(CaseSession, session_id)
    if case_session is None:
        raise NotFound(NO_RECORDING).audited("access.denied", session_id=session_id)
    try:
        dispute = await access.dispute_for(
            db, principal, case_session.dispute_id, Permission.VIEW_DISPUTE
        )
    except NotFound:
        raise NotFound(NO_RECORDING).audited(
            "access.denied", dispute_id=case_session.dispute_id, session_id=session_id
        ) from None
    if not may_read(principal.role, DocumentKind.RECORDING):
        raise NotFound(NO_RECORDING).audited(
            "access.denied", dispute_id=case_session.dispute_id, session_id=session_id
        )
    return dispute


async def _files(db: AsyncSession, recording_id: int) -> list[PlayableFile]:
    rows = await db.execute(
        select(RecordingFile, Document, StoredObject)
        .outerjoin(Document, Document.id == RecordingFile.document_id)
        .outerjoin(StoredObject, StoredObject.id == Document.object_id)
        .where(RecordingFile.recording_id == recording_id)
        .order_by(RecordingFile.role, RecordingFile.name, RecordingFile.id)
    )
    found = [PlayableFile(f, d, s) for f, d, s in rows.tuples()]
    # the composite first, then each participant by name
    return sorted(found, key=lambda p: p.file.role != "composite")


async def _segments(db: AsyncSession, recording_id: int) -> SegmentsSummary:
    per_track = await db.execute(
        select(
            RecordingSegment.track,
            RecordingSegment.identity,
            RecordingSegment.source,
            RecordingSegment.kind,
            func.max(RecordingSegment.name),
            func.max(RecordingSegment.seat),
            func.count(),
            func.coalesce(func.sum(RecordingSegment.size), 0),
            func.min(RecordingSegment.start),
            func.max(RecordingSegment.end),
        )
        .where(RecordingSegment.recording_id == recording_id)
        .group_by(
            RecordingSegment.track,
            RecordingSegment.identity,
            RecordingSegment.source,
            RecordingSegment.kind,
        )
        .order_by(RecordingSegment.track)
    )
    tracks = [
        TrackSummary(
            track=track,
            identity=identity,
            name=name or "",
            seat=seat or "",
            source=source,
            kind=kind,
            segments=int(count),
            bytes=int(size),
            start=float(start or 0.0),
            end=float(end or 0.0),
        )
        for track, identity, source, kind, name, seat, count, size, start, end in per_track
    ]
    stored = await db.scalar(
        select(func.count())
        .select_from(RecordingSegment)
        .join(StoredObject, StoredObject.id == RecordingSegment.object_id)
        .where(RecordingSegment.recording_id == recording_id, StoredObject.status == "stored")
    )
    return SegmentsSummary(
        count=sum(t.segments for t in tracks),
        bytes=sum(t.bytes for t in tracks),
        stored=int(stored or 0),
        tracks=tracks,
    )


async def _sync_lines(db: AsyncSession, session_id: int, recording: Recording) -> list[SyncLine]:
    lines = []
    for line in await session_lines(db, session_id):
        shift = (line.clock_start - recording.started_at).total_seconds()
        lines.append(
            SyncLine(
                id=line.id,
                offset=round(shift + line.start, 3),
                end=round(shift + line.end, 3),
                identity=line.identity,
                name=line.name,
                seat=line.seat,
                text=line.text,
            )
        )
    return sorted(lines, key=lambda line: (line.offset, line.id))


async def latest_compose_job(db: AsyncSession, session_id: int) -> Job | None:
    job: Job | None = await db.scalar(
        select(Job)
        .where(Job.session_id == session_id, Job.kind == COMPOSE_JOB)
        .order_by(Job.id.desc())
        .limit(1)
    )
    return job


async def view(db: AsyncSession, principal: Principal, session_id: int) -> RecordingView:
    """Everything the playback page shows of a session's recording (or that it has none)."""
    dispute = await _visible_session(db, principal, session_id)
    recording: Recording | None = await db.scalar(
        select(Recording).where(Recording.session_id == session_id)
    )
    job = await latest_compose_job(db, session_id)
    if recording is None:
        return RecordingView(
            session_id, dispute.id, dispute.number, None, [], [], SegmentsSummary(), [], job
        )
    events = await db.scalars(
        select(RecordingEvent)
        .where(RecordingEvent.recording_id == recording.id)
        .order_by(RecordingEvent.at, RecordingEvent.id)
    )
    purged = recording.state == PURGED
    return RecordingView(
        session_id=session_id,
        dispute_id=dispute.id,
        case_number=dispute.number,
        recording=recording,
        events=list(events),
        files=[] if purged else await _files(db, recording.id),
        segments=await _segments(db, recording.id),
        lines=await _sync_lines(db, session_id, recording),
        compose_job=job,
    )


async def media_file(db: AsyncSession, principal: Principal, file_id: int) -> MediaFile:
    """A playable file the caller may play or download; NotFound (or Gone once the
    recording's media has been removed) otherwise."""
    row = (
        await db.execute(
            select(RecordingFile, Recording)
            .join(Recording, Recording.id == RecordingFile.recording_id)
            .where(RecordingFile.id == file_id)
        )
    ).first()
    if row is None:
        raise NotFound(NO_RECORDING).audited("access.denied", recording_file_id=file_id)
    recording_file, recording = row
    dispute = await _visible_session(db, principal, recording.session_id)
    found = (
        await db.execute(
            select(Document, StoredObject)
            .join(StoredObject, StoredObject.id == Document.object_id)
            .where(Document.id == recording_file.document_id)
        )
    ).first()
    if recording.state == PURGED or found is None:
        raise Gone(RECORDING_GONE)
    document, stored = found
    if document.kind != DocumentKind.RECORDING.value or document.dispute_id != dispute.id:
        raise NotFound(NO_RECORDING).audited(
            "access.denied", dispute_id=dispute.id, recording_file_id=file_id
        )
    return MediaFile(recording_file, recording, document, stored, dispute.number)
