"""Playing a session's recording back, on both databases: a recording with its timeline, a
real MP4 composite and a sound-only participant file (made with ffmpeg, stored through the
spool and the upload outbox like any document), segments and transcript lines.

The JSON API gives the timeline, the files with their hashes and media URLs, a summary of
the segments and the lines on the recording's clock; the media route serves the whole
file and single byte ranges (from the spool, then from the store), refuses a range past
the end, audits a playback start but not a seek, and audits every download; people who
may not see the dispute are told there is no such recording; the page renders."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy
from sqlalchemy import func, select, update

from server.auth.principal import Principal
from server.config import Settings
from server.context import OUTBOX
from server.db.engine import Database
from server.db.models import (
    AuditEvent,
    CaseSession,
    Dispute,
    Job,
    Recording,
    RecordingEvent,
    RecordingFile,
    StoredObject,
    TranscriptLine,
    User,
)
from server.domain.documents import DEFAULT_LIMITS, DocumentKind
from server.domain.roles import Role
from server.services import recordings
from server.services.documents import store_document
from storage.spool import Spool
from tests.support import Clients

Client = TestClient[Any, Any]
ZHANG, WANG = "13800000001", "13800000003"

# (offset in the recording, speaker, seat, text, hidden)
LINES: tuple[tuple[float, str, str, str, bool], ...] = (
    (3.0, "张三", "Applicant", "我借给他五万元", False),
    (9.0, "李四", "Respondent", "我确实借了钱", False),
    (12.0, "李四", "Respondent", "这一行已被合并", True),
    (15.0, "张三", "Applicant", "约定一年后归还", False),
)
# (kind, offset, reason, subject)
EVENTS = (
    ("started", 0.0, "", ""),
    ("joined", 0.5, "", "张三"),
    ("paused", 4.0, "recess", ""),
    ("resumed", 6.0, "", ""),
    ("dropped", 7.0, "", "李四"),
    ("reconnected", 8.0, "", "李四"),
    ("recorder_error", 10.0, "", ""),
    ("stopped", 20.0, "", ""),
)
CLOCK_LEAD = 2.0  # the room's clock began this long before the recording did


def ffmpeg(*args: str) -> None:
    executable = shutil.which("ffmpeg")
    if executable is None:
        pytest.fail("these tests need the ffmpeg binary on PATH")
    subprocess.run(
        [executable, "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def make_mp4(path: Path, seconds: float) -> bytes:
    """A real H.264 + AAC MP4: the test pattern with a tone, a keyframe every second."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=320x240:rate=15",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(path),
    )  # fmt: skip
    return path.read_bytes()


def make_webm_audio(path: Path, seconds: float) -> bytes:
    """A sound-only WebM (Opus), as a participant's microphone file is."""
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}",
        "-c:a", "libopus", str(path),
    )  # fmt: skip
    return path.read_bytes()


@dataclass(frozen=True)
class Media:
    composite: bytes
    participant: bytes


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    folder = tmp_path_factory.mktemp("recording-media")
    return Media(
        make_mp4(folder / "composite.mp4", 3),
        make_webm_audio(folder / "zhang.webm", 3),
    )


@dataclass(frozen=True)
class Seeded:
    session_id: int
    dispute_id: int
    case_number: str
    recording_id: int
    composite_id: int  # RecordingFile ids
    participant_id: int | None
    composite_object_id: int


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _store(
    db: Any, spool: Spool, principal: Principal, dispute_id: int, filename: str, data: bytes
) -> tuple[int, int, str]:
    """A recording document stored the way every document is: spooled, then uploaded."""
    spooled = await spool.receive(_once(data), limit=DEFAULT_LIMITS[DocumentKind.RECORDING])
    document, stored = await store_document(
        db,
        spool,
        spooled,
        principal=principal,
        dispute_id=dispute_id,
        kind=DocumentKind.RECORDING,
        filename=filename,
    )
    return document.id, stored.id, stored.sha256


async def seed_recording(
    settings: Settings,
    composite: bytes,
    participant: bytes | None = None,
    *,
    duration: float = 3.0,
    lines: tuple[tuple[float, str, str, str, bool], ...] = LINES,
) -> Seeded:
    """The demo mediation with a stopped recording: its timeline, two segments, the
    composite (and a participant's sound-only file) and transcript lines."""
    spool = Spool(settings.data_dir / "spool")
    database = Database(settings.database_url)
    try:
        async with database.transaction() as db:
            case_session = await db.scalar(select(CaseSession).where(CaseSession.dispute_id == 1))
            assert case_session is not None
            dispute = await db.get(Dispute, case_session.dispute_id)
            assert dispute is not None
            clerk = await db.scalar(select(User).where(User.username == "shujiyuan"))
            assert clerk is not None
            principal = Principal(clerk.id, Role.CLERK, clerk.name, clerk.court_id, 0, "test")
            started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
            recording = Recording(
                session_id=case_session.id,
                dispute_id=dispute.id,
                state="stopped",
                started_at=started,
                ended_at=started + timedelta(seconds=20),
                alive_at=started + timedelta(seconds=20),
                runs=1,
                manifest_sha256="ab" * 32,
            )
            db.add(recording)
            await db.flush()
            for kind, offset, reason, subject in EVENTS:
                db.add(
                    RecordingEvent(
                        recording_id=recording.id,
                        at=started + timedelta(seconds=offset),
                        offset=offset,
                        kind=kind,
                        reason=reason,
                        subject=subject,
                    )
                )
            for index, (track, kind) in enumerate(
                (("user-8.mic", "audio"), ("user-8.camera", "video"))
            ):
                data = f"segment {index}".encode()
                key = recordings.segment_key(dispute.id)
                await spool.put_bytes(key, data)
                await recordings.add_segment(
                    db, recording, key=key, run=1, track=track, identity="user:8", name="张三",
                    seat="Applicant", source="mic" if kind == "audio" else "camera", kind=kind,
                    index=0, start=0.0, end=20.0, packets=10, size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )  # fmt: skip
            document_id, object_id, sha256 = await _store(
                db, spool, principal, dispute.id, "composite.mp4", composite
            )
            whole = RecordingFile(
                recording_id=recording.id,
                role="composite",
                document_id=document_id,
                duration=duration,
                has_video=True,
                sha256=sha256,
            )
            db.add(whole)
            one = None
            if participant is not None:
                document_id, _, sha256 = await _store(
                    db, spool, principal, dispute.id, "zhang.webm", participant
                )
                one = RecordingFile(
                    recording_id=recording.id,
                    role="participant",
                    identity="user:8",
                    name="张三",
                    seat="Applicant",
                    document_id=document_id,
                    duration=duration,
                    has_video=False,
                    sha256=sha256,
                )
                db.add(one)
            clock_start = started - timedelta(seconds=CLOCK_LEAD)
            for offset, name, seat, text, hidden in lines:
                db.add(
                    TranscriptLine(
                        session_id=case_session.id,
                        dispute_id=dispute.id,
                        identity=f"user:{name}",
                        name=name,
                        seat=seat,
                        clock_start=clock_start,
                        start=offset + CLOCK_LEAD,
                        end=offset + CLOCK_LEAD + 2.0,
                        text=text,
                        hidden=hidden,
                    )
                )
            await db.flush()
            return Seeded(
                session_id=case_session.id,
                dispute_id=dispute.id,
                case_number=dispute.number,
                recording_id=recording.id,
                composite_id=whole.id,
                participant_id=one.id if one else None,
                composite_object_id=object_id,
            )
    finally:
        await database.dispose()


async def audit_count(settings: Settings, action: str) -> int:
    database = Database(settings.database_url)
    try:
        async with database.transaction(write=False) as db:
            count = await db.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
            )
            return int(count or 0)
    finally:
        await database.dispose()


async def object_status(settings: Settings, object_id: int) -> str:
    database = Database(settings.database_url)
    try:
        async with database.transaction(write=False) as db:
            stored = await db.get(StoredObject, object_id)
            assert stored is not None
            return stored.status
    finally:
        await database.dispose()


def media_path(file_id: int) -> str:
    return f"/api/v1/recording-files/{file_id}/media"


async def fetch(
    client: Client, path: str, **headers: str
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    response = await client.get(path, headers=headers)
    return response.status, response.headers, bytes(await response.read())


async def test_the_api_gives_the_timeline_the_files_and_the_lines_on_the_recordings_clock(
    clients: Clients, media: Media
) -> None:
    clerk = await clients.staff("shujiyuan")
    session_id = (
        await seed_recording(clients.settings, media.composite, media.participant)
    ).session_id
    response = await clerk.get(f"/api/v1/sessions/{session_id}/recording")
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["state"] == "stopped" and data["playback"] == "ready"
    assert data["manifest_sha256"] == "ab" * 32
    assert [(e["kind"], e["offset"]) for e in data["events"]] == [(k, o) for k, o, _, _ in EVENTS]
    paused = next(e for e in data["events"] if e["kind"] == "paused")
    assert paused["reason"] == "recess" and paused["reason_label"]
    assert all(e["at_local"] and e["label"] for e in data["events"])

    composite, participant = data["files"]
    assert composite["role"] == "composite" and composite["has_video"] is True
    assert composite["sha256"] == hashlib.sha256(media.composite).hexdigest()
    assert composite["size"] == len(media.composite)
    assert composite["content_type"] == "video/mp4"
    assert composite["media_url"] == media_path(composite["id"])
    assert participant["role"] == "participant" and participant["name"] == "张三"
    assert participant["has_video"] is False and participant["content_type"] == "audio/webm"
    assert participant["sha256"] == hashlib.sha256(media.participant).hexdigest()

    segments = data["segments"]
    assert segments["count"] == 2 and segments["bytes"] == len(b"segment 0") * 2
    assert {t["track"] for t in segments["tracks"]} == {"user-8.mic", "user-8.camera"}

    # hidden lines stay out; each line sits at its offset on the recording's clock
    shown = [(line["offset"], line["name"], line["text"]) for line in data["lines"]]
    assert shown == [(o, n, t) for o, n, _, t, hidden in LINES if not hidden]
    assert data["compose_job"] is None


async def test_a_session_without_a_recording_says_so(clients: Clients) -> None:
    clerk = await clients.staff("shujiyuan")
    session_id = await _demo_session_id(clients.settings)
    data = await (await clerk.get(f"/api/v1/sessions/{session_id}/recording")).json()
    assert data["state"] == "none" and data["playback"] == "none"
    assert data["files"] == [] and data["events"] == [] and data["lines"] == []
    page = await clerk.get(f"/sessions/{session_id}/recording")
    assert page.status == 200
    html = await page.text()
    assert 'id="recording-state"' in html and 'id="recording-media"' not in html


async def _demo_session_id(settings: Settings) -> int:
    database = Database(settings.database_url)
    try:
        async with database.transaction(write=False) as db:
            found = await db.scalar(select(CaseSession.id).where(CaseSession.dispute_id == 1))
            assert found is not None
            return found
    finally:
        await database.dispose()


async def test_the_media_route_serves_the_whole_file_and_byte_ranges(
    clients: Clients, media: Media
) -> None:
    seeded = await seed_recording(clients.settings, media.composite, media.participant)
    clerk = await clients.staff("shujiyuan")
    data, size = media.composite, len(media.composite)
    path = media_path(seeded.composite_id)
    sha256 = hashlib.sha256(data).hexdigest()
    assert await object_status(clients.settings, seeded.composite_object_id) == "pending"

    status, headers, body = await fetch(clerk, path)  # from the spool
    assert status == 200 and body == data
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{sha256}"'
    assert headers["Content-Disposition"].startswith("inline;")

    status, headers, body = await fetch(clerk, path, Range="bytes=100-199")
    assert status == 206 and body == data[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{size}"
    assert headers["Content-Length"] == "100"

    # once the outbox has taken it to the store, it is read from there
    clients.server.app[OUTBOX].wake()
    for _ in range(200):
        if await object_status(clients.settings, seeded.composite_object_id) == "stored":
            break
        await asyncio.sleep(0.05)
    assert await object_status(clients.settings, seeded.composite_object_id) == "stored"
    status, headers, body = await fetch(clerk, path, Range=f"bytes={size - 50}-")
    assert status == 206 and body == data[-50:]
    assert headers["Content-Range"] == f"bytes {size - 50}-{size - 1}/{size}"
    status, _, body = await fetch(clerk, path, Range="bytes=-10")
    assert status == 206 and body == data[-10:]
    status, _, body = await fetch(clerk, path, Range="bytes=0-9")
    assert status == 206 and body == data[:10]

    # a range the file does not have
    status, headers, body = await fetch(clerk, path, Range=f"bytes={size}-")
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"
    # a range asked against another version of the file: the whole file instead
    status, _, body = await fetch(clerk, path, Range="bytes=0-9", **{"If-Range": '"other"'})
    assert status == 200 and body == data

    assert seeded.participant_id is not None
    status, headers, body = await fetch(clerk, media_path(seeded.participant_id))
    assert status == 200 and body == media.participant
    assert headers["Content-Type"] == "audio/webm"


async def test_a_playback_start_is_audited_once_and_every_download_is(
    clients: Clients, media: Media
) -> None:
    seeded = await seed_recording(clients.settings, media.composite)
    zhang = await clients.party(ZHANG)  # a party reads the recording of his own dispute
    path = media_path(seeded.composite_id)
    played = await audit_count(clients.settings, "recording.played")

    assert (await fetch(zhang, path, Range="bytes=0-"))[0] == 206  # the player starts
    assert await audit_count(clients.settings, "recording.played") == played + 1
    for seek in ("bytes=5000-", "bytes=200-299"):  # and seeks: not a new playback
        assert (await fetch(zhang, path, Range=seek))[0] == 206
    assert await audit_count(clients.settings, "recording.played") == played + 1
    head = await zhang.head(path)  # what a player may ask before it plays
    assert head.status == 200 and head.headers["Content-Length"] == str(len(media.composite))
    assert await audit_count(clients.settings, "recording.played") == played + 1
    assert (await fetch(zhang, path))[0] == 200  # played again from the start
    assert await audit_count(clients.settings, "recording.played") == played + 2

    downloaded = await audit_count(clients.settings, "recording.downloaded")
    status, headers, body = await fetch(zhang, f"{path}?download=1")
    assert status == 200 and body == media.composite
    disposition = headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote(seeded.case_number, safe='')}" in disposition
    assert disposition.endswith(".mp4")
    assert (await fetch(zhang, f"{path}?download=1"))[0] == 200
    assert await audit_count(clients.settings, "recording.downloaded") == downloaded + 2
    assert await audit_count(clients.settings, "recording.played") == played + 2


async def test_people_who_may_not_see_the_dispute_are_refused(
    clients: Clients, media: Media
) -> None:
    seeded = await seed_recording(clients.settings, media.composite)
    wang = await clients.party(WANG)  # 王五 is not on the demo loan dispute
    denied = await audit_count(clients.settings, "access.denied")
    api = f"/api/v1/sessions/{seeded.session_id}/recording"
    response = await wang.get(api)
    assert response.status == 404
    message = (await response.json())["error"]["message"]
    # the same words for a session that does not exist at all
    response = await wang.get("/api/v1/sessions/999999/recording")
    assert response.status == 404 and (await response.json())["error"]["message"] == message
    status, _, body = await fetch(wang, media_path(seeded.composite_id), Range="bytes=0-")
    assert status == 404 and media.composite[:100] not in body
    assert (await wang.get(f"/sessions/{seeded.session_id}/recording")).status == 404
    assert await audit_count(clients.settings, "access.denied") >= denied + 3
    assert await audit_count(clients.settings, "recording.played") == 0

    anonymous = await clients.new()
    assert (await anonymous.get(api)).status == 401
    assert (await anonymous.get(media_path(seeded.composite_id))).status == 401
    page = await anonymous.get(f"/sessions/{seeded.session_id}/recording", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/login")

    zhang = await clients.party(ZHANG)
    assert (await zhang.get(api)).status == 200


async def test_the_page_shows_the_player_the_lines_the_timeline_and_the_hashes(
    clients: Clients, media: Media
) -> None:
    seeded = await seed_recording(clients.settings, media.composite, media.participant)
    clerk = await clients.staff("shujiyuan")
    clerk.session.cookie_jar.update_cookies({"yz_lang": "en"})
    response = await clerk.get(f"/sessions/{seeded.session_id}/recording")
    assert response.status == 200, await response.text()
    html = await response.text()
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert '<video id="recording-media"' in html
    assert f'src="{media_path(seeded.composite_id)}"' in html
    assert f'data-src="{media_path(seeded.participant_id or 0)}"' in html
    assert 'data-has-video="false"' in html
    for offset, _, _, text, hidden in LINES:
        assert (text in html) is not hidden
        if not hidden:
            assert f'data-offset="{offset}"' in html
    assert hashlib.sha256(media.composite).hexdigest() in html
    assert hashlib.sha256(media.participant).hexdigest() in html
    for kind, _, _, _ in EVENTS:
        assert f'data-kind="{kind}"' in html
    assert "Recess" in html and "Recording paused" in html
    assert "Compose again" in html  # the court's staff may have the files made again
    assert "js/recording.js" in html and "<script>" not in html

    assert 'id="hold-form" class="stack" data-hold="true"' in html  # the clerk may hold it

    zhang = await clients.party(ZHANG)
    html = await (await zhang.get(f"/sessions/{seeded.session_id}/recording")).text()
    assert '<video id="recording-media"' in html and 'data-action="compose"' not in html
    assert 'id="hold-form"' not in html

    # once held, the clerk's page says so and offers to release it
    response = await clients.post_json(
        clerk,
        f"/api/v1/sessions/{seeded.session_id}/recording/hold",
        {"hold": True, "reason": "上诉期内保留"},
    )
    assert response.status == 200, await response.text()
    html = await (await clerk.get(f"/sessions/{seeded.session_id}/recording")).text()
    assert 'id="recording-hold"' in html and "上诉期内保留" in html
    assert 'data-hold="false"' in html


async def test_the_staff_ask_for_the_files_to_be_composed_again(
    clients: Clients, media: Media
) -> None:
    seeded = await seed_recording(clients.settings, media.composite)
    clerk = await clients.staff("shujiyuan")
    path = f"/api/v1/sessions/{seeded.session_id}/recording/compose"
    zhang = await clients.party(ZHANG)
    assert (await clients.post_json(zhang, path, {})).status == 403  # parties may not
    assert (await clerk.post(path, json={})).status == 403  # no CSRF token
    response = await clients.post_json(clerk, path, {})
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["job"]["id"] == answer["job_id"]
    data = await (await clerk.get(f"/api/v1/sessions/{seeded.session_id}/recording")).json()
    assert data["compose_job"]["id"] == answer["job_id"]


async def test_the_page_tells_what_became_of_a_recording_without_files(clients: Clients) -> None:
    session_id = await _demo_session_id(clients.settings)
    database = Database(clients.settings.database_url)
    clerk = await clients.staff("shujiyuan")
    clerk.session.cookie_jar.update_cookies({"yz_lang": "en"})

    async def shown() -> tuple[dict[str, Any], str]:
        data = await (await clerk.get(f"/api/v1/sessions/{session_id}/recording")).json()
        page = await clerk.get(f"/sessions/{session_id}/recording")
        assert page.status == 200, await page.text()
        return data, await page.text()

    try:
        async with database.transaction() as db:
            recording = Recording(session_id=session_id, dispute_id=1, state="recording")
            db.add(recording)
        data, html = await shown()
        assert data["playback"] == "in_progress"
        assert "Recording in progress" in html and 'id="recording-media"' not in html
        assert 'data-action="compose"' not in html  # nothing to compose yet

        async with database.transaction() as db:
            await db.execute(update(Recording).values(state="stopped"))
        data, html = await shown()
        assert data["playback"] == "not_composed"
        assert "have not been made yet" in html
        assert 'data-action="compose"' not in html  # no segment: nothing to compose

        async with database.transaction() as db:
            job = Job(
                kind="recording_compose",
                state="running",
                progress=0.4,
                dispute_id=1,
                session_id=session_id,
                heartbeat_at=datetime.now(UTC),
            )
            db.add(job)
            await db.flush()
            job_id = job.id
        data, html = await shown()
        assert data["playback"] == "composing"
        assert data["compose_job"]["id"] == job_id and data["compose_job"]["state"] == "running"
        assert f'data-job="{job_id}" data-state="running"' in html
        assert "js/jobs.js" in html

        async with database.transaction() as db:
            await db.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state="failed", error="ffmpeg exited with status 1")
            )
        data, html = await shown()
        assert data["playback"] == "not_composed" and data["compose_job"]["state"] == "failed"
        assert "ffmpeg exited" in html  # the technical reason, for the court's staff
        zhang = await clients.party(ZHANG)
        page = await zhang.get(f"/sessions/{session_id}/recording")
        assert page.status == 200
        html = await page.text()
        assert 'role="alert"' in html and "ffmpeg exited" not in html

        async with database.transaction() as db:
            await db.execute(update(Recording).values(state="purged"))
        data, html = await shown()
        assert data["playback"] == "purged" and data["files"] == []
    finally:
        await database.dispose()
