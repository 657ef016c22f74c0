"""Keeping and removing recordings, on both databases: the retention table by dispute
type; the purge job removes the media of a recording past its retention from the local
object store and the spool, keeps its manifest and rows (marked), audits it and logs it
on the timeline, and leaves a held, a recent and a kept-for-ever recording alone; a hold
placed before the job reaches a recording wins; a store that refuses a delete leaves
that recording as it was, audited, while the job goes on; the job queues its next run
exactly once; the legal hold through the API, refused (and audited) for a party or a
mediator."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from media.recording import ClosedSegment
from server.auth.principal import Principal
from server.config import Settings
from server.db.models import (
    AuditEvent,
    Document,
    Job,
    Recording,
    RecordingEvent,
    RecordingFile,
    RecordingSegment,
    StoredObject,
    User,
)
from server.domain.errors import Forbidden, Invalid
from server.domain.roles import Role
from server.jobs import JobRunner, RunnerPolicy
from server.services import recording_retention as retention
from server.storage_check import verify_recordings, verify_store
from server.uploads import UploadOutbox
from storage.base import ObjectMissing, StorageError
from storage.keys import new_key
from storage.local import LocalStore
from tests.integration.test_storage_verify_recordings import (
    LOAN,
    TRAFFIC,
    Place,
    add_segments,
    make_recording,
    new_session,
    open_place,
    opus_tone,
    upload_all,
    webm_segments,
)
from tests.support import Clients, make_settings

pytestmark = pytest.mark.timeout(180)

RETENTION = "default=30,loan=10,traffic=0"
PURGE_HOURS = 6
ZHANG, WANG = "13800000001", "13800000003"
FAST = RunnerPolicy(
    workers=1,
    heartbeat_seconds=0.2,
    stale_seconds=30.0,
    progress_seconds=0.05,
    poll_seconds=0.1,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url,
        YIZHAN_RECORDING_RETENTION_DAYS=RETENTION,
        YIZHAN_RECORDING_PURGE_HOURS=str(PURGE_HOURS),
    )


@pytest.fixture(scope="module")
def tone() -> list[Any]:
    return opus_tone()


@pytest.fixture
async def place(settings: Settings) -> AsyncIterator[Place]:
    found = open_place(settings)
    await found.store.ensure_ready()
    try:
        yield found
    finally:
        await found.close()


def runner_for(place: Place, store: LocalStore | None = None) -> JobRunner:
    runner = JobRunner(
        place.database,
        settings=place.settings,
        store=store or place.store,
        spool=place.spool,
        policy=FAST,
        name="purge-test",
    )
    runner.register(retention.RECORDING_PURGE, retention.purge)
    return runner


async def age(place: Place, recording_id: int, days: float) -> None:
    """Make the recording have ended ``days`` ago."""
    async with place.database.transaction() as db:
        recording = await db.get(Recording, recording_id)
        assert recording is not None and recording.ended_at is not None
        ended = datetime.now(UTC) - timedelta(days=days)
        recording.started_at = ended - timedelta(minutes=30)
        recording.ended_at = ended


async def principal(place: Place, username: str) -> Principal:
    async with place.database.transaction(write=False) as db:
        user = await db.scalar(select(User).where(User.username == username))
        assert user is not None
        return Principal(
            user_id=user.id,
            role=Role(user.role),
            name=user.name,
            court_id=user.court_id,
            session_id=0,
            method="test",
        )


async def session_of(place: Place, recording_id: int) -> int:
    async with place.database.transaction(write=False) as db:
        recording = await db.get(Recording, recording_id)
        assert recording is not None
        return recording.session_id


async def hold(place: Place, username: str, recording_id: int, on: bool, reason: str) -> None:
    session_id = await session_of(place, recording_id)
    who = await principal(place, username)
    async with place.database.transaction() as db:
        await retention.set_hold(db, who, session_id, on, reason)


async def add_composite(place: Place, recording_id: int, data: bytes) -> str:
    """The composite file made after the session: a dispute document, stored by the outbox."""
    async with place.database.transaction() as db:
        recording = await db.get(Recording, recording_id)
        assert recording is not None
        key = new_key("recording", recording.dispute_id, "webm")
        await place.spool.put_bytes(key, data)
        stored = StoredObject(
            key=key,
            kind="recording",
            dispute_id=recording.dispute_id,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content_type="video/webm",
            write_once=True,
            status="pending",
            next_attempt_at=datetime.now(UTC),
        )
        db.add(stored)
        await db.flush()
        document = Document(
            dispute_id=recording.dispute_id,
            kind="recording",
            title="庭审录像",
            filename="recording.webm",
            object_id=stored.id,
        )
        db.add(document)
        await db.flush()
        db.add(
            RecordingFile(
                recording_id=recording_id,
                role="composite",
                document_id=document.id,
                duration=3.0,
                has_video=False,
                sha256=stored.sha256,
            )
        )
    return key


async def objects_of(place: Place, recording_id: int) -> list[StoredObject]:
    """The recording's segment and file objects (not its manifest)."""
    async with place.database.transaction(write=False) as db:
        segments = await db.scalars(
            select(StoredObject)
            .join(RecordingSegment, RecordingSegment.object_id == StoredObject.id)
            .where(RecordingSegment.recording_id == recording_id)
        )
        files = await db.scalars(
            select(StoredObject)
            .join(Document, Document.object_id == StoredObject.id)
            .join(RecordingFile, RecordingFile.document_id == Document.id)
            .where(RecordingFile.recording_id == recording_id)
        )
        return list(segments) + list(files)


async def in_store(place: Place, key: str) -> bool:
    try:
        await place.store.stat(key)
    except ObjectMissing:
        return False
    return True


async def audits(place: Place, action: str) -> list[AuditEvent]:
    async with place.database.transaction(write=False) as db:
        return list(
            await db.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
        )


async def recording_row(place: Place, recording_id: int) -> Recording:
    async with place.database.transaction(write=False) as db:
        recording = await db.get(Recording, recording_id)
        assert recording is not None
        return recording


async def timeline(place: Place, recording_id: int) -> list[RecordingEvent]:
    async with place.database.transaction(write=False) as db:
        return list(
            await db.scalars(
                select(RecordingEvent)
                .where(RecordingEvent.recording_id == recording_id)
                .order_by(RecordingEvent.id)
            )
        )


async def purge_jobs(place: Place) -> list[Job]:
    async with place.database.transaction(write=False) as db:
        return list(
            await db.scalars(
                select(Job).where(Job.kind == retention.RECORDING_PURGE).order_by(Job.id)
            )
        )


async def queue_purge_now(place: Place) -> None:
    async with place.database.transaction() as db:
        await retention.ensure_purge_scheduled(db, place.settings)


def segments_of(tone: list[Any], folder: Path) -> list[ClosedSegment]:
    return webm_segments(folder, tone, "user-8.mic")


# --- retention --------------------------------------------------------------------------


def test_the_retention_table_is_read_per_dispute_type(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"
    settings = make_settings(tmp_path, url, YIZHAN_RECORDING_RETENTION_DAYS=RETENTION)
    assert retention.retention_days(settings, "loan") == 10
    assert retention.retention_days(settings, "traffic") == 0  # kept for ever
    assert retention.retention_days(settings, "family") == 30  # the default
    assert retention.retention_days(make_settings(tmp_path, url), "loan") == 3650
    no_default = settings.model_copy(update={"recording_retention_days": {"loan": 5}})
    assert retention.retention_days(no_default, "loan") == 5
    assert retention.retention_days(no_default, "sale") == retention.DEFAULT_RETENTION_DAYS


async def test_only_a_recording_past_its_retention_is_purged(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    closed = segments_of(tone, tmp_path / "rec")
    expired = await make_recording(place, closed)
    composite = await add_composite(place, expired, closed[0].path.read_bytes())
    held = await make_recording(place, closed)
    recent = await make_recording(place, closed)
    for_ever = await make_recording(place, closed, dispute_id=TRAFFIC)
    await upload_all(place)
    late = segments_of(tone[:60], tmp_path / "late")
    [late_key] = await add_segments(place, expired, late[:1], run=2)  # still in the spool
    assert place.spool.path_for(late_key).exists()
    for recording_id, days in ((expired, 11), (held, 40), (recent, 5), (for_ever, 400)):
        await age(place, recording_id, days)
    await hold(place, "faguan", held, True, "上诉期间保全")

    async with place.database.transaction(write=False) as db:
        found = await retention.expired(db, place.settings, datetime.now(UTC))
    assert [r.id for r in found] == [expired]

    kept = {r: await objects_of(place, r) for r in (held, recent, for_ever)}
    media = await objects_of(place, expired)
    assert len(media) == len(closed) + 2  # the segments, the late one and the composite
    await queue_purge_now(place)
    runner = runner_for(place)
    assert await runner.run_once()
    [job, _next] = await purge_jobs(place)
    assert job.state == "done", job.error
    assert '"purged": [' + str(expired) + "]" in job.result and '"failed": []' in job.result

    recording = await recording_row(place, expired)
    assert recording.state == "purged" and recording.purged_at is not None
    for stored in await objects_of(place, expired):
        assert stored.status == "deleted"
        assert not await in_store(place, stored.key), stored.key
    assert not place.spool.path_for(late_key).exists()
    assert composite in {o.key for o in media}
    # what existed stays on the record: the manifest, the segment rows
    async with place.database.transaction(write=False) as db:
        manifest = await db.get(StoredObject, recording.manifest_object_id)
        rows = await db.scalar(
            select(func.count())
            .select_from(RecordingSegment)
            .where(RecordingSegment.recording_id == expired)
        )
    assert manifest is not None and manifest.status == "stored"
    assert await in_store(place, manifest.key)
    assert rows == len(closed) + 1
    [purged] = await audits(place, "recording.purged")
    assert purged.dispute_id == LOAN and purged.actor_role == "system"
    assert purged.details["recording_id"] == expired
    assert purged.details["segments"] == len(closed) + 1 and purged.details["files"] == 1
    assert purged.details["bytes"] == sum(o.size for o in media)
    assert purged.details["retention_days"] == 10
    assert [e.kind for e in await timeline(place, expired)][-1] == "purged"

    for recording_id, objects in kept.items():
        assert (await recording_row(place, recording_id)).state == "stopped"
        for stored in objects:
            assert await in_store(place, stored.key)
    # nothing is left for the outbox, and the check knows the media went on purpose
    assert await UploadOutbox(place.database, place.store, place.spool).run_once() == (0, 0)
    found_checks = await verify_recordings(place.database, place.store, place.spool)
    checks = {c.recording_id: c for c in found_checks}
    assert all(c.ok for c in checks.values()), [c.problems for c in checks.values()]
    assert checks[expired].state == "purged" and checks[expired].segments == 0
    assert checks[expired].manifest == "ok"
    general = await verify_store(place.database, place.store, skip_recordings=True)
    assert general.ok and general.deleted == len(media) and general.pending == 0


async def test_a_hold_placed_before_the_job_reaches_a_recording_wins(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    closed = segments_of(tone, tmp_path / "rec")
    recording_id = await make_recording(place, closed)
    await upload_all(place)
    await age(place, recording_id, 12)
    now = datetime.now(UTC)
    async with place.database.transaction(write=False) as db:
        assert [r.id for r in await retention.expired(db, place.settings, now)] == [recording_id]
    await hold(place, "shujiyuan", recording_id, True, "当事人申请再审")  # meanwhile
    outcome = await retention.purge_recording(
        place.database, place.store, place.spool, place.settings, recording_id, now
    )
    assert outcome.result == "skipped"
    recording = await recording_row(place, recording_id)
    assert recording.state == "stopped" and recording.legal_hold
    assert recording.hold_reason == "当事人申请再审"
    for stored in await objects_of(place, recording_id):
        assert stored.status == "stored" and await in_store(place, stored.key)
    assert await audits(place, "recording.purged") == []
    [held] = await audits(place, "recording.held")
    assert held.actor_name == "卫书记员" and held.details["reason"] == "当事人申请再审"
    event = (await timeline(place, recording_id))[-1]
    assert event.kind == "held" and event.actor == "卫书记员"
    assert event.offset == pytest.approx((event.at - recording.started_at).total_seconds(), abs=1)

    await hold(place, "admin", recording_id, False, "")  # lifted: the next run purges it
    [released] = await audits(place, "recording.released")
    assert released.actor_name == "周管理"
    assert (await timeline(place, recording_id))[-1].kind == "released"
    outcome = await retention.purge_recording(
        place.database, place.store, place.spool, place.settings, recording_id, now
    )
    assert outcome.result == "purged" and outcome.segments == len(closed)


async def test_a_hold_needs_a_reason_and_a_judge_clerk_or_court_admin(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    recording_id = await make_recording(place, segments_of(tone, tmp_path / "rec"))
    session_id = await session_of(place, recording_id)
    judge = await principal(place, "faguan")
    async with place.database.transaction() as db:
        with pytest.raises(Invalid) as refused:
            await retention.set_hold(db, judge, session_id, True, "   ")
    assert refused.value.field == "reason"
    mediator = await principal(place, "tiaojie")
    async with place.database.transaction() as db:
        with pytest.raises(Forbidden) as forbidden:
            await retention.set_hold(db, mediator, session_id, True, "想保留")
    assert forbidden.value.audit_action == "access.denied"
    assert forbidden.value.audit_details["permission"] == "recording.hold"
    assert not (await recording_row(place, recording_id)).legal_hold


async def test_a_store_that_refuses_a_delete_leaves_the_recording_unpurged(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    closed = segments_of(tone, tmp_path / "rec")
    locked_id = await make_recording(place, closed)
    free_id = await make_recording(place, closed)
    await upload_all(place)
    for recording_id in (locked_id, free_id):
        await age(place, recording_id, 20)
    locked = {o.key for o in await objects_of(place, locked_id)}

    class ObjectLockedStore(LocalStore):
        """The local store, refusing deletes of locked objects as a WORM bucket does."""

        async def delete(self, key: str) -> None:
            if key in locked:
                raise StorageError("S3 AccessDenied: the object is protected by object lock")
            await super().delete(key)

    store = ObjectLockedStore(place.settings.data_dir / "objects")
    await queue_purge_now(place)
    assert await runner_for(place, store).run_once()
    [job, _next] = await purge_jobs(place)
    assert job.state == "done", job.error
    assert f'"failed": [{locked_id}]' in job.result and f'"purged": [{free_id}]' in job.result

    recording = await recording_row(place, locked_id)
    assert recording.state == "stopped" and recording.purged_at is None
    for stored in await objects_of(place, locked_id):
        assert stored.status == "stored" and await in_store(place, stored.key)
    [failed] = await audits(place, "recording.purge_failed")
    assert failed.outcome == "failed" and failed.details["recording_id"] == locked_id
    assert "object lock" in failed.details["reason"]
    assert any(key in failed.details["reason"] for key in locked)
    assert (await recording_row(place, free_id)).state == "purged"
    [purged] = await audits(place, "recording.purged")
    assert purged.details["recording_id"] == free_id
    assert all(c.ok for c in await verify_recordings(place.database, place.store, place.spool))


async def test_the_purge_job_queues_its_next_run_exactly_once(place: Place) -> None:
    await queue_purge_now(place)
    await queue_purge_now(place)  # at a second start, or by a second process
    [first] = await purge_jobs(place)
    assert first.state == "queued" and first.not_before is None  # due at once
    runner = runner_for(place)
    assert await runner.run_once()
    assert not await runner.run_once()  # the next is not due yet
    jobs = await purge_jobs(place)
    assert [j.state for j in jobs] == ["done", "queued"]
    done, waiting = jobs
    assert done.finished_at is not None and waiting.not_before is not None
    wait = waiting.not_before - done.finished_at
    assert abs(wait - timedelta(hours=PURGE_HOURS)) < timedelta(minutes=1)
    assert f'"next_job_id": {waiting.id}' in done.result
    await queue_purge_now(place)  # one is queued: nothing more
    assert len(await purge_jobs(place)) == 2
    async with place.database.transaction() as db:  # run again, as after a lost worker
        job = await db.get(Job, done.id)
        assert job is not None
        job.state, job.finished_at = "queued", None
    assert await runner.run_once()
    assert [j.state for j in await purge_jobs(place)] == ["done", "queued"]

    async with place.database.transaction() as db:  # its time has come
        job = await db.get(Job, waiting.id)
        assert job is not None
        job.not_before = datetime.now(UTC) - timedelta(seconds=1)
    assert await runner.run_once()
    assert [j.state for j in await purge_jobs(place)] == ["done", "done", "queued"]
    queued = await audits(place, "job.queued")
    assert len([a for a in queued if a.details.get("kind") == retention.RECORDING_PURGE]) == 3


# --- the legal hold through the API -----------------------------------------------------


async def english(client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    await client.get("/lang/en?next=/", allow_redirects=False)
    return client


async def test_the_legal_hold_through_the_api(
    clients: Clients, place: Place, tone: list[Any], tmp_path: Path
) -> None:
    recording_id = await make_recording(place, segments_of(tone, tmp_path / "rec"))
    session_id = await session_of(place, recording_id)
    path = f"/api/v1/sessions/{session_id}/recording/hold"

    judge = await english(await clients.staff("faguan"))
    response = await clients.post_json(judge, path, {"hold": True, "reason": " "})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["field"] == "reason" and error["message"] == "Give the reason for the legal hold."
    response = await clients.post_json(judge, path, {"hold": "yes", "reason": "x"})
    assert response.status == 400 and (await response.json())["error"]["field"] == "hold"

    response = await clients.post_json(judge, path, {"hold": True, "reason": "二审期间保全"})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["id"] == recording_id and body["session_id"] == session_id
    assert body["hold"] is True and body["reason"] == "二审期间保全"
    assert body["state"] == "stopped"

    zhang = await english(await clients.party(ZHANG))
    mediator = await english(await clients.staff("tiaojie"))
    for refused in (zhang, mediator):
        response = await clients.post_json(refused, path, {"hold": False, "reason": "删掉"})
        assert response.status == 403
        message = (await response.json())["error"]["message"]
        assert message == (
            "Only the judge, the clerk or the court's administrator may change a legal hold."
        )
    wang = await clients.party(WANG)  # not on this dispute: it does not exist for him
    response = await clients.post_json(wang, path, {"hold": False, "reason": ""})
    assert response.status == 404
    denied = [
        a
        for a in await audits(place, "access.denied")
        if a.details.get("permission") == "recording.hold"
    ]
    assert sorted(a.actor_role for a in denied) == ["mediator", "party"]
    assert all(a.outcome == "denied" and a.dispute_id == LOAN for a in denied)
    recording = await recording_row(place, recording_id)
    assert recording.legal_hold and recording.hold_reason == "二审期间保全"  # nothing lost

    clerk = await clients.staff("shujiyuan")
    response = await clients.post_json(clerk, path, {"hold": False, "reason": "上诉已撤回"})
    assert response.status == 200
    body = await response.json()
    assert body["hold"] is False and body["reason"] == ""
    [held] = await audits(place, "recording.held")
    [released] = await audits(place, "recording.released")
    assert held.actor_name == "褚法官" and held.details["reason"] == "二审期间保全"
    assert released.actor_name == "卫书记员" and released.details["reason"] == "上诉已撤回"
    assert [e.kind for e in await timeline(place, recording_id)][-2:] == ["held", "released"]

    admin = await clients.staff("admin")
    response = await clients.post_json(admin, path, {"hold": True, "reason": "院长批示"})
    assert response.status == 200 and (await response.json())["hold"] is True

    other = await new_session(place, LOAN)  # a session never recorded
    response = await clients.post_json(
        judge, f"/api/v1/sessions/{other}/recording/hold", {"hold": True, "reason": "x"}
    )
    assert response.status == 404
    assert (await response.json())["error"]["message"] == "This session has no recording."
