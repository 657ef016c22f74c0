"""Recording live rooms: when a room records, its segments, timeline and heartbeat.

After every change of a room (``RoomHub.changed``), :meth:`RoomRecordings.sync` decides
whether the room records now: a recorded session, not ended, with someone present, and
for a hearing only while it is in session (a pause closes every open segment and is on
the timeline with its reason; the close stops the recording). Who is recorded is the
room model's rule (``Room.records``: the main room, a caucus only when its host turned
recording on). Each closed segment is moved into the spool and recorded with its hash;
the upload outbox takes it to the store. The room's joins, leaves and drops go on the
timeline; a recorder that stops beating (the process died) is found by the sweep and
its recording marked interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from media.recorder import RecordedSegment, RoomRecorder, track_name
from media.room_types import HearingState, Member, RoomEvent, RoomRefused
from server.audit import SYSTEM
from server.db.models import Recording, RecordingSegment
from server.jobs.setup import RUNNER
from server.services import recordings as service
from server.services.recording_compose import enqueue_compose

if TYPE_CHECKING:
    from server.rooms.live import LiveRoom, RoomHub

log = logging.getLogger(__name__)

# room events that go on the recording's timeline, and what they are called there
TIMELINE_KINDS = {
    "join": "joined",
    "leave": "left",
    "drop": "dropped",
    "drop_timeout": "left",
    "remove": "left",
}
STALE_BEATS = 3  # heartbeats missed before a recording counts as interrupted
# stops after which the playable files are made at once (not a server shutting down)
FINAL_REASONS = frozenset({"closed", "ended", "empty"})


@dataclass
class LiveRecording:
    """The recording of one live room in this process."""

    recording_id: int
    run: int
    started_at: datetime
    recorder: RoomRecorder = field(init=False)
    paused: bool = False
    heartbeat: asyncio.Task[None] | None = None
    writes: set[asyncio.Task[None]] = field(default_factory=set)


class RoomRecordings:
    """Starts, pauses and stops the recordings of the hub's rooms."""

    def __init__(self, hub: RoomHub) -> None:
        self.hub = hub
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def stale_after(self) -> float:
        return self.hub.settings.recording_heartbeat_seconds * STALE_BEATS

    # --- the rule -----------------------------------------------------------------

    @staticmethod
    def wanted(live: LiveRoom) -> bool:
        model = live.model
        if not live.facts.recording or model.ended or live.retired:
            return False
        if model.hearing_state is not None and model.hearing_state is not HearingState.IN_SESSION:
            return False
        return any(member.present for member in model.members())

    async def sync(self, live: LiveRoom, events: list[RoomEvent]) -> None:
        """Follow the room's state (its lock held): start, pause, resume or stop."""
        current = live.recording
        if self.wanted(live):
            if current is None:
                await self._start(live, events)
            elif current.paused:
                await self._resume(live, events)
        elif current is not None:
            if live.model.hearing_state is HearingState.PAUSED and not live.model.ended:
                if not current.paused:
                    await self._pause(live, events)
            else:
                await self.stop(live, reason=_closing_reason(live), events=events)
        if live.recording is not None:
            await self._timeline(live, events)

    def _actor(self, live: LiveRoom, events: list[RoomEvent], kind: str) -> tuple[str, str]:
        """The name of who did ``kind`` (a hearing action), and the reason they gave."""
        for event in events:
            if event.kind == kind:
                seat = live.seats.get(event.actor or "")
                return (seat.name if seat else "", str(event.detail.get("reason", "")))
        return ("", "")

    async def _start(self, live: LiveRoom, events: list[RoomEvent]) -> None:
        settings = self.hub.settings
        name, _ = self._actor(live, events, "hearing_start")
        async with self.hub.database.transaction() as db:
            recording, run = await service.begin(
                db,
                session_id=live.facts.session_id,
                dispute_id=live.facts.dispute_id,
                segment_seconds=settings.recording_segment_seconds,
                stale_after=self.stale_after,
                actor_name=name,
            )
            started_at = recording.started_at
            recording_id = recording.id
        folder = settings.data_dir / "recording" / f"s{live.facts.session_id}-r{run}"
        current = LiveRecording(recording_id, run, started_at)
        current.recorder = RoomRecorder(
            folder,
            live.model.records,
            lambda segment: self._segment_closed(live, current, segment),
            segment_seconds=settings.recording_segment_seconds,
            on_error=lambda member, source, error: self._failed(live, current, member, error),
        )
        current.heartbeat = asyncio.create_task(self._beat(current))
        live.recording = current
        live.media.attach_recorder(current.recorder)
        log.info("room %s: recording %d, run %d", live.key, recording_id, run)

    async def _pause(self, live: LiveRoom, events: list[RoomEvent]) -> None:
        current = live.recording
        assert current is not None
        name, reason = self._actor(live, events, "hearing_pause")
        current.paused = True
        await current.recorder.pause()
        async with self.hub.database.transaction() as db:
            recording = await db.get(Recording, current.recording_id)
            if recording is not None:
                await service.pause(db, recording, reason, actor=SYSTEM, actor_name=name)

    async def _resume(self, live: LiveRoom, events: list[RoomEvent]) -> None:
        current = live.recording
        assert current is not None
        name, _ = self._actor(live, events, "hearing_resume")
        async with self.hub.database.transaction() as db:
            recording = await db.get(Recording, current.recording_id)
            if recording is not None:
                await service.resume(db, recording, actor=SYSTEM, actor_name=name)
        current.paused = False
        current.recorder.resume()
        live.media.attach_recorder(current.recorder)

    async def stop(
        self, live: LiveRoom, *, reason: str = "", events: list[RoomEvent] | None = None
    ) -> None:
        """Stop the room's recording: close every segment, store them, write the manifest
        and ask for the playable files."""
        current, live.recording = live.recording, None
        if current is None:
            return
        name, _ = self._actor(live, events or [], "hearing_close")
        await live.media.detach_recorder()
        if current.heartbeat is not None:
            current.heartbeat.cancel()
        if current.writes:
            await asyncio.gather(*list(current.writes), return_exceptions=True)
        async with self.hub.database.transaction() as db:
            recording = await db.get(Recording, current.recording_id)
            if recording is None:
                return
            await service.stop(db, recording, reason=reason, actor_name=name)
            await service.write_manifest(db, self.hub.spool, recording)
            if reason in FINAL_REASONS:
                await self._compose(db, recording)
        self.hub.wake_outbox()

    async def _compose(self, db: AsyncSession, recording: Recording) -> None:
        if await db.scalar(
            select(RecordingSegment.id)
            .where(RecordingSegment.recording_id == recording.id)
            .limit(1)
        ):
            await enqueue_compose(db, recording, None)
            runner = self.hub.app.get(RUNNER)
            if runner is not None:
                runner.wake_after_commit(db)

    # --- segments, errors, heartbeat, timeline -----------------------------------------

    def _segment_closed(
        self, live: LiveRoom, current: LiveRecording, closed: RecordedSegment
    ) -> None:
        task = asyncio.create_task(self._store(live, current, closed))
        current.writes.add(task)
        task.add_done_callback(current.writes.discard)

    async def _store(self, live: LiveRoom, current: LiveRecording, closed: RecordedSegment) -> None:
        segment = closed.segment
        seat = live.seats.get(closed.member_id)
        member = _member(live, closed.member_id)
        identity = seat.identity if seat else (member.identity if member else closed.member_id)
        name = seat.name if seat else (member.name if member else "")
        seat_label = seat.seat if seat else (member.seat if member else "")
        key = service.segment_key(live.facts.dispute_id)
        spool = self.hub.spool
        try:
            await asyncio.to_thread(_move, segment.path, spool.path_for(key))
            origin = current.started_at.timestamp()
            async with self.hub.database.transaction() as db:
                recording = await db.get(Recording, current.recording_id)
                if recording is None:
                    return
                await service.add_segment(
                    db,
                    recording,
                    key=key,
                    run=current.run,
                    track=track_name(identity, closed.source),
                    identity=identity,
                    name=name,
                    seat=seat_label,
                    source=closed.source,
                    kind=segment.kind,
                    index=segment.index,
                    start=closed.wall_start - origin,
                    end=closed.wall_end - origin,
                    packets=segment.packets,
                    size=segment.size,
                    sha256=segment.sha256,
                )
        except Exception as error:
            log.exception("room %s: storing segment %s failed", live.key, segment.path.name)
            await self._error_event(current, name, error)
            return
        self.hub.wake_outbox()

    def _failed(
        self, live: LiveRoom, current: LiveRecording, member_id: str, error: Exception
    ) -> None:
        seat = live.seats.get(member_id)
        task = asyncio.create_task(self._error_event(current, seat.name if seat else "", error))
        current.writes.add(task)
        task.add_done_callback(current.writes.discard)

    async def _error_event(self, current: LiveRecording, subject: str, error: Exception) -> None:
        try:
            async with self.hub.database.transaction() as db:
                recording = await db.get(Recording, current.recording_id)
                if recording is not None:
                    await service.add_event(
                        db,
                        recording,
                        "recorder_error",
                        subject=subject,
                        detail={"error": f"{type(error).__name__}: {error}"[:300]},
                    )
        except Exception:
            log.exception("recording %d: could not log an error", current.recording_id)

    async def _beat(self, current: LiveRecording) -> None:
        every = self.hub.settings.recording_heartbeat_seconds
        while True:
            await asyncio.sleep(every)
            try:
                async with self.hub.database.transaction() as db:
                    await service.heartbeat(db, current.recording_id)
            except Exception:
                log.exception("recording %d: heartbeat failed", current.recording_id)

    async def _timeline(self, live: LiveRoom, events: list[RoomEvent]) -> None:
        current = live.recording
        entries: list[tuple[RoomEvent, str]] = []
        for event in events:
            kind = TIMELINE_KINDS.get(event.kind)
            if event.kind == "rejoin" and event.detail.get("after") == "reconnecting":
                kind = "reconnected"
            elif event.kind == "rejoin":
                kind = "joined"
            if kind is not None:
                entries.append((event, kind))
        if current is None or not entries:
            return
        async with self.hub.database.transaction() as db:
            recording = await db.get(Recording, current.recording_id)
            if recording is None:
                return
            for event, kind in entries:
                actor = live.seats.get(event.actor or "")
                subject = live.seats.get(event.subject or "")
                await service.add_event(
                    db,
                    recording,
                    kind,
                    at=event.at,
                    reason=event.kind if event.kind in ("drop_timeout", "remove") else "",
                    actor=actor.name if actor and event.actor != event.subject else "",
                    subject=subject.name if subject else "",
                )

    # --- interrupted recordings ------------------------------------------------------

    def start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        every = self.hub.settings.recording_heartbeat_seconds
        while True:
            try:
                async with self.hub.database.transaction() as db:
                    found = await service.sweep_interrupted(db, self.stale_after)
                    for recording in found:  # what was kept is made playable as it is
                        await service.write_manifest(db, self.hub.spool, recording)
                        await self._compose(db, recording)
                if found:
                    log.warning("recordings %s were interrupted", [r.id for r in found])
                    self.hub.wake_outbox()
            except Exception:
                log.exception("sweeping interrupted recordings failed")
            await asyncio.sleep(every)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None


def _closing_reason(live: LiveRoom) -> str:
    if live.model.hearing_state is HearingState.CLOSED:
        return "closed"
    if live.model.ended:
        return "ended"
    return "empty"


def _member(live: LiveRoom, member_id: str) -> Member | None:
    try:
        return live.model.member(member_id)
    except RoomRefused:
        return None


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
