"""How long recordings are kept, the legal hold that keeps one anyway, and the purge job.

A stopped recording is kept for ``YIZHAN_RECORDING_RETENTION_DAYS`` of its dispute's type
(``default`` for the other types; 0 keeps it for ever) after it ended. The judge, the
clerk or the court's administrator may place a legal hold on it (with a reason): a held
recording is never purged. The ``recording_purge`` job removes the media of every
expired recording from the store: its segments and the files made from them. What
existed stays on the record: the manifest, the rows of the segments and files, and the
stored-object rows (marked ``deleted``). A store that refuses a delete (object lock)
leaves that recording as it is, audited, and the job goes on with the others. The job
queues its own next run, ``YIZHAN_RECORDING_PURGE_HOURS`` later.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import SYSTEM, AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.config import Settings
from server.db.engine import Database
from server.db.models import (
    CaseSession,
    Dispute,
    Document,
    Job,
    Recording,
    RecordingFile,
    RecordingSegment,
    StoredObject,
)
from server.domain.errors import N_, Conflict, Forbidden, Invalid, NotFound
from server.domain.roles import Role
from server.jobs import queue
from server.jobs.context import JobContext
from server.services.recordings import PURGED, STOPPED, add_event
from storage.base import ObjectMissing, ObjectStore, StorageError
from storage.spool import Spool

log = logging.getLogger(__name__)

RECORDING_PURGE = "recording_purge"
DELETED = "deleted"  # StoredObject.status of an object removed by the purge
DEFAULT_RETENTION_DAYS = 3650  # when the table has no "default"
MAX_REASON = 1000
PURGE_LOCK_KEY = 0x59_5A_52_50  # "YZRP": one scheduler at a time on PostgreSQL

HOLDERS = frozenset({Role.JUDGE, Role.CLERK, Role.COURT_ADMIN})

SEARCHING = N_("Looking for recordings past their retention")
PURGING = N_("Removing expired recordings")
NOT_A_HOLDER = N_("Only the judge, the clerk or the court's administrator may change a legal hold.")
NO_RECORDING = N_("This session has no recording.")
REASON_NEEDED = N_("Give the reason for the legal hold.")
TOO_LONG = N_("Enter at most %(max)s characters.")
NO_SESSION = N_("No such session, or it is not yours to join.")
PURGED_ALREADY = N_("This session's recording was removed when its retention ended.")


# --- retention ---------------------------------------------------------------------------


def retention_days(settings: Settings, dispute_type: str) -> int:
    """Days a recording of a dispute of this type is kept after it ended; 0 = for ever."""
    table = settings.recording_retention_days
    return int(table.get(dispute_type, table.get("default", DEFAULT_RETENTION_DAYS)))


def _past_retention(settings: Settings, now: datetime) -> ColumnElement[bool]:
    """A WHERE clause: the recording ended longer ago than its dispute type keeps it."""
    table = dict(settings.recording_retention_days)
    default = int(table.pop("default", DEFAULT_RETENTION_DAYS))
    ended = Recording.ended_at
    clauses = [
        and_(Dispute.dispute_type == kind, ended <= now - timedelta(days=days))
        for kind, days in table.items()
        if days > 0
    ]
    if default > 0:
        clauses.append(
            and_(Dispute.dispute_type.not_in(list(table)), ended <= now - timedelta(days=default))
        )
    return or_(*clauses) if clauses else false()


async def expired(db: AsyncSession, settings: Settings, now: datetime) -> list[Recording]:
    """Stopped recordings past their retention, not under a legal hold, oldest first."""
    rows = await db.scalars(
        select(Recording)
        .join(Dispute, Dispute.id == Recording.dispute_id)
        .where(
            Recording.state == STOPPED,
            Recording.ended_at.is_not(None),
            Recording.legal_hold.is_(False),
            _past_retention(settings, now),
        )
        .order_by(Recording.ended_at, Recording.id)
    )
    return list(rows)


# --- the legal hold ---------------------------------------------------------------------


async def set_hold(
    db: AsyncSession, principal: Principal, session_id: int, hold: bool, reason: str
) -> Recording:
    """Place (``hold``) or lift the legal hold on the session's recording, audited."""
    case_session = await db.get(CaseSession, session_id)
    if case_session is None:
        raise NotFound(NO_SESSION)
    dispute = await access.dispute_for(db, principal, case_session.dispute_id)
    if principal.role not in HOLDERS or principal.court_id != dispute.court_id:
        raise Forbidden(NOT_A_HOLDER).audited(
            "access.denied",
            dispute_id=dispute.id,
            session_id=session_id,
            permission="recording.hold",
        )
    reason = reason.strip()
    if hold and not reason:
        raise Invalid(REASON_NEEDED, field="reason")
    if len(reason) > MAX_REASON:
        raise Invalid(TOO_LONG, field="reason", max=MAX_REASON)
    recording = await db.scalar(
        select(Recording).where(Recording.session_id == session_id).with_for_update()
    )
    if recording is None:
        raise NotFound(NO_RECORDING)
    if recording.state == PURGED:
        raise Conflict(PURGED_ALREADY)
    if recording.legal_hold == hold and (not hold or recording.hold_reason == reason):
        return recording  # nothing changes
    previous = recording.hold_reason if recording.legal_hold else ""
    recording.legal_hold = hold
    recording.hold_reason = reason if hold else ""
    kind = "held" if hold else "released"
    await add_event(
        db, recording, kind, actor=principal.name, detail={"reason": reason} if reason else None
    )
    details: dict[str, Any] = {"recording_id": recording.id, "reason": reason}
    if previous:
        details["previous_reason"] = previous
    await audit.append(
        db,
        AuditEntry(
            action=f"recording.{kind}",
            actor=principal.actor(),
            object_type="case_session",
            object_id=session_id,
            dispute_id=recording.dispute_id,
            details=details,
        ),
    )
    await db.flush()
    return recording


# --- the purge --------------------------------------------------------------------------


@dataclass
class PurgeOutcome:
    """What became of one recording: purged, failed (the store refused) or skipped."""

    recording_id: int
    result: str
    segments: int = 0
    files: int = 0
    bytes: int = 0
    reason: str = ""


@dataclass
class PurgeSummary:
    outcomes: list[PurgeOutcome] = field(default_factory=list)

    def ids(self, result: str) -> list[int]:
        return [o.recording_id for o in self.outcomes if o.result == result]

    def as_result(self) -> dict[str, Any]:
        return {
            "purged": self.ids("purged"),
            "failed": self.ids("failed"),
            "skipped": self.ids("skipped"),
            "bytes": sum(o.bytes for o in self.outcomes if o.result == "purged"),
        }


async def _media(db: AsyncSession, recording_id: int) -> tuple[list[StoredObject], int]:
    """The recording's media objects not yet removed (segments first); how many segments."""
    live = StoredObject.status != DELETED
    segments = list(
        await db.scalars(
            select(StoredObject)
            .join(RecordingSegment, RecordingSegment.object_id == StoredObject.id)
            .where(RecordingSegment.recording_id == recording_id, live)
            .order_by(RecordingSegment.run, RecordingSegment.track, RecordingSegment.index)
        )
    )
    files = list(
        await db.scalars(
            select(StoredObject)
            .join(Document, Document.object_id == StoredObject.id)
            .join(RecordingFile, RecordingFile.document_id == Document.id)
            .where(RecordingFile.recording_id == recording_id, live)
            .order_by(RecordingFile.id)
        )
    )
    return segments + files, len(segments)


async def _remove(store: ObjectStore, spool: Spool, stored: StoredObject) -> None:
    """Delete the object from the store (and the spool while it waits there); an object
    already gone counts as removed, so a purge cut short can run again."""
    with contextlib.suppress(ObjectMissing):
        await store.delete(stored.key)  # a pending upload may have reached it meanwhile
    if stored.status != "stored":
        await Spool.discard(spool.path_for(stored.key))


async def purge_recording(
    database: Database,
    store: ObjectStore,
    spool: Spool,
    settings: Settings,
    recording_id: int,
    now: datetime,
) -> PurgeOutcome:
    """Remove one expired recording's media, in one transaction that holds the recording's
    row: a hold placed meanwhile is seen here, and wins."""
    async with database.transaction() as db:
        recording = await db.get(
            Recording, recording_id, with_for_update=True, populate_existing=True
        )
        if recording is None or recording.state != STOPPED or recording.legal_hold:
            return PurgeOutcome(recording_id, "skipped")
        dispute_type = await db.scalar(
            select(Dispute.dispute_type).where(Dispute.id == recording.dispute_id)
        )
        days = retention_days(settings, dispute_type or "")
        ended = recording.ended_at
        if days <= 0 or ended is None or ended + timedelta(days=days) > now:
            return PurgeOutcome(recording_id, "skipped")
        objects, segment_count = await _media(db, recording_id)
        outcome = PurgeOutcome(recording_id, "purged")
        for number, stored in enumerate(objects):
            try:
                await _remove(store, spool, stored)
            except StorageError as exc:
                outcome.result = "failed"
                outcome.reason = f"{stored.key}: {exc}"[:1000]
                break
            stored.status = DELETED
            stored.next_attempt_at = None
            if number < segment_count:
                outcome.segments += 1
            else:
                outcome.files += 1
            outcome.bytes += stored.size
        details: dict[str, Any] = {
            "recording_id": recording.id,
            "segments": outcome.segments,
            "files": outcome.files,
            "bytes": outcome.bytes,
            "retention_days": days,
            "ended_at": ended,
        }
        if outcome.result == "failed":
            log.warning("recording %s could not be purged: %s", recording.id, outcome.reason)
            await _audit(db, recording, "purge_failed", {**details, "reason": outcome.reason})
            return outcome
        recording.state = PURGED
        recording.purged_at = datetime.now(UTC)
        await add_event(
            db,
            recording,
            "purged",
            reason="retention",
            detail={k: v for k, v in details.items() if k != "ended_at"},
        )
        await _audit(
            db, recording, "purged", {**details, "manifest_sha256": recording.manifest_sha256}
        )
        log.info(
            "recording %s purged: %s segments, %s files, %s bytes",
            recording.id,
            outcome.segments,
            outcome.files,
            outcome.bytes,
        )
        return outcome


async def _audit(
    db: AsyncSession, recording: Recording, action: str, details: dict[str, Any]
) -> None:
    await audit.append(
        db,
        AuditEntry(
            action=f"recording.{action}",
            actor=SYSTEM,
            object_type="case_session",
            object_id=recording.session_id,
            dispute_id=recording.dispute_id,
            outcome="failed" if action == "purge_failed" else "ok",
            details=details,
        ),
    )


# --- scheduling -------------------------------------------------------------------------


async def _lock_scheduling(db: AsyncSession) -> None:
    """Two processes starting together must not both queue a purge (on SQLite the writing
    transaction already holds the file lock)."""
    if db.bind.dialect.name == "postgresql":
        await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PURGE_LOCK_KEY})


async def _waiting(db: AsyncSession, states: tuple[str, ...], besides: int | None) -> bool:
    query = select(Job.id).where(Job.kind == RECORDING_PURGE, Job.state.in_(states))
    if besides is not None:
        query = query.where(Job.id != besides)
    return await db.scalar(query.limit(1)) is not None


async def _queue(db: AsyncSession, not_before: datetime | None) -> Job:
    job = await queue.add(db, RECORDING_PURGE, {})
    job.not_before = not_before
    await db.flush()
    return job


async def ensure_purge_scheduled(
    db: AsyncSession, settings: Settings, *, due: datetime | None = None
) -> None:
    """Queue a purge (due at ``due``, or now) unless one is already queued or running.
    The app calls it at start-up with a due time one interval on: the queued job outlives
    restarts, so a server restarted more often than that still purges on time."""
    await _lock_scheduling(db)
    if not await _waiting(db, (queue.QUEUED, queue.RUNNING), None):
        await _queue(db, due)


async def schedule_next(
    db: AsyncSession, settings: Settings, now: datetime, *, besides: int | None = None
) -> Job | None:
    """Queue the next purge ``recording_purge_hours`` from ``now`` unless one is queued."""
    await _lock_scheduling(db)
    if await _waiting(db, (queue.QUEUED,), besides):
        return None
    return await _queue(db, now + timedelta(hours=settings.recording_purge_hours))


async def _purge_expired(ctx: JobContext, summary: PurgeSummary) -> None:
    ctx.progress(0.01, SEARCHING)
    now = datetime.now(UTC)
    async with ctx.database.transaction(write=False) as db:
        ids = [r.id for r in await expired(db, ctx.settings, now)]
    for done, recording_id in enumerate(ids, start=1):
        summary.outcomes.append(
            await purge_recording(
                ctx.database, ctx.store, ctx.spool, ctx.settings, recording_id, now
            )
        )
        ctx.progress(0.05 + 0.9 * done / len(ids), PURGING)


async def purge(ctx: JobContext) -> dict[str, Any]:
    """The job: purge every expired recording, then queue the next run."""
    summary = PurgeSummary()
    try:
        await _purge_expired(ctx, summary)
    except Exception:
        # a failed run must not end the chain of runs
        try:
            async with ctx.database.transaction() as db:
                await schedule_next(db, ctx.settings, datetime.now(UTC), besides=ctx.id)
        except Exception:
            log.exception("the next recording purge could not be queued")
        raise
    async with ctx.database.transaction() as db:
        next_job = await schedule_next(db, ctx.settings, datetime.now(UTC), besides=ctx.id)
    ctx.progress(1.0)
    result = summary.as_result()
    result["next_job_id"] = next_job.id if next_job is not None else None
    return result
