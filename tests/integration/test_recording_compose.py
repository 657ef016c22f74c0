"""Making a session's recording playable, on both databases: real WebM segments (written
by the recorder's SegmentWriter, kept in the spool and sent to the store by the upload
outbox like every segment) are composed by the ``recording_compose`` job run by the real
job runner. The composite and one file per participant become write-once documents with
their SHA-256 and RecordingFile rows, audited; a segment whose stored bytes changed fails
the job with an integrity audit row naming it; a job stopped after the first participant
resumes without making any file twice; only the court's staff on the dispute may ask
for a composition, and only of a session that has recorded something."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import select

from media import composite as media
from media.recording import ClosedSegment, SegmentWriter
from server.auth.principal import Principal
from server.config import Settings
from server.db.engine import Database
from server.db.models import (
    AuditEvent,
    CaseSession,
    Document,
    Job,
    Recording,
    RecordingFile,
    RecordingSegment,
    StoredObject,
    User,
)
from server.domain.errors import Conflict, Forbidden, NotFound
from server.domain.roles import Role
from server.jobs import JobRunner, RunnerPolicy
from server.services import recordings
from server.services.documents import open_bytes
from server.services.recording_compose import (
    DAMAGED,
    NO_RECORDING,
    NOTHING_RECORDED,
    RECORDING_COMPOSE,
    compose,
    enqueue_compose,
    request_compose,
)
from server.uploads import UploadOutbox
from storage.factory import open_store
from storage.local import LocalStore
from storage.spool import Spool
from tests.media.test_composite import opus_packets, vp8_packets

pytestmark = pytest.mark.timeout(240)

SECONDS = 3
ENDED_AFTER = 4.0  # the recording stopped a second after the last packet
FAST = RunnerPolicy(
    workers=1,
    heartbeat_seconds=0.2,
    stale_seconds=30.0,
    progress_seconds=0.05,
    poll_seconds=0.1,
)


@dataclass(frozen=True)
class Piece:
    """A recorded segment file and whose it is."""

    segment: ClosedSegment
    identity: str
    name: str
    seat: str
    source: str
    offset: float


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> list[Piece]:
    """张三 with camera and microphone from the start, 李四 with a microphone from 0.5 s."""
    folder = tmp_path_factory.mktemp("segments")
    video, audio = vp8_packets(SECONDS), opus_packets(SECONDS)
    made: list[Piece] = []
    for track, kind, packets, who, source, offset in (
        ("u1.mic", "audio", audio, ("user:1", "张三", "Applicant"), "mic", 0.0),
        ("u1.camera", "video", video, ("user:1", "张三", "Applicant"), "camera", 0.0),
        ("u2.mic", "audio", audio, ("user:2", "李四", "Respondent"), "mic", 0.5),
    ):
        writer = SegmentWriter(folder, track, kind, segment_seconds=2.0)  # type: ignore[arg-type]
        for packet in packets:
            writer.write(packet)
        writer.close()
        made += [Piece(s, *who, source, offset) for s in writer.closed]
    return made


@dataclass(frozen=True)
class Setup:
    settings: Settings
    database: Database
    spool: Spool
    store: LocalStore
    session_id: int
    dispute_id: int

    def runner(self, name: str) -> JobRunner:
        runner = JobRunner(
            Database(self.settings.database_url),
            settings=self.settings,
            store=self.store,
            spool=self.spool,
            policy=FAST,
            name=name,
        )
        runner.register(RECORDING_COMPOSE, compose)
        return runner

    async def principal(self, **where: Any) -> Principal:
        async with self.database.transaction(write=False) as db:
            user = await db.scalar(select(User).filter_by(**where))
            assert user is not None
            return Principal(user.id, Role(user.role), user.name, user.court_id, 0, "test")


@pytest.fixture
async def setup(settings: Settings) -> AsyncIterator[Setup]:
    database = Database(settings.database_url)
    store = open_store(settings.storage_url)
    assert isinstance(store, LocalStore)
    await store.ensure_ready()
    async with database.transaction(write=False) as db:
        session = await db.scalar(select(CaseSession).where(CaseSession.dispute_id == 1))
        assert session is not None
    try:
        yield Setup(
            settings,
            database,
            Spool(settings.data_dir / "spool"),
            store,
            session.id,
            session.dispute_id,
        )
    finally:
        await database.dispose()


async def record_session(setup: Setup, pieces: list[Piece], *, upload: bool) -> int:
    """A stopped recording of the demo mediation with ``pieces`` as its segments (sent to
    the store by the upload outbox when ``upload``); the recording's id."""
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    async with setup.database.transaction() as db:
        recording = Recording(
            session_id=setup.session_id,
            dispute_id=setup.dispute_id,
            state="stopped",
            started_at=started,
            ended_at=started + timedelta(seconds=ENDED_AFTER),
            alive_at=started + timedelta(seconds=ENDED_AFTER),
            runs=1,
        )
        db.add(recording)
        await db.flush()
        for piece in pieces:
            segment = piece.segment
            key = recordings.segment_key(setup.dispute_id)
            await setup.spool.put_bytes(key, segment.path.read_bytes())
            await recordings.add_segment(
                db, recording, key=key, run=1, track=segment.track, identity=piece.identity,
                name=piece.name, seat=piece.seat, source=piece.source, kind=segment.kind,
                index=segment.index, start=segment.start + piece.offset,
                end=segment.end + piece.offset, packets=segment.packets, size=segment.size,
                sha256=segment.sha256,
            )  # fmt: skip
        recording_id = recording.id
    if upload:
        outbox = UploadOutbox(setup.database, setup.store, setup.spool)
        await outbox.run_once()
        async with setup.database.transaction(write=False) as db:
            states = await db.scalars(select(StoredObject.status))
            assert set(states) == {"stored"}
    return recording_id


async def job_row(setup: Setup, job_id: int) -> Job:
    async with setup.database.transaction(write=False) as db:
        job = await db.get(Job, job_id)
        assert job is not None
        return job


async def audited(setup: Setup, action: str) -> list[AuditEvent]:
    async with setup.database.transaction(write=False) as db:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return list(rows)


async def files_of(setup: Setup, recording_id: int) -> dict[tuple[str, str], RecordingFile]:
    async with setup.database.transaction(write=False) as db:
        rows = await db.scalars(
            select(RecordingFile).where(RecordingFile.recording_id == recording_id)
        )
        return {(row.role, row.identity): row for row in rows}


async def stored_bytes(setup: Setup, document_id: int) -> tuple[Document, StoredObject, bytes]:
    async with setup.database.transaction(write=False) as db:
        document = await db.get(Document, document_id)
        assert document is not None
        stored = await db.get(StoredObject, document.object_id)
        assert stored is not None
    data = b"".join([chunk async for chunk in open_bytes(setup.store, setup.spool, stored, None)])
    return document, stored, data


def media_duration(data: bytes, folder: Path, name: str) -> tuple[float, list[str]]:
    path = folder / name
    path.write_bytes(data)
    with av.open(str(path)) as container:
        return float(container.duration or 0) / 1e6, sorted(s.type for s in container.streams)


def job_result(job: Job) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(job.result)
    return result


async def run_one(setup: Setup, name: str) -> None:
    runner = setup.runner(name)
    try:
        assert await runner.run_once()
    finally:
        await runner.stop()
        await runner.database.dispose()


async def test_the_clerk_gets_a_composite_and_a_file_per_participant(
    setup: Setup, pieces: list[Piece], tmp_path: Path
) -> None:
    recording_id = await record_session(setup, pieces, upload=True)
    clerk = await setup.principal(username="shujiyuan")
    async with setup.database.transaction() as db:
        job = await request_compose(db, clerk, setup.session_id)
        again = await request_compose(db, clerk, setup.session_id)  # a second click
    assert again.id == job.id
    await run_one(setup, "compose-a")

    done = await job_row(setup, job.id)
    assert (done.state, done.progress, done.created_by_id) == ("done", 1.0, clerk.user_id)
    result = job_result(done)
    assert result["duration"] == pytest.approx(ENDED_AFTER)
    document, stored, data = await stored_bytes(setup, result["composite_document_id"])
    assert document.kind == "recording" and document.dispute_id == setup.dispute_id
    assert document.created_by_id == clerk.user_id
    assert stored.write_once and stored.kind == "recording"
    assert hashlib.sha256(data).hexdigest() == stored.sha256 == result["sha256"]
    seconds, streams = media_duration(data, tmp_path, document.filename)
    assert streams == ["audio", "video"] and seconds == pytest.approx(ENDED_AFTER, abs=0.2)

    files = await files_of(setup, recording_id)
    assert sorted(files) == [
        ("composite", ""),
        ("participant", "user:1"),
        ("participant", "user:2"),
    ]
    assert files[("composite", "")].id == result["composite_file_id"]
    assert files[("composite", "")].sha256 == result["sha256"]
    zhang, li = files[("participant", "user:1")], files[("participant", "user:2")]
    assert (zhang.name, zhang.seat, zhang.has_video) == ("张三", "Applicant", True)
    assert (li.name, li.has_video) == ("李四", False)
    assert li.duration == pytest.approx(SECONDS + 0.5, abs=0.05)
    for row in (zhang, li):
        assert row.document_id is not None
        _, kept, data = await stored_bytes(setup, row.document_id)
        assert hashlib.sha256(data).hexdigest() == kept.sha256 == row.sha256
        _, streams = media_duration(data, tmp_path, f"{row.identity}.webm".replace(":", "-"))
        assert streams == (["audio", "video"] if row.has_video else ["audio"])
    assert sorted(f["identity"] for f in result["files"]) == ["user:1", "user:2"]

    [requested, _] = await audited(setup, "recording.compose_requested")
    assert requested.actor_id == clerk.user_id and requested.details["job_id"] == job.id
    [composed] = await audited(setup, "recording.composed")
    assert composed.object_type == "case_session"
    assert composed.object_id == str(setup.session_id)
    assert composed.dispute_id == setup.dispute_id and composed.actor_id == clerk.user_id
    assert composed.details["composite_document_id"] == result["composite_document_id"]
    assert composed.details["sha256"] == result["sha256"]
    assert composed.details["participant_files"] == 2
    assert len(await audited(setup, "document.added")) == 3
    assert not list((setup.spool.folder).glob(".compose-*"))  # its work folder is gone


async def test_a_segment_changed_in_the_store_fails_the_job_and_is_audited(
    setup: Setup, pieces: list[Piece]
) -> None:
    recording_id = await record_session(setup, pieces, upload=True)
    async with setup.database.transaction() as db:
        victim = await db.scalar(
            select(RecordingSegment)
            .where(RecordingSegment.recording_id == recording_id)
            .order_by(RecordingSegment.id.desc())
            .limit(1)
        )
        assert victim is not None
        stored = await db.get(StoredObject, victim.object_id)
        assert stored is not None
        recording = await db.get(Recording, recording_id)
        assert recording is not None
        job = await enqueue_compose(db, recording, None)  # as the platform does at stop
    path = setup.store.root.joinpath(*stored.key.split("/"))
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(data))

    await run_one(setup, "compose-b")
    failed = await job_row(setup, job.id)
    assert (failed.state, failed.error_message, failed.created_by_id) == ("failed", DAMAGED, None)
    assert f"segment {victim.id}" in failed.error
    [alarm] = await audited(setup, "recording.integrity_failed")
    assert alarm.outcome == "failed" and alarm.dispute_id == setup.dispute_id
    assert alarm.details["segment_id"] == victim.id
    assert alarm.details["track"] == victim.track
    assert alarm.details["expected_sha256"] == victim.sha256
    assert await files_of(setup, recording_id) == {}
    assert await audited(setup, "recording.composed") == []


async def test_a_job_stopped_after_the_first_participant_resumes_without_duplicates(
    setup: Setup, pieces: list[Piece], monkeypatch: pytest.MonkeyPatch
) -> None:
    recording_id = await record_session(setup, pieces, upload=False)  # still in the spool
    async with setup.database.transaction() as db:
        recording = await db.get(Recording, recording_id)
        assert recording is not None
        job = await enqueue_compose(db, recording, None)

    loop = asyncio.get_running_loop()
    second_began = asyncio.Event()
    let_go = threading.Event()
    original: Callable[..., media.Made] = media.participant_file
    calls: list[str] = []

    def stalling(participant: media.Participant, out: Path) -> media.Made:
        calls.append(participant.identity)
        if len(calls) == 2:  # the worker stops while the second participant is joined
            loop.call_soon_threadsafe(second_began.set)
            let_go.wait(30)
        return original(participant, out)

    monkeypatch.setattr(media, "participant_file", stalling)
    first = setup.runner("compose-c")
    try:
        first.start()
        await asyncio.wait_for(second_began.wait(), 60)
        await first.stop()  # hands the job back to the queue
    finally:
        let_go.set()
        await first.stop()
        await first.database.dispose()
    handed_back = await job_row(setup, job.id)
    assert handed_back.state == "queued"
    saved = job_result(handed_back)
    assert list(saved["participant"]) == ["user:1"]
    kept = saved["participant"]["user:1"]
    assert list(await files_of(setup, recording_id)) == [("participant", "user:1")]

    monkeypatch.setattr(media, "participant_file", original)
    await run_one(setup, "compose-d")
    done = await job_row(setup, job.id)
    assert done.state == "done"
    files = await files_of(setup, recording_id)
    assert len(files) == 3
    again = files[("participant", "user:1")]
    assert (again.id, again.document_id) == (kept["file_id"], kept["document_id"])  # not redone
    async with setup.database.transaction(write=False) as db:
        documents = list(await db.scalars(select(Document).where(Document.kind == "recording")))
    assert len(documents) == 3  # one per file: nothing stored twice
    assert all(d.created_by_id is None for d in documents)  # made by the platform
    [composed] = await audited(setup, "recording.composed")
    assert composed.actor_id is None and composed.actor_role == "system"


async def test_only_staff_on_the_dispute_may_ask_and_only_for_something_recorded(
    setup: Setup,
) -> None:
    clerk = await setup.principal(username="shujiyuan")
    async with setup.database.transaction() as db:
        with pytest.raises(Conflict) as refused:
            await request_compose(db, clerk, setup.session_id)
    assert refused.value.message == NO_RECORDING

    async with setup.database.transaction() as db:
        empty = Recording(
            session_id=setup.session_id,
            dispute_id=setup.dispute_id,
            state="stopped",
            started_at=datetime.now(UTC) - timedelta(minutes=5),
            ended_at=datetime.now(UTC),
        )
        db.add(empty)
    async with setup.database.transaction() as db:
        with pytest.raises(Conflict) as refused:
            await request_compose(db, clerk, setup.session_id)
    assert refused.value.message == NOTHING_RECORDED

    zhang = await setup.principal(phone="13800000001")  # a party of this dispute
    outsider = await setup.principal(username="tiaojie2")  # a mediator not on it
    wang = await setup.principal(phone="13800000003")  # a party of another dispute
    for who, error in ((zhang, Forbidden), (outsider, NotFound), (wang, NotFound)):
        async with setup.database.transaction() as db:
            with pytest.raises(error) as denied:
                await request_compose(db, who, setup.session_id)
        assert denied.value.audit_action == "access.denied"
    async with setup.database.transaction() as db:
        with pytest.raises(NotFound):
            await request_compose(db, clerk, 999_999)
    async with setup.database.transaction(write=False) as db:
        assert list(await db.scalars(select(Job).where(Job.kind == RECORDING_COMPOSE))) == []
    assert await audited(setup, "recording.compose_requested") == []
