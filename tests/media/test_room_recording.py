"""Recording a hearing through the real rooms, on SQLite and PostgreSQL: aiortc peers
publish for about 20 s while the judge starts, adjourns (with a reason), resumes and
closes; every track is cut into WebM segments that reach the store with their hashes,
open with PyAV, and cover the time in session within a frame; the server decoded no
video; the timeline has every step; the manifest lists every segment."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import select

from server.config import Settings
from server.db.engine import Database
from server.db.models import (
    Document,
    Recording,
    RecordingEvent,
    RecordingFile,
    RecordingSegment,
    StoredObject,
)
from server.rooms.setup import ROOMS
from tests.media.peers import Participant, party_cookie, staff_cookie
from tests.media.test_hearing import ZHANG, hearing_session
from tests.support import Clients, make_settings

pytestmark = pytest.mark.timeout(180)

SEGMENT_SECONDS = 6
VIDEO_FRAME = 1 / 30  # the test peers send 30 frames a second


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url,
        YIZHAN_RECORDING_SEGMENT_SECONDS=str(SEGMENT_SECONDS),
        YIZHAN_RECORDING_HEARTBEAT_SECONDS="1",
    )


async def fetch(clients: Clients, statement: Any) -> list[Any]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            return list((await session.execute(statement)).all())
    finally:
        await db.dispose()


async def wait_until_stored(clients: Clients, recording_id: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        rows = await fetch(
            clients,
            select(StoredObject.status)
            .join(RecordingSegment, RecordingSegment.object_id == StoredObject.id)
            .where(RecordingSegment.recording_id == recording_id),
        )
        if rows and all(status == "stored" for (status,) in rows):
            return
        assert time.monotonic() < deadline, f"segments not stored: {rows}"
        await asyncio.sleep(0.3)


def object_path(settings: Settings, key: str) -> Path:
    return Path(settings.storage_url.removeprefix("file://")) / key


def opened(path: Path) -> tuple[str, int, float]:
    """Codec, packets and the span of the packets' times (plus one packet) of a file."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        times = sorted(
            float(p.pts * p.time_base)
            for p in container.demux(stream)
            if p.pts is not None and p.size
        )
    step = (times[-1] - times[0]) / max(1, len(times) - 1) if len(times) > 1 else 0.0
    return stream.codec_context.name, len(times), times[-1] - times[0] + step


async def test_a_hearing_is_recorded_in_segments_with_its_timeline(clients: Clients) -> None:
    session_id = await hearing_session(clients)
    judge, party = Participant(clients, "judge"), Participant(clients, "party")
    hub = clients.server.app[ROOMS]
    try:
        await judge.connect(await staff_cookie(clients, "faguan"))
        answer = await judge.join(session_id)
        assert answer["state"]["recording_state"] == "off"  # a hearing records once started
        await judge.publish()
        await party.connect(await party_cookie(clients, ZHANG))
        await party.join(session_id)
        await party.publish()
        await judge.must("room:admit", {"member_id": party.member_id})
        await judge.must("hearing:action", {"action": "start"})
        await party.wait_frames(judge.member_id, "camera", 10)
        assert judge.state["recording_state"] == "recording"
        assert party.state["recording_state"] == "recording"
        await asyncio.sleep(10)
        await judge.must("hearing:action", {"action": "pause", "reason": "recess"})
        await asyncio.sleep(0.5)
        assert party.state["recording_state"] == "paused"
        await asyncio.sleep(2.5)
        await judge.must("hearing:action", {"action": "resume"})
        await party.wait_frames(judge.member_id, "camera", 10)
        await asyncio.sleep(10)
        assert hub.sfu.stats()["video_decoded"] == 0
        await judge.must("hearing:action", {"action": "close"})
    finally:
        for person in (judge, party):
            await person.close()

    [(recording,)] = await fetch(
        clients, select(Recording).where(Recording.session_id == session_id)
    )
    assert recording.state == "stopped" and recording.ended_at is not None
    events = [
        row
        for (row,) in await fetch(
            clients,
            select(RecordingEvent)
            .where(RecordingEvent.recording_id == recording.id)
            .order_by(RecordingEvent.at, RecordingEvent.id),
        )
    ]
    kinds = [e.kind for e in events]
    assert [k for k in kinds if k in ("started", "paused", "resumed", "stopped")] == [
        "started",
        "paused",
        "resumed",
        "stopped",
    ], kinds
    paused = next(e for e in events if e.kind == "paused")
    assert paused.reason == "recess" and paused.actor == "褚法官"
    assert next(e for e in events if e.kind == "stopped").reason == "closed"
    offsets = {e.kind: e.offset for e in events if e.kind in ("paused", "resumed", "stopped")}
    in_session = [(0.0, offsets["paused"]), (offsets["resumed"], offsets["stopped"])]

    await wait_until_stored(clients, recording.id)
    rows = await fetch(
        clients,
        select(RecordingSegment, StoredObject)
        .join(StoredObject, StoredObject.id == RecordingSegment.object_id)
        .where(RecordingSegment.recording_id == recording.id)
        .order_by(RecordingSegment.track, RecordingSegment.index),
    )
    by_track: dict[str, list[RecordingSegment]] = defaultdict(list)
    for segment, stored in rows:
        path = object_path(clients.settings, stored.key)
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == segment.sha256 == stored.sha256
        assert len(data) == segment.size and stored.write_once
        codec, packets, span = opened(path)
        assert codec == ("vp8" if segment.kind == "video" else "opus")
        assert packets == segment.packets
        frame = VIDEO_FRAME if segment.kind == "video" else 0.02
        assert abs(span - (segment.end - segment.start)) <= frame + 1e-3, (segment.track, span)
        assert segment.end - segment.start <= SEGMENT_SECONDS + 3  # bounded (keyframe wait)
        by_track[segment.track].append(segment)

    # both members' microphone and camera, each cut into several segments
    assert len(by_track) == 4, sorted(by_track)
    identities = {s.identity for segments in by_track.values() for s in segments}
    assert len(identities) == 2
    for track, segments in by_track.items():
        assert len(segments) >= 3, (
            track,
            [(s.index, s.start, s.end) for s in segments],
            [(e.kind, e.offset, e.detail) for e in events],
        )
        frame = VIDEO_FRAME if segments[0].kind == "video" else 0.02
        for start, end in in_session:  # each stretch in session is covered without gaps
            inside = [s for s in segments if start - 0.5 <= s.start and s.end <= end + 0.5]
            assert inside, (track, start, end)
            for before, after in itertools.pairwise(inside):
                assert abs(after.start - before.end) <= frame + 0.01, (track, before, after)
            covered = inside[-1].end - inside[0].start
            # the first keyframe after a start or resume comes within about a second
            assert end - start - 1.5 <= covered <= end - start + frame, (track, covered)

    # the manifest lists every segment with its hash, and is itself stored with its hash
    [(manifest,)] = await fetch(
        clients, select(StoredObject).where(StoredObject.id == recording.manifest_object_id)
    )
    deadline = time.monotonic() + 20
    while not object_path(clients.settings, manifest.key).exists():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.3)
    data = object_path(clients.settings, manifest.key).read_bytes()
    assert hashlib.sha256(data).hexdigest() == recording.manifest_sha256
    listed = json.loads(data)
    assert listed["format"] == "yizhan-recording-manifest/1"
    assert {(s["track"], s["index"], s["sha256"]) for s in listed["segments"]} == {
        (s.track, s.index, s.sha256) for s, _ in rows
    }
    assert [e["kind"] for e in listed["events"]] == kinds

    # the composite, made by the job that the close queued: audio and video of the
    # session's length, its hash recorded
    deadline = time.monotonic() + 150
    while True:
        made = await fetch(
            clients,
            select(RecordingFile, StoredObject)
            .join(Document, Document.id == RecordingFile.document_id)
            .join(StoredObject, StoredObject.id == Document.object_id)
            .where(RecordingFile.recording_id == recording.id, RecordingFile.role == "composite"),
        )
        if made and made[0][1].status == "stored":
            break
        assert time.monotonic() < deadline, "no composite"
        await asyncio.sleep(1)
    [(composite, stored)] = made
    data = object_path(clients.settings, stored.key).read_bytes()
    assert hashlib.sha256(data).hexdigest() == composite.sha256 == stored.sha256
    length = (recording.ended_at - recording.started_at).total_seconds()
    with av.open(str(object_path(clients.settings, stored.key))) as container:
        assert container.streams.video and container.streams.audio
        seconds = float(container.duration or 0) / 1e6
    assert abs(seconds - length) <= 0.5, (seconds, length)
    assert abs(composite.duration - length) <= 0.5
    participants = [
        row
        for (row,) in await fetch(
            clients,
            select(RecordingFile).where(
                RecordingFile.recording_id == recording.id, RecordingFile.role == "participant"
            ),
        )
    ]
    assert len(participants) == 2 and all(p.has_video and p.sha256 for p in participants)
