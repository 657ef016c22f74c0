"""A recording's life in server/services/recordings.py, on SQLite and PostgreSQL: runs,
pauses, stops, and the interruption a restart finds from a stale heartbeat, each on the
timeline (in order, from the recording's zero) and in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from server.audit import SYSTEM
from server.config import Settings
from server.db.models import AuditEvent, RecordingEvent
from server.services import recordings
from tests.integration.test_storage_verify_recordings import Place, new_session, open_place

DISPUTE = 1


@pytest.fixture
async def place(settings: Settings) -> AsyncIterator[Place]:
    found = open_place(settings)
    try:
        yield found
    finally:
        await found.close()


async def timeline(place: Place, recording_id: int) -> list[tuple[str, str]]:
    async with place.database.transaction(write=False) as db:
        rows = await db.scalars(
            select(RecordingEvent)
            .where(RecordingEvent.recording_id == recording_id)
            .order_by(RecordingEvent.at, RecordingEvent.id)
        )
        return [(e.kind, e.reason) for e in rows]


async def test_a_recording_runs_pauses_stops_and_resumes(place: Place) -> None:
    session_id = await new_session(place, DISPUTE)
    async with place.database.transaction() as db:
        recording, run = await recordings.begin(
            db, session_id=session_id, dispute_id=DISPUTE, segment_seconds=20, stale_after=15
        )
        assert run == 1 and recording.state == "recording"
        await recordings.pause(db, recording, "recess", actor=SYSTEM, actor_name="褚法官")
        await recordings.pause(db, recording, "recess", actor=SYSTEM)  # already paused
        await recordings.resume(db, recording, actor=SYSTEM)
        assert await recordings.stop(db, recording, reason="empty")
        assert not await recordings.stop(db, recording)  # not live any more
        recording_id = recording.id
    # the room fills again: a second run, not a restart
    async with place.database.transaction() as db:
        again, run = await recordings.begin(
            db, session_id=session_id, dispute_id=DISPUTE, segment_seconds=20, stale_after=15
        )
        assert again.id == recording_id and run == 2 and again.ended_at is None
    assert await timeline(place, recording_id) == [
        ("started", ""),
        ("paused", "recess"),
        ("resumed", ""),
        ("stopped", "empty"),
        ("resumed", ""),
    ]
    async with place.database.transaction(write=False) as db:
        actions = [
            a.action
            for a in await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.like("recording.%"))
                .order_by(AuditEvent.id)
            )
        ]
    assert actions == [
        "recording.started",
        "recording.paused",
        "recording.resumed",
        "recording.stopped",
        "recording.resumed",
    ]


async def test_a_stale_heartbeat_is_an_interruption_and_the_next_run_a_restart(
    place: Place,
) -> None:
    session_id = await new_session(place, DISPUTE)
    began = datetime.now(UTC) - timedelta(minutes=2)
    async with place.database.transaction() as db:
        recording, _ = await recordings.begin(
            db,
            session_id=session_id,
            dispute_id=DISPUTE,
            segment_seconds=20,
            stale_after=15,
            now=began,
        )
        await recordings.heartbeat(db, recording.id, began + timedelta(seconds=30))
        recording_id = recording.id
    async with place.database.transaction() as db:  # a fresh one is left alone
        assert await recordings.sweep_interrupted(db, 15, now=began + timedelta(seconds=40)) == []
    async with place.database.transaction() as db:
        [found] = await recordings.sweep_interrupted(db, 15)
        assert found.id == recording_id and found.state == "stopped"
        assert found.ended_at == began + timedelta(seconds=30)  # at the last heartbeat
    async with place.database.transaction() as db:
        _, run = await recordings.begin(
            db, session_id=session_id, dispute_id=DISPUTE, segment_seconds=20, stale_after=15
        )
        assert run == 2
    events = await timeline(place, recording_id)
    assert events == [("started", ""), ("interrupted", "server_stopped"), ("resumed", "restart")]
    async with place.database.transaction(write=False) as db:
        offsets = [
            e.offset
            for e in await db.scalars(
                select(RecordingEvent).where(RecordingEvent.recording_id == recording_id)
            )
        ]
    assert sorted(offsets) == offsets and offsets[1] == 30.0
