"""Recordings of sessions (庭审录音录像): the one place a recording's state, its segments and
its timeline change, and where its manifest is made.

A recording starts when a recorded room first has someone to record (a hearing: when the
judge opens it), pauses with a reason (a hearing's recess), resumes, and stops when the
room ends or empties. Each start of the room's recorder is a *run*; a run that ends
without a stop (the process died) is found by its stale heartbeat and logged as an
interruption, so the timeline shows it. Every change is audited as well.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import SYSTEM, Actor, AuditEntry
from server.db.models import Recording, RecordingEvent, RecordingSegment, StoredObject
from server.domain.documents import DocumentKind
from server.domain.errors import N_, Conflict
from storage.keys import new_key
from storage.spool import Spool

MANIFEST_FORMAT = "yizhan-recording-manifest/1"
MANIFEST_KIND = "recording_manifest"

RECORDING, PAUSED, STOPPED, PURGED = "recording", "paused", "stopped", "purged"
LIVE_STATES = (RECORDING, PAUSED)
SERVER_STOPPED = "server_stopped"  # the reason of an interruption found after a restart
SERVER_SHUTDOWN = "server_shutdown"  # a stop because the server was shut down in order


def _offset(recording: Recording, at: datetime) -> float:
    return round((at - recording.started_at).total_seconds(), 3)


async def for_session(db: AsyncSession, session_id: int) -> Recording | None:
    recording: Recording | None = await db.scalar(
        select(Recording).where(Recording.session_id == session_id)
    )
    return recording


async def add_event(
    db: AsyncSession,
    recording: Recording,
    kind: str,
    *,
    at: datetime | None = None,
    reason: str = "",
    actor: str = "",
    subject: str = "",
    detail: dict[str, Any] | None = None,
) -> RecordingEvent:
    """One entry on the recording's timeline."""
    # what set the recording going (a join, the judge's start) is on its timeline at zero
    when = max(at or datetime.now(UTC), recording.started_at)
    event = RecordingEvent(
        recording_id=recording.id,
        at=when,
        offset=max(0.0, _offset(recording, when)),
        kind=kind,
        reason=reason[:64],
        actor=actor[:200],
        subject=subject[:200],
        detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
    )
    db.add(event)
    await db.flush()
    return event


async def _audit(
    db: AsyncSession, recording: Recording, action: str, actor: Actor, **details: Any
) -> None:
    await audit.append(
        db,
        AuditEntry(
            action=f"recording.{action}",
            actor=actor,
            object_type="case_session",
            object_id=recording.session_id,
            dispute_id=recording.dispute_id,
            details={"recording_id": recording.id, **details},
        ),
    )


async def _interrupt(db: AsyncSession, recording: Recording) -> None:
    """The run died without stopping: log an interruption at its last heartbeat."""
    at = recording.alive_at
    await add_event(db, recording, "interrupted", at=at, reason=SERVER_STOPPED)
    recording.state = STOPPED
    recording.ended_at = at
    await _audit(db, recording, "interrupted", SYSTEM, reason=SERVER_STOPPED, at=at.isoformat())


async def begin(
    db: AsyncSession,
    *,
    session_id: int,
    dispute_id: int,
    segment_seconds: float,
    stale_after: float,
    actor: Actor = SYSTEM,
    actor_name: str = "",
    now: datetime | None = None,
) -> tuple[Recording, int]:
    """Start recording a session, or take up its recording again; the run number."""
    now = now or datetime.now(UTC)
    recording = await for_session(db, session_id)
    if recording is None:
        recording = Recording(
            session_id=session_id,
            dispute_id=dispute_id,
            state=RECORDING,
            started_at=now,
            alive_at=now,
            runs=1,
            segment_seconds=segment_seconds,
        )
        db.add(recording)
        await db.flush()
        await add_event(db, recording, "started", at=now, actor=actor_name)
        await _audit(db, recording, "started", actor)
        return recording, 1
    if recording.state == PURGED:
        raise Conflict(N_("This session's recording was removed when its retention ended."))
    if recording.state in LIVE_STATES and recording.alive_at < now - timedelta(seconds=stale_after):
        await _interrupt(db, recording)
    last = await db.scalar(
        select(RecordingEvent)
        .where(RecordingEvent.recording_id == recording.id)
        .order_by(RecordingEvent.at.desc(), RecordingEvent.id.desc())
        .limit(1)
    )
    interrupted = last is not None and last.reason in (SERVER_STOPPED, SERVER_SHUTDOWN)
    recording.runs += 1
    recording.state = RECORDING
    recording.ended_at = None
    recording.alive_at = now
    recording.segment_seconds = segment_seconds
    reason = "restart" if interrupted else ""
    await add_event(db, recording, "resumed", at=now, reason=reason, actor=actor_name)
    await _audit(db, recording, "resumed", actor, reason=reason, run=recording.runs)
    return recording, recording.runs


async def pause(
    db: AsyncSession, recording: Recording, reason: str, *, actor: Actor, actor_name: str = ""
) -> None:
    if recording.state != RECORDING:
        return
    recording.state = PAUSED
    recording.alive_at = datetime.now(UTC)
    await add_event(db, recording, "paused", reason=reason, actor=actor_name)
    await _audit(db, recording, "paused", actor, reason=reason)


async def resume(
    db: AsyncSession, recording: Recording, *, actor: Actor, actor_name: str = ""
) -> None:
    if recording.state != PAUSED:
        return
    recording.state = RECORDING
    recording.alive_at = datetime.now(UTC)
    await add_event(db, recording, "resumed", actor=actor_name)
    await _audit(db, recording, "resumed", actor)


async def stop(
    db: AsyncSession,
    recording: Recording,
    *,
    reason: str = "",
    actor: Actor = SYSTEM,
    actor_name: str = "",
) -> bool:
    """Stop a live recording; False if it was not live."""
    if recording.state not in LIVE_STATES:
        return False
    now = datetime.now(UTC)
    recording.state = STOPPED
    recording.ended_at = now
    recording.alive_at = now
    await add_event(db, recording, "stopped", at=now, reason=reason, actor=actor_name)
    await _audit(db, recording, "stopped", actor, reason=reason)
    return True


async def heartbeat(db: AsyncSession, recording_id: int, now: datetime | None = None) -> None:
    await db.execute(
        update(Recording)
        .where(Recording.id == recording_id, Recording.state.in_(LIVE_STATES))
        .values(alive_at=now or datetime.now(UTC))
    )


async def sweep_interrupted(
    db: AsyncSession, stale_after: float, now: datetime | None = None
) -> list[Recording]:
    """Log an interruption for every live recording whose recorder stopped beating."""
    now = now or datetime.now(UTC)
    rows = await db.scalars(
        select(Recording).where(
            Recording.state.in_(LIVE_STATES),
            Recording.alive_at < now - timedelta(seconds=stale_after),
        )
    )
    found = list(rows)
    for recording in found:
        await _interrupt(db, recording)
    return found


async def add_segment(
    db: AsyncSession,
    recording: Recording,
    *,
    key: str,
    run: int,
    track: str,
    identity: str,
    name: str,
    seat: str,
    source: str,
    kind: str,
    index: int,
    start: float,
    end: float,
    packets: int,
    size: int,
    sha256: str,
) -> RecordingSegment:
    """Record a closed segment whose file is already in the spool under ``key``: the
    upload outbox takes it to the store (write-once)."""
    stored = StoredObject(
        key=key,
        kind=DocumentKind.RECORDING_SEGMENT.value,
        dispute_id=recording.dispute_id,
        size=size,
        sha256=sha256,
        content_type="audio/webm" if kind == "audio" else "video/webm",
        write_once=True,
        status="pending",
        next_attempt_at=datetime.now(UTC),
    )
    db.add(stored)
    await db.flush()
    segment = RecordingSegment(
        recording_id=recording.id,
        run=run,
        track=track,
        identity=identity,
        name=name[:200],
        seat=seat,
        source=source,
        kind=kind,
        index=index,
        start=round(start, 4),
        end=round(end, 4),
        packets=packets,
        size=size,
        sha256=sha256,
        object_id=stored.id,
    )
    db.add(segment)
    await db.flush()
    return segment


def segment_key(dispute_id: int) -> str:
    return new_key(DocumentKind.RECORDING_SEGMENT.value, dispute_id, "webm")


# --- the manifest ----------------------------------------------------------------------


async def build_manifest(db: AsyncSession, recording: Recording) -> dict[str, Any]:
    """Every segment with its hash and time range, and the timeline, as stored now."""
    rows = await db.execute(
        select(RecordingSegment, StoredObject.key)
        .join(StoredObject, StoredObject.id == RecordingSegment.object_id)
        .where(RecordingSegment.recording_id == recording.id)
        .order_by(RecordingSegment.run, RecordingSegment.track, RecordingSegment.index)
    )
    segments = [
        {
            "key": key,
            "sha256": s.sha256,
            "size": s.size,
            "track": s.track,
            "identity": s.identity,
            "name": s.name,
            "seat": s.seat,
            "source": s.source,
            "kind": s.kind,
            "run": s.run,
            "index": s.index,
            "start": s.start,
            "end": s.end,
            "packets": s.packets,
        }
        for s, key in rows
    ]
    events = await db.scalars(
        select(RecordingEvent)
        .where(RecordingEvent.recording_id == recording.id)
        .order_by(RecordingEvent.at, RecordingEvent.id)
    )
    return {
        "format": MANIFEST_FORMAT,
        "recording_id": recording.id,
        "session_id": recording.session_id,
        "dispute_id": recording.dispute_id,
        "started_at": recording.started_at.isoformat(),
        "ended_at": recording.ended_at.isoformat() if recording.ended_at else None,
        "segments": segments,
        "events": [
            {
                "at": e.at.isoformat(),
                "offset": e.offset,
                "kind": e.kind,
                "reason": e.reason,
                "actor": e.actor,
                "subject": e.subject,
            }
            for e in events
        ],
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


async def write_manifest(db: AsyncSession, spool: Spool, recording: Recording) -> StoredObject:
    """Store the manifest as it stands (write-once; a newer one replaces the pointer)."""
    data = manifest_bytes(await build_manifest(db, recording))
    key = new_key(MANIFEST_KIND, recording.dispute_id, "json")
    await spool.put_bytes(key, data)
    stored = StoredObject(
        key=key,
        kind=MANIFEST_KIND,
        dispute_id=recording.dispute_id,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="application/json",
        write_once=True,
        status="pending",
        next_attempt_at=datetime.now(UTC),
    )
    db.add(stored)
    await db.flush()
    recording.manifest_object_id = stored.id
    recording.manifest_sha256 = stored.sha256
    await _audit(db, recording, "manifest_written", SYSTEM, sha256=stored.sha256, key=key)
    return stored
