"""Making a session's recording playable: the ``recording_compose`` background job.

When a recording stops for good the room queues the job (as the platform); the court's
staff on the dispute may ask for it again. The job

1. fetches every segment of the recording (from the store, or the spool until the upload
   outbox has sent it) into a folder of its own inside the spool, hashing as it goes: a
   segment whose size or SHA-256 differs from what was recorded fails the job, audited
   ``recording.integrity_failed`` naming the segment;
2. joins each participant's microphone and camera into one WebM without re-encoding
   (:func:`media.composite.participant_file`) and stores it as a write-once dispute
   document of kind ``recording`` with a :class:`RecordingFile` (role ``participant``);
3. makes the session composite (:func:`media.composite.composite`, re-encoded: a grid of
   the pictures with names, seats and the wall time, everyone's sound mixed) in the
   court's format (``YIZHAN_RECORDING_FORMAT``), stored the same way (role ``composite``);
4. audits ``recording.composed``.

Each stored file and the job's checkpoint are written in one transaction, so a job that
is resumed after a restart skips exactly the files already made and never stores one
twice; :class:`RecordingFile` is unique per recording, role and identity, and a new
composition points the existing row at the new document (the old document stays, as
every recording document does, until the recording's retention ends).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from media import composite as media
from server import audit
from server.audit import SYSTEM, Actor, AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.base import utcnow
from server.db.models import (
    CaseSession,
    Job,
    Recording,
    RecordingFile,
    RecordingSegment,
    StoredObject,
    User,
)
from server.domain.documents import DEFAULT_LIMITS, DocumentKind
from server.domain.errors import N_, Conflict, Forbidden, Invalid, NotFound
from server.domain.roles import Role
from server.i18n import DEFAULT_LOCALE, translate_in
from server.jobs import queue
from server.jobs.context import JobContext
from server.jobs.errors import JobFailed, RetryableError
from server.services.documents import copy_to, record_document
from storage.base import ObjectMissing, StorageError
from storage.sniff import HEAD_BYTES
from storage.spool import Spool, Spooled

log = logging.getLogger(__name__)

RECORDING_COMPOSE = "recording_compose"
PARTICIPANT, COMPOSITE = "participant", "composite"
WORKING = (queue.QUEUED, queue.RUNNING)
COMPOSERS = frozenset({Role.MEDIATOR, Role.JUDGE, Role.CLERK, Role.COURT_ADMIN})

FETCHING = N_("Fetching the recorded segments")
JOINING = N_("Joining each participant's tracks")
COMPOSING = N_("Composing the session recording")
STORING = N_("Storing the document")

NO_SUCH_RECORDING = N_("No such recording, or it is not yours to see.")
NO_RECORDING = N_("This session has no recording.")
NOTHING_RECORDED = N_("Nothing of this session was recorded, so there is nothing to compose.")
STILL_RECORDING = N_("The session is still being recorded; compose it once recording stops.")
GONE = N_("The recording is no longer there.")
DAMAGED = N_("The stored recording failed its integrity check; the court has been told.")
UNMAKEABLE = N_("The recording's files could not be made. The court's staff can see why.")
TOO_LARGE = N_("The document is too large to store.")
TITLE = N_("Recording")
SCREEN_OF = N_("Screen of %(name)s")

# shares of the job's progress
FETCHED_AT, JOINED_AT, COMPOSED_AT = 0.15, 0.35, 0.95


# -- asking for it -------------------------------------------------------------------------


async def _working_job(db: AsyncSession, session_id: int) -> Job | None:
    job: Job | None = await db.scalar(
        select(Job)
        .where(
            Job.kind == RECORDING_COMPOSE,
            Job.session_id == session_id,
            Job.state.in_(WORKING),
        )
        .order_by(Job.id.desc())
        .limit(1)
    )
    return job


async def _actor(db: AsyncSession, user_id: int | None) -> Actor:
    """The person as they are now, or the platform (no one, or an account since closed)."""
    user = await db.get(User, user_id) if user_id is not None else None
    if user is None or not user.active:
        return SYSTEM
    return Actor(id=user.id, role=user.role.value, name=user.name)


async def enqueue_compose(db: AsyncSession, recording: Recording, created_by: int | None) -> Job:
    """Queue the composition of ``recording`` in the caller's transaction (``created_by``
    None: the platform, when a recording stops); a composition already queued or running
    for its session is returned instead of a second one. Workers find the job when they
    next look (within the runner's poll interval)."""
    working = await _working_job(db, recording.session_id)
    if working is not None:
        return working
    return await queue.add(
        db,
        RECORDING_COMPOSE,
        {"recording_id": recording.id},
        dispute_id=recording.dispute_id,
        session_id=recording.session_id,
        created_by=await _actor(db, created_by),
    )


async def request_compose(db: AsyncSession, principal: Principal, session_id: int) -> Job:
    """The court's staff on the dispute ask for the recording's files to be made (again).

    Someone who may not see the session's dispute is told there is no such recording; a
    party or agent may not ask (Forbidden); a session without a recording, with nothing
    recorded, still being recorded or already purged is a Conflict. A composition already
    queued or running for the session is returned rather than queued twice (asking twice
    is harmless). Audited ``recording.compose_requested``."""
    session = await db.get(CaseSession, session_id)
    if session is None:
        raise NotFound(NO_SUCH_RECORDING).audited("access.denied", session_id=session_id)
    await access.dispute_for(db, principal, session.dispute_id)
    if principal.role not in COMPOSERS:
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", dispute_id=session.dispute_id, permission="recording.compose"
        )
    recording = await db.scalar(select(Recording).where(Recording.session_id == session_id))
    if recording is None:
        raise Conflict(NO_RECORDING)
    if recording.state == "purged":
        raise Conflict(GONE)
    if recording.state in ("recording", "paused"):
        raise Conflict(STILL_RECORDING)
    has_segment = await db.scalar(
        select(RecordingSegment.id).where(RecordingSegment.recording_id == recording.id).limit(1)
    )
    if has_segment is None:
        raise Conflict(NOTHING_RECORDED)
    working = await _working_job(db, session_id)
    job = working or await enqueue_compose(db, recording, principal.user_id)
    await audit.append(
        db,
        AuditEntry(
            action="recording.compose_requested",
            actor=principal.actor(),
            object_type="case_session",
            object_id=session_id,
            dispute_id=recording.dispute_id,
            details={"recording_id": recording.id, "job_id": job.id, "existing": bool(working)},
        ),
    )
    return job


# -- the job: what it reads ----------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    recording: Recording
    rows: list[tuple[RecordingSegment, StoredObject | None]]
    actor: Actor


async def _load(ctx: JobContext) -> Loaded:
    try:
        recording_id = int(ctx.params["recording_id"])
    except (KeyError, TypeError, ValueError):
        raise JobFailed(NO_RECORDING, f"bad parameters: {ctx.params!r}") from None
    async with ctx.database.transaction(write=False) as db:
        recording = await db.get(Recording, recording_id)
        if recording is None:
            raise JobFailed(NO_RECORDING, f"recording {recording_id} is gone")
        if recording.state == "purged":
            raise JobFailed(GONE, f"recording {recording_id} was purged")
        found = await db.execute(
            select(RecordingSegment, StoredObject)
            .outerjoin(StoredObject, StoredObject.id == RecordingSegment.object_id)
            .where(RecordingSegment.recording_id == recording_id)
            .order_by(RecordingSegment.start, RecordingSegment.run, RecordingSegment.id)
        )
        rows: list[tuple[RecordingSegment, StoredObject | None]] = list(found.tuples())
        actor = await _actor(db, ctx.created_by_id)
    if not rows:
        raise JobFailed(NOTHING_RECORDED, f"recording {recording_id} has no segments")
    return Loaded(recording, rows, actor)


async def _integrity_failed(
    ctx: JobContext, recording: Recording, segment: RecordingSegment, problem: str
) -> JobFailed:
    """Audit a segment that is not what was recorded (in a transaction of its own, so it
    stays when the job fails); the error to raise."""
    async with ctx.database.transaction() as db:
        await audit.append(
            db,
            AuditEntry(
                action="recording.integrity_failed",
                actor=SYSTEM,
                object_type="case_session",
                object_id=recording.session_id,
                dispute_id=recording.dispute_id,
                outcome="failed",
                details={
                    "recording_id": recording.id,
                    "segment_id": segment.id,
                    "track": segment.track,
                    "run": segment.run,
                    "index": segment.index,
                    "expected_sha256": segment.sha256,
                    "expected_size": segment.size,
                    "problem": problem,
                    "job_id": ctx.id,
                },
            ),
        )
    log.error("recording %s segment %s: %s", recording.id, segment.id, problem)
    return JobFailed(DAMAGED, f"segment {segment.id} ({segment.track} #{segment.index}): {problem}")


async def _fetch_one(
    ctx: JobContext,
    recording: Recording,
    segment: RecordingSegment,
    stored: StoredObject | None,
    path: Path,
) -> None:
    if stored is None:
        raise await _integrity_failed(ctx, recording, segment, "no stored object")
    try:
        size, got = await copy_to(ctx.store, ctx.spool, stored, path)
    except ObjectMissing:
        raise await _integrity_failed(ctx, recording, segment, f"{stored.key} is missing") from None
    except StorageError as exc:
        raise RetryableError(f"segment {segment.id} could not be read: {exc}") from exc
    if got != segment.sha256 or got != stored.sha256 or size != segment.size:
        problem = f"{stored.key}: {size} bytes with sha256 {got}"
        raise await _integrity_failed(ctx, recording, segment, problem)


async def _fetch(ctx: JobContext, loaded: Loaded, folder: Path) -> dict[int, Path]:
    report = ctx.span(0.0, FETCHED_AT, FETCHING)
    paths: dict[int, Path] = {}
    for done, (segment, stored) in enumerate(loaded.rows):
        path = folder / f"segment-{segment.id}.webm"
        await _fetch_one(ctx, loaded.recording, segment, stored, path)
        paths[segment.id] = path
        report((done + 1) / len(loaded.rows))
    return paths


# -- the job: who was recorded ---------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    identity: str
    name: str
    seat: str  # the msgid, as stored
    participant: media.Participant


def people(
    rows: Sequence[tuple[RecordingSegment, StoredObject | None]],
    paths: Mapping[int, Path],
    locale: str,
) -> list[Person]:
    """The participants in order of appearance, each with their tracks; the name and seat
    are the latest the segments give."""
    by_identity: dict[str, list[RecordingSegment]] = {}
    for segment, _ in rows:
        by_identity.setdefault(segment.identity, []).append(segment)
    found: list[Person] = []
    for identity, segments in by_identity.items():
        latest = max(segments, key=lambda s: (s.run, s.start))
        seat = translate_in(locale, latest.seat) if latest.seat else ""
        screen = translate_in(locale, SCREEN_OF, name=latest.name)
        tracks: dict[tuple[str, str, str], list[media.SegmentFile]] = {}
        for s in segments:
            file = media.SegmentFile(paths[s.id], s.start, s.end)
            tracks.setdefault((s.track, s.source, s.kind), []).append(file)
        participant = media.Participant(
            identity=identity,
            name=latest.name,
            seat=seat,
            tracks=tuple(
                media.Track(
                    source=source,
                    kind="video" if kind == "video" else "audio",
                    segments=tuple(files),
                    label=f"{screen}  {seat}".strip() if source == "screen" else "",
                )
                for (_, source, kind), files in tracks.items()
            ),
        )
        found.append(Person(identity, latest.name, latest.seat, participant))
    return found


def duration_of(recording: Recording, rows: Sequence[tuple[RecordingSegment, Any]]) -> float:
    """To the end of the last segment, or to the recording's end if that is later."""
    end = max(segment.end for segment, _ in rows)
    if recording.ended_at is not None:
        end = max(end, (recording.ended_at - recording.started_at).total_seconds())
    return round(max(end, 0.0), 3)


# -- the job: storing what it made ---------------------------------------------------------


def _spooled(path: Path) -> Spooled:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        handle.seek(0)
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return Spooled(path, size, digest.hexdigest(), head)


async def _checkpoint(db: AsyncSession, ctx: JobContext, **values: Any) -> None:
    """The job's checkpoint, in the caller's transaction: stored with the file it names."""
    saved = {**ctx.saved, **values}
    result = await db.execute(
        update(Job)
        .where(Job.id == ctx.id, Job.state == queue.RUNNING, Job.worker == ctx.worker)
        .values(result=queue.dumps(saved), heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise RetryableError(f"job {ctx.id} is no longer this worker's")


@dataclass(frozen=True)
class Made:
    """A made file to store and describe."""

    role: str
    identity: str
    name: str
    seat: str
    file: media.Made
    filename: str
    title: str


async def _keep(
    ctx: JobContext,
    loaded: Loaded,
    made: Made,
    key: str,
    after: Callable[[AsyncSession, dict[str, Any]], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Store one file, point its RecordingFile at it and checkpoint, all in one transaction
    (with ``after``'s writes)."""
    limit = DEFAULT_LIMITS[DocumentKind.RECORDING]
    spooled = await asyncio.to_thread(_spooled, made.file.path)
    if spooled.size > limit:
        raise JobFailed(TOO_LARGE, f"{made.filename}: {spooled.size} bytes")
    recording = loaded.recording
    try:
        async with ctx.database.transaction() as db:
            try:
                document, stored = await record_document(
                    db,
                    ctx.spool,
                    spooled,
                    actor=loaded.actor,
                    dispute_id=recording.dispute_id,
                    kind=DocumentKind.RECORDING,
                    filename=made.filename,
                    title=made.title,
                )
            except Invalid as exc:  # the file made is not a playable WebM or MP4
                raise JobFailed(UNMAKEABLE, f"{made.filename}: {exc.message}") from exc
            row = await db.scalar(
                select(RecordingFile).where(
                    RecordingFile.recording_id == recording.id,
                    RecordingFile.role == made.role,
                    RecordingFile.identity == made.identity,
                )
            )
            replaced = row.document_id if row is not None else None
            if row is None:
                row = RecordingFile(
                    recording_id=recording.id, role=made.role, identity=made.identity
                )
                db.add(row)
            row.name, row.seat = made.name[:200], made.seat[:64]
            row.document_id = document.id
            row.duration = round(made.file.duration, 3)
            row.has_video = made.file.has_video
            row.sha256 = stored.sha256
            row.created_at = utcnow()
            await db.flush()
            entry = {
                "file_id": row.id,
                "document_id": document.id,
                "sha256": stored.sha256,
                "size": stored.size,
                "identity": made.identity,
                "name": row.name,
                "duration": row.duration,
                "has_video": row.has_video,
                "replaced_document_id": replaced,
            }
            if after is not None:
                await after(db, entry)
            await _checkpoint(db, ctx, **_with(ctx.saved, key, made.identity, entry))
    except IntegrityError as exc:  # another composition wrote the same file meanwhile
        raise RetryableError(f"{made.filename} was written concurrently: {exc}") from exc
    ctx.saved.update(_with(ctx.saved, key, made.identity, entry))
    return entry


def _with(
    saved: Mapping[str, Any], key: str, identity: str, entry: dict[str, Any]
) -> dict[str, Any]:
    if key == COMPOSITE:
        return {COMPOSITE: entry}
    return {key: {**saved.get(key, {}), identity: entry}}


# -- the job -------------------------------------------------------------------------------


def _work_folder(spool: Spool, job_id: int) -> Path:
    """A new folder for this run inside the spool (where its files can be kept without a
    copy); an earlier run's, whose thread may still be writing, is removed."""
    for earlier in spool.folder.glob(f".compose-{job_id}-*"):
        shutil.rmtree(earlier, ignore_errors=True)
    folder = spool.folder / f".compose-{job_id}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def _safe(identity: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in identity)


async def _participants(
    ctx: JobContext, loaded: Loaded, persons: list[Person], folder: Path, locale: str
) -> list[dict[str, Any]]:
    report = ctx.span(FETCHED_AT, JOINED_AT, JOINING)
    title = translate_in(locale, TITLE)
    session_id = loaded.recording.session_id
    entries: list[dict[str, Any]] = []
    for done, person in enumerate(persons):
        finished = ctx.saved.get(PARTICIPANT, {}).get(person.identity)
        has_own = person.participant.segments("mic") or person.participant.segments("camera")
        if finished is None and has_own:
            out = folder / f"participant-{_safe(person.identity)}.webm"
            try:
                file = await asyncio.to_thread(media.participant_file, person.participant, out)
            except media.CompositeError as exc:
                raise JobFailed(UNMAKEABLE, str(exc)) from exc
            made = Made(
                PARTICIPANT,
                person.identity,
                person.name,
                person.seat,
                file,
                f"recording-{session_id}-{_safe(person.identity)}.webm",
                f"{title} {person.name}".strip(),
            )
            finished = await _keep(ctx, loaded, made, PARTICIPANT)
        if finished is not None:
            entries.append(finished)
        report((done + 1) / len(persons))
    return entries


async def _composite(
    ctx: JobContext, loaded: Loaded, persons: list[Person], folder: Path, locale: str
) -> dict[str, Any]:
    settings = ctx.settings
    file_format: media.Format = "webm" if settings.recording_format == "webm" else "mp4"
    out = folder / f"composite.{file_format}"
    recording = loaded.recording
    try:
        file = await media.composite(
            [p.participant for p in persons],
            out,
            duration=duration_of(recording, loaded.rows),
            started_at=recording.started_at,
            timezone=settings.timezone,
            file_format=file_format,
            progress=ctx.span(JOINED_AT, COMPOSED_AT, COMPOSING),
            work_folder=folder,
        )
    except media.CompositeError as exc:
        raise JobFailed(UNMAKEABLE, str(exc)) from exc
    ctx.progress(COMPOSED_AT, STORING)
    made = Made(
        COMPOSITE,
        "",
        "",
        "",
        file,
        f"recording-{recording.session_id}.{file_format}",
        translate_in(locale, TITLE),
    )

    async def audited(db: AsyncSession, entry: dict[str, Any]) -> None:
        await _audit_composed(db, ctx, loaded, entry)

    return await _keep(ctx, loaded, made, COMPOSITE, audited)


async def _audit_composed(
    db: AsyncSession, ctx: JobContext, loaded: Loaded, entry: Mapping[str, Any]
) -> None:
    recording = loaded.recording
    await audit.append(
        db,
        AuditEntry(
            action="recording.composed",
            actor=loaded.actor,
            object_type="case_session",
            object_id=recording.session_id,
            dispute_id=recording.dispute_id,
            details={
                "recording_id": recording.id,
                "job_id": ctx.id,
                "composite_document_id": entry["document_id"],
                "sha256": entry["sha256"],
                "duration": entry["duration"],
                "participant_files": len(ctx.saved.get(PARTICIPANT, {})),
            },
        ),
    )


def _result(composite: Mapping[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "composite_document_id": composite["document_id"],
        "composite_file_id": composite["file_id"],
        "sha256": composite["sha256"],
        "duration": composite["duration"],
        "files": files,
    }


async def compose(ctx: JobContext) -> dict[str, Any]:
    """The handler of ``recording_compose`` jobs (params: ``{"recording_id": id}``)."""
    if COMPOSITE not in ctx.saved:
        await _make(ctx)
    ctx.progress(1.0)
    return _result(ctx.saved[COMPOSITE], list(ctx.saved.get(PARTICIPANT, {}).values()))


async def _make(ctx: JobContext) -> None:
    locale = str(ctx.params.get("locale") or DEFAULT_LOCALE)
    ctx.progress(0.0, FETCHING)
    loaded = await _load(ctx)
    folder = await asyncio.to_thread(_work_folder, ctx.spool, ctx.id)
    try:
        paths = await _fetch(ctx, loaded, folder)
        persons = people(loaded.rows, paths, locale)
        await _participants(ctx, loaded, persons, folder, locale)
        await _composite(ctx, loaded, persons, folder, locale)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
