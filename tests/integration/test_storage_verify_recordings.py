"""`yizhan storage verify` on recordings, on both databases: real WebM segments (muxed by
the recorder's segment writer from Opus packets) go through the spool and the upload
outbox into the local object store (and once into S3); a whole recording passes; a
changed byte in a segment, a deleted segment and a manifest that no longer hashes to
its recorded SHA-256 fail, naming what is wrong; segments written after the manifest
are reported as not in it; a live recording is checked from its segments, read from
the spool while their upload waits."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from media.recording import ClosedSegment, SegmentWriter
from server.config import Settings
from server.db.engine import Database
from server.db.models import CaseSession, Recording, RecordingSegment, StoredObject
from server.services import recordings
from server.storage_check import RecordingCheck, verify_recordings, verify_store
from server.uploads import UploadOutbox
from storage.base import ObjectStore
from storage.factory import open_store
from storage.spool import Spool
from tests.integration.test_cli_and_migrations import cli
from tests.media.packets import opus_packets
from tests.s3_server import S3Server
from tests.support import make_settings

pytestmark = pytest.mark.timeout(180)

LOAN, TRAFFIC = 1, 2
TONE_SECONDS = 3


def opus_tone(seconds: int = TONE_SECONDS) -> list[Any]:
    """Opus packets of a 440 Hz tone, as a browser's microphone track would carry."""
    return opus_packets(seconds)


@pytest.fixture(scope="module")
def tone() -> list[Any]:
    return opus_tone()


def webm_segments(folder: Path, packets: list[Any], track: str) -> list[ClosedSegment]:
    """The track cut into WebM segments of about a second each."""
    writer = SegmentWriter(folder, track, "audio", segment_seconds=1.0)
    for packet in packets:
        writer.write(packet)
    writer.close()
    assert len(writer.closed) >= 2
    return writer.closed


@dataclass
class Place:
    """The database, the object store and the spool, as the app uses them."""

    settings: Settings
    database: Database
    store: ObjectStore
    spool: Spool

    async def close(self) -> None:
        await self.database.dispose()


def open_place(settings: Settings, store: ObjectStore | None = None) -> Place:
    return Place(
        settings,
        Database(settings.database_url),
        store or open_store(settings.storage_url),
        Spool(settings.data_dir / "spool"),
    )


@pytest.fixture
async def place(settings: Settings) -> AsyncIterator[Place]:
    found = open_place(settings)
    await found.store.ensure_ready()
    try:
        yield found
    finally:
        await found.close()


async def new_session(place: Place, dispute_id: int) -> int:
    async with place.database.transaction() as db:
        case_session = CaseSession(
            dispute_id=dispute_id,
            kind="mediation",
            status="held",
            scheduled_start=datetime.now(UTC),
        )
        db.add(case_session)
        await db.flush()
        return case_session.id


async def add_segments(
    place: Place, recording_id: int, closed: list[ClosedSegment], run: int = 1
) -> list[str]:
    """Record closed segments as the recorder does: the file in the spool under its key,
    the segment and its pending upload in the database. Their keys."""
    keys = []
    async with place.database.transaction() as db:
        recording = await db.get(Recording, recording_id)
        assert recording is not None
        for segment in closed:
            key = recordings.segment_key(recording.dispute_id)
            await place.spool.put_bytes(key, segment.path.read_bytes())
            await recordings.add_segment(
                db,
                recording,
                key=key,
                run=run,
                track=segment.track,
                identity="user:8",
                name="张三",
                seat="Applicant",
                source="mic",
                kind="audio",
                index=segment.index,
                start=segment.start,
                end=segment.end,
                packets=segment.packets,
                size=segment.size,
                sha256=segment.sha256,
            )
            keys.append(key)
    return keys


async def make_recording(
    place: Place,
    closed: list[ClosedSegment],
    *,
    dispute_id: int = LOAN,
    stop: bool = True,
    manifest: bool = True,
) -> int:
    """A session recorded with these segments, stopped and with its manifest written."""
    session_id = await new_session(place, dispute_id)
    async with place.database.transaction() as db:
        recording, _ = await recordings.begin(
            db, session_id=session_id, dispute_id=dispute_id, segment_seconds=1.0, stale_after=60
        )
        recording_id = recording.id
    await add_segments(place, recording_id, closed)
    if stop or manifest:
        async with place.database.transaction() as db:
            found = await db.get(Recording, recording_id)
            assert found is not None
            if stop:
                await recordings.stop(db, found)
            if manifest:
                await recordings.write_manifest(db, place.spool, found)
    return recording_id


async def upload_all(place: Place) -> None:
    """Run the upload outbox until nothing is due, then check everything reached the store."""
    outbox = UploadOutbox(place.database, place.store, place.spool)
    while (await outbox.run_once())[0]:
        pass
    async with place.database.transaction(write=False) as db:
        waiting = list(
            await db.scalars(select(StoredObject).where(StoredObject.status != "stored"))
        )
    assert not waiting, [(o.key, o.last_error) for o in waiting]


async def segment_keys(place: Place, recording_id: int) -> list[str]:
    """The keys of the recording's segments, in the manifest's order."""
    async with place.database.transaction(write=False) as db:
        keys = await db.scalars(
            select(StoredObject.key)
            .join(RecordingSegment, RecordingSegment.object_id == StoredObject.id)
            .where(RecordingSegment.recording_id == recording_id)
            .order_by(RecordingSegment.run, RecordingSegment.track, RecordingSegment.index)
        )
        return list(keys)


async def check_one(place: Place, recording_id: int, *, strict: bool = False) -> RecordingCheck:
    [check] = await verify_recordings(
        place.database, place.store, place.spool, recording_id=recording_id, strict=strict
    )
    return check


def object_file(settings: Settings, key: str) -> Path:
    return settings.data_dir / "objects" / key


# --- the tests --------------------------------------------------------------------------


async def test_a_whole_recording_passes_and_a_changed_byte_fails_naming_the_segment(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    closed = webm_segments(tmp_path / "rec", tone, "user-8.mic")
    recording_id = await make_recording(place, closed)
    await upload_all(place)
    settings = place.settings
    result = await cli(settings.database_url, settings.data_dir, "storage", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 objects checked, 0 problems" in result.stdout  # the recording's are its own
    line = next(x for x in result.stdout.splitlines() if x.startswith("recording "))
    assert line.startswith(f"recording {recording_id} (session ")
    assert f"manifest ok, {len(closed)} segments, {len(closed)} whole" in line
    assert line.endswith("; OK")

    key = (await segment_keys(place, recording_id))[1]
    path = object_file(settings, key)
    changed = bytearray(path.read_bytes())
    changed[len(changed) // 2] ^= 0x01  # same size, one bit differs
    path.write_bytes(bytes(changed))
    result = await cli(
        settings.database_url,
        settings.data_dir,
        "storage",
        "verify",
        "--recording",
        str(recording_id),
        "--json",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["objects"] is None  # only the recording
    [found] = report["recordings"]
    assert found["recording_id"] == recording_id and found["manifest"] == "ok"
    assert found["segments"] == len(closed) and found["checked"] == len(closed) - 1
    [problem] = found["problems"]
    assert key in problem and "SHA-256 differs from the manifest" in problem
    assert "#1" in problem and "user-8.mic" in problem

    result = await cli(settings.database_url, settings.data_dir, "storage", "verify")
    assert result.returncode == 1
    assert key in result.stdout and "1 problems" in result.stdout
    missing = await cli(
        settings.database_url, settings.data_dir, "storage", "verify", "--recording", "999"
    )
    assert missing.returncode == 2 and "no such recording" in missing.stderr


async def test_a_deleted_segment_object_fails(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    closed = webm_segments(tmp_path / "rec", tone, "user-8.mic")
    recording_id = await make_recording(place, closed)
    await upload_all(place)
    assert (await check_one(place, recording_id)).ok
    key = (await segment_keys(place, recording_id))[0]
    await place.store.delete(key)
    check = await check_one(place, recording_id)
    assert not check.ok and check.manifest == "ok"
    assert check.problems == [f"segment user-8.mic run 1 #0 ({key}): missing from the store"]
    assert check.checked == len(closed) - 1


async def test_a_manifest_that_no_longer_matches_its_hash_fails(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    closed = webm_segments(tmp_path / "rec", tone, "user-8.mic")
    recording_id = await make_recording(place, closed)
    await upload_all(place)
    async with place.database.transaction(write=False) as db:
        recording = await db.get(Recording, recording_id)
        assert recording is not None and recording.manifest_object_id is not None
        manifest = await db.get(StoredObject, recording.manifest_object_id)
        assert manifest is not None
    path = object_file(place.settings, manifest.key)
    document = json.loads(path.read_bytes())
    assert document["format"] == recordings.MANIFEST_FORMAT
    assert [s["index"] for s in document["segments"]] == [s.index for s in closed]
    document["segments"] = document["segments"][1:]  # a segment struck from the record
    path.write_bytes(recordings.manifest_bytes(document))
    check = await check_one(place, recording_id)
    assert check.manifest == "mismatch" and not check.ok
    assert check.problems == [
        f"manifest ({manifest.key}): SHA-256 differs from the recording's manifest_sha256"
    ]
    # the segments are still checked, against the database
    assert check.segments == check.checked == len(closed)

    path.write_bytes(b"{not json")
    async with place.database.transaction() as db:  # as if the hash had been forged too
        forged = hashlib.sha256(b"{not json").hexdigest()
        recording = await db.get(Recording, recording_id)
        stored = await db.get(StoredObject, manifest.id)
        assert recording is not None and stored is not None
        recording.manifest_sha256 = stored.sha256 = forged
        stored.size = len(b"{not json")
    check = await check_one(place, recording_id)
    assert check.manifest == "invalid" and "not UTF-8 JSON" in check.problems[0]


async def test_segments_written_after_the_manifest_are_reported_and_read_from_the_spool(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    closed = webm_segments(tmp_path / "rec", tone, "user-8.mic")
    recording_id = await make_recording(place, closed)
    await upload_all(place)
    later = webm_segments(tmp_path / "later", tone[:60], "user-9.camera")
    late_keys = await add_segments(place, recording_id, later, run=2)  # still in the spool
    check = await check_one(place, recording_id)
    assert check.ok, check.problems
    assert check.not_in_manifest == len(later)
    assert check.segments == check.checked == len(closed) + len(later)
    assert check.from_spool == len(later)
    assert all("not in manifest" in w for w in check.warnings)
    assert {k for k in late_keys if any(k in w for w in check.warnings)} == set(late_keys)
    strict = await check_one(place, recording_id, strict=True)
    assert not strict.ok and len(strict.problems) == len(later)

    settings = place.settings
    result = await cli(settings.database_url, settings.data_dir, "storage", "verify")
    assert result.returncode == 0, result.stdout
    assert f"{len(later)} not in manifest" in result.stdout and "warning:" in result.stdout
    result = await cli(settings.database_url, settings.data_dir, "storage", "verify", "--strict")
    assert result.returncode == 1


async def test_a_live_recording_is_checked_from_its_segments(
    place: Place, tone: list[Any], tmp_path: Path
) -> None:
    closed = webm_segments(tmp_path / "rec", tone, "user-8.mic")
    recording_id = await make_recording(place, closed, stop=False, manifest=False)
    check = await check_one(place, recording_id)  # every segment still waits in the spool
    assert check.ok and check.state == "recording" and check.manifest == "none"
    assert check.segments == check.checked == check.from_spool == len(closed)
    await upload_all(place)
    check = await check_one(place, recording_id)
    assert check.ok and check.from_spool == 0 and check.checked == len(closed)
    key = (await segment_keys(place, recording_id))[-1]
    object_file(place.settings, key).write_bytes(b"short")
    check = await check_one(place, recording_id)
    assert check.problems == [
        f"segment user-8.mic run 1 #{closed[-1].index} ({key}): size 5, "
        f"the database says {closed[-1].size}"
    ]
    # by session, as the command's --session finds it
    async with place.database.transaction(write=False) as db:
        session_id = (await db.get(Recording, recording_id)).session_id  # type: ignore[union-attr]
    [by_session] = await verify_recordings(
        place.database, place.store, place.spool, session_id=session_id
    )
    assert by_session.recording_id == recording_id
    # the general pass leaves the recording's objects to the recording check
    general = await verify_store(place.database, place.store, skip_recordings=True)
    assert general.ok and general.checked == 0
    assert not (await verify_store(place.database, place.store)).ok


async def test_a_recording_in_s3_is_verified(
    s3_server: S3Server, database_url: str, tone: list[Any], tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data", database_url, YIZHAN_STORAGE_URL=s3_server.url())
    place = open_place(settings)
    try:
        await place.store.ensure_ready()
        closed = webm_segments(tmp_path / "rec", tone, "user-8.mic")
        recording_id = await make_recording(place, closed)
        await upload_all(place)
        check = await check_one(place, recording_id)
        assert check.ok and check.checked == len(closed) and check.from_spool == 0
        key = (await segment_keys(place, recording_id))[0]
        data = bytearray(b"".join([c async for c in place.store.open(key)]))
        data[-1] ^= 0xFF
        await place.store.put_bytes(key, bytes(data), content_type="audio/webm", write_once=False)
        check = await check_one(place, recording_id)
        assert [p for p in check.problems if key in p and "SHA-256 differs" in p]
    finally:
        await place.close()
