"""The electronic transcript on both databases: lines as recognised, the clerk's
corrections kept as versions (who, when), merging, splitting, undisputed facts, and who
may read or change it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from server.db.engine import Database
from server.db.models import AuditEvent, CaseSession, DisputeStaff, User
from server.domain.roles import DisputeRole
from server.services import transcripts
from server.services.transcripts import Heard
from tests.support import Clients

ZHANG, WANG = "13800000001", "13800000003"


async def with_lines(clients: Clients) -> tuple[int, list[int]]:
    """The demo mediation with three recognised lines, and the clerk on the dispute."""
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            session_id = await session.scalar(
                select(CaseSession.id).where(CaseSession.dispute_id == 1)
            )
            assert session_id is not None
            clerk = await session.scalar(select(User).where(User.username == "shujiyuan"))
            assert clerk is not None
            on_it = await session.scalar(
                select(DisputeStaff.id).where(
                    DisputeStaff.dispute_id == 1, DisputeStaff.user_id == clerk.id
                )
            )
            if on_it is None:
                session.add(DisputeStaff(dispute_id=1, user_id=clerk.id, role=DisputeRole.CLERK))
            clock = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
            ids = []
            for start, who, seat, text in (
                (1.0, "张三", "Applicant", "我借给他五万元"),
                (4.0, "张三", "Applicant", "约定一年后归还"),
                (8.0, "李四", "Respondent", "我确实借了钱"),
            ):
                line = await transcripts.record(
                    session,
                    Heard(
                        session_id,
                        1,
                        f"user:{who}",
                        who,
                        seat,
                        clock,
                        start,
                        start + 2.5,
                        text,
                        "zh",
                    ),
                )
                ids.append(line.id)
    finally:
        await db.dispose()
    return session_id, ids


async def post(clients: Clients, client: Any, path: str, body: Any) -> Any:
    return await clients.post_json(client, path, body)


async def test_the_clerk_corrects_a_line_and_every_version_is_kept(clients: Clients) -> None:
    session_id, ids = await with_lines(clients)
    clerk = await clients.staff("shujiyuan")
    response = await post(
        clients,
        clerk,
        f"/api/v1/transcript/lines/{ids[0]}",
        {"text": "我借给他五万元整", "version": 1},
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["version"] == 2
    # a second clerk working from the old version is told to reload, nothing is lost
    response = await post(
        clients, clerk, f"/api/v1/transcript/lines/{ids[0]}", {"text": "别的", "version": 1}
    )
    assert response.status == 409
    assert "第 2 版" in (await response.json())["error"]["message"]
    response = await clerk.get(f"/api/v1/transcript/lines/{ids[0]}/history")
    versions = (await response.json())["items"]
    assert [(v["version"], v["text"], v["action"]) for v in versions] == [
        (1, "我借给他五万元", "recognised"),
        (2, "我借给他五万元整", "corrected"),
    ]
    assert versions[1]["by"] == "卫书记员"
    response = await clerk.get(f"/api/v1/sessions/{session_id}/transcript")
    assert (await response.json())["items"][0]["text"] == "我借给他五万元整"

    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            audited = await session.scalar(
                select(AuditEvent).where(AuditEvent.action == "transcript.corrected")
            )
    finally:
        await db.dispose()
    assert audited is not None


async def test_merging_splitting_and_marking_undisputed_facts(clients: Clients) -> None:
    session_id, ids = await with_lines(clients)
    clerk = await clients.staff("shujiyuan")
    response = await post(
        clients, clerk, f"/api/v1/transcript/lines/{ids[0]}/merge", {"with_line": ids[2]}
    )
    assert response.status == 400  # another speaker
    response = await post(
        clients, clerk, f"/api/v1/transcript/lines/{ids[0]}/merge", {"with_line": ids[1]}
    )
    assert response.status == 200
    merged = await response.json()
    assert merged["text"] == "我借给他五万元约定一年后归还"
    assert merged["end"] == 6.5

    response = await post(clients, clerk, f"/api/v1/transcript/lines/{ids[0]}/split", {"at": 7})
    assert response.status == 200
    head, tail = (await response.json())["items"]
    assert (head["text"], tail["text"]) == ("我借给他五万元", "约定一年后归还")
    assert head["end"] == tail["start"]

    response = await post(
        clients, clerk, f"/api/v1/transcript/lines/{ids[2]}/undisputed", {"undisputed": True}
    )
    assert (await response.json())["undisputed"] is True
    lines = (await (await clerk.get(f"/api/v1/sessions/{session_id}/transcript")).json())["items"]
    assert [line["text"] for line in lines] == ["我借给他五万元", "约定一年后归还", "我确实借了钱"]
    assert [line["undisputed"] for line in lines] == [False, False, True]

    page = await (await clerk.get(f"/sessions/{session_id}/transcript")).text()
    assert "约定一年后归还" in page and 'data-may-edit="true"' in page
    dispute = await (await clerk.get("/disputes/1")).text()
    assert f'href="/sessions/{session_id}/transcript"' in dispute


async def test_parties_read_their_own_transcript_but_cannot_change_it(clients: Clients) -> None:
    session_id, ids = await with_lines(clients)
    zhang = await clients.party(ZHANG)
    response = await zhang.get(f"/api/v1/sessions/{session_id}/transcript")
    assert response.status == 200
    assert len((await response.json())["items"]) == 3
    response = await post(clients, zhang, f"/api/v1/transcript/lines/{ids[0]}", {"text": "改了"})
    assert response.status in (403, 404)
    wang = await clients.party(WANG)
    response = await wang.get(f"/api/v1/sessions/{session_id}/transcript")
    assert response.status == 404
    response = await post(
        clients,
        await clients.staff("shujiyuan"),
        f"/api/v1/transcript/lines/{ids[0]}",
        {"text": "  "},
    )
    assert response.status == 400


async def test_the_transcript_downloads_as_text_webvtt_srt_and_json(clients: Clients) -> None:
    session_id, _ = await with_lines(clients)
    zhang = await clients.party(ZHANG)
    response = await zhang.get(f"/sessions/{session_id}/transcript.vtt")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/vtt")
    vtt = await response.text()
    assert vtt.startswith("WEBVTT")
    assert "<v 张三 (申请人)>" in vtt and "00:00:08.000 --> 00:00:10.500" in vtt
    srt = await (await zhang.get(f"/sessions/{session_id}/transcript.srt")).text()
    assert srt.startswith("1\n") and "00:00:01,000 --> " in srt
    text = await (await zhang.get(f"/sessions/{session_id}/transcript.txt")).text()
    assert "我确实借了钱" in text
    response = await zhang.get(f"/sessions/{session_id}/transcript.json")
    assert response.status == 200
    assert (await zhang.get(f"/sessions/{session_id}/transcript.exe")).status == 404
    wang = await clients.party(WANG)
    assert (await wang.get(f"/sessions/{session_id}/transcript.txt")).status == 404
