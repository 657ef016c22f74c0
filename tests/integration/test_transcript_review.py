"""The parties' review of a transcript (笔录核对) on both databases: the clerk opens it
once the session is over, each party confirms the exact version (by its hash, after a
fresh one-time code) or objects to it (补正), a correction makes a new version, and the
clerk freezes the transcript with its hash, after which it no longer changes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select, update

from server.db.engine import Database
from server.db.models import (
    AuditEvent,
    CaseSession,
    LoginSession,
    RoomLogEntry,
    TranscriptLine,
    TranscriptReview,
    TranscriptSignoff,
    User,
)
from server.services import transcript_review
from tests.integration.test_transcripts import with_lines
from tests.support import Clients

ZHANG, LI, WANG = "13800000001", "13800000002", "13800000003"

Client = TestClient[Any, Any]


async def run_sql(clients: Clients, *statements: Any) -> None:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            for statement in statements:
                await session.execute(statement)
    finally:
        await db.dispose()


async def audited(clients: Clients, action: str) -> list[AuditEvent]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            rows = await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
            return list(rows.all())
    finally:
        await db.dispose()


async def session_ended(clients: Clients) -> tuple[int, list[int]]:
    """The demo mediation with three lines, held (closed by its mediator)."""
    session_id, ids = await with_lines(clients)
    await run_sql(
        clients,
        update(CaseSession).where(CaseSession.id == session_id).values(status="held"),
    )
    return session_id, ids


def review_path(session_id: int, action: str = "") -> str:
    base = f"/api/v1/sessions/{session_id}/transcript/review"
    return f"{base}/{action}" if action else base


async def state(client: Client, session_id: int) -> dict[str, Any]:
    response = await client.get(review_path(session_id))
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def act(clients: Clients, client: Client, session_id: int, action: str, body: Any) -> Any:
    return await clients.post_json(client, review_path(session_id, action), body)


async def opened(clients: Clients) -> tuple[int, list[int], Client, str]:
    """A held session whose review the clerk has opened: the clerk and the hash."""
    session_id, ids = await session_ended(clients)
    clerk = await clients.staff("shujiyuan")
    response = await act(clients, clerk, session_id, "open", {})
    assert response.status == 201, await response.text()
    return session_id, ids, clerk, (await response.json())["sha256"]


def expected_hash(lines: list[dict[str, Any]], seats: list[str]) -> str:
    """SHA-256 of the canonical JSON of the lines as the transcript shows them."""
    canonical = json.dumps(
        [
            {
                "id": line["id"],
                "seat": seat,
                "name": line["name"],
                "start": line["start"],
                "end": line["end"],
                "text": line["text"],
                "undisputed": line["undisputed"],
            }
            for line, seat in zip(lines, seats, strict=True)
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def stale_code(clients: Clients, phone: str) -> None:
    """The party's last one-time code is an hour old."""
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            user_id = await session.scalar(select(User.id).where(User.phone == phone))
            await session.execute(
                update(LoginSession)
                .where(LoginSession.user_id == user_id)
                .values(reverified_at=datetime.now(UTC) - timedelta(hours=1))
            )
    finally:
        await db.dispose()


async def test_a_party_objects_the_clerk_corrects_both_confirm_and_the_clerk_freezes(
    clients: Clients,
) -> None:
    session_id, ids = await session_ended(clients)
    clerk = await clients.staff("shujiyuan")
    before = await state(clerk, session_id)
    assert before["state"] == "none" and before["may_open"] is True

    response = await act(clients, clerk, session_id, "open", {})
    assert response.status == 201, await response.text()
    first = await response.json()
    assert first["state"] == "open"
    lines = (await (await clerk.get(f"/api/v1/sessions/{session_id}/transcript")).json())["items"]
    assert first["sha256"] == expected_hash(lines, ["Applicant", "Applicant", "Respondent"])
    assert [party["name"] for party in first["parties"]] == ["张三", "李四"]
    assert first["missing"] == first["parties"]

    # each party sees the exact version on the transcript page
    zhang, li = await clients.party(ZHANG), await clients.party(LI)
    page = await (await zhang.get(f"/sessions/{session_id}/transcript")).text()
    assert first["sha256"] in page and 'data-review="confirm"' in page
    assert (await state(zhang, session_id))["may_answer"] is True

    response = await act(
        clients,
        zhang,
        session_id,
        "object",
        {"sha256": first["sha256"], "text": "应为五万元整", "line_id": ids[0]},
    )
    assert response.status == 200, await response.text()
    objected = await response.json()
    assert [a["decision"] for a in objected["mine"]] == ["objected"]
    assert objected["may_answer"] is False

    # the clerk corrects the line: a new version, whose hash the parties now answer
    response = await clients.post_json(
        clerk, f"/api/v1/transcript/lines/{ids[0]}", {"text": "我借给他五万元整"}
    )
    assert response.status == 200
    second = await state(clerk, session_id)
    assert second["sha256"] != first["sha256"]
    assert [o["objection"] for o in second["objections"]] == ["应为五万元整"]
    assert second["objections"][0]["current"] is False
    mine = await state(zhang, session_id)
    assert mine["changed_since_answer"] is True and mine["may_answer"] is True
    page = await (await zhang.get(f"/sessions/{session_id}/transcript")).text()
    assert second["sha256"] in page and first["sha256"] not in page

    for party in (zhang, li):
        response = await act(clients, party, session_id, "confirm", {"sha256": second["sha256"]})
        assert response.status == 200, await response.text()
    answered = await state(clerk, session_id)
    assert [p["answer"]["decision"] for p in answered["parties"]] == ["confirmed", "confirmed"]
    assert {p["answer"]["verified_by"] for p in answered["parties"]} == {"one_time_code"}
    assert answered["missing"] == [] and answered["may_freeze"] is True

    response = await act(clients, clerk, session_id, "freeze", {"sha256": second["sha256"]})
    assert response.status == 200, await response.text()
    frozen = await response.json()
    assert frozen["state"] == "frozen" and frozen["sha256"] == second["sha256"]
    assert frozen["frozen_by"] == "卫书记员"
    assert frozen["verification"]["ok"] is True
    response = await zhang.get(review_path(session_id, "verify"))
    assert await response.json() == {
        "sha256": second["sha256"],
        "recomputed": second["sha256"],
        "text_matches": True,
        "lines_match": True,
        "ok": True,
    }

    # the frozen record, as documents read it
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            record = await transcript_review.frozen_review(session, session_id)
            stored = await session.scalar(select(TranscriptReview))
    finally:
        await db.dispose()
    assert record is not None and stored is not None
    assert stored.sha256 == second["sha256"]
    assert hashlib.sha256(stored.frozen_text.encode()).hexdigest() == stored.sha256
    assert [(s.name, s.decision) for s in record.signoffs] == [
        ("张三", "confirmed"),
        ("李四", "confirmed"),
    ]
    assert [o.objection for o in record.objections] == ["应为五万元整"]
    assert transcript_review.frozen_lines(record)[0]["text"] == "我借给他五万元整"

    # nothing changes any more
    for path, body in (
        (f"/api/v1/transcript/lines/{ids[0]}", {"text": "改"}),
        (f"/api/v1/transcript/lines/{ids[2]}/undisputed", {"undisputed": True}),
        (f"/api/v1/transcript/lines/{ids[0]}/merge", {"with_line": ids[1]}),
        (f"/api/v1/transcript/lines/{ids[0]}/split", {"at": 2}),
    ):
        response = await clients.post_json(clerk, path, body)
        assert response.status == 409, path
        assert (await response.json())["error"]["code"] == "conflict"
    response = await act(
        clients, li, session_id, "object", {"sha256": second["sha256"], "text": "晚了"}
    )
    assert response.status == 409
    page = await (await clerk.get(f"/sessions/{session_id}/transcript")).text()
    assert 'data-may-edit="false"' in page and second["sha256"] in page

    for action in (
        "transcript.review_opened",
        "transcript.objected",
        "transcript.review_changed",
        "transcript.frozen",
    ):
        assert len(await audited(clients, action)) == 1, action
    confirmed = await audited(clients, "transcript.confirmed")
    assert [row.details["sha256"] for row in confirmed] == [second["sha256"]] * 2
    assert (await audited(clients, "transcript.frozen"))[0].details["sha256"] == second["sha256"]


async def test_confirming_needs_a_fresh_one_time_code(clients: Clients) -> None:
    session_id, _, _, sha256 = await opened(clients)
    zhang = await clients.party(ZHANG)
    await stale_code(clients, ZHANG)
    response = await act(clients, zhang, session_id, "confirm", {"sha256": sha256})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "reverification_required"
    assert (await state(zhang, session_id))["mine"] == []

    assert (await clients.post_json(zhang, "/api/v1/me/reverify/send", {})).status == 202
    code = await clients.latest_code(ZHANG)
    assert (await clients.post_json(zhang, "/api/v1/me/reverify", {"code": code})).status == 200
    response = await act(clients, zhang, session_id, "confirm", {"sha256": sha256})
    assert response.status == 200, await response.text()
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            signoff = await session.scalar(select(TranscriptSignoff))
    finally:
        await db.dispose()
    assert signoff is not None
    assert (signoff.name, signoff.seat, signoff.decision) == ("张三", "Applicant", "confirmed")
    assert signoff.sha256 == sha256 and signoff.verified_by == "one_time_code"
    assert signoff.ip == "127.0.0.1" and signoff.user_agent


async def test_a_stale_version_a_second_answer_and_bad_objections_are_refused(
    clients: Clients,
) -> None:
    session_id, ids, clerk, sha256 = await opened(clients)
    zhang = await clients.party(ZHANG)
    response = await act(clients, zhang, session_id, "confirm", {"sha256": "0" * 64})
    assert response.status == 409
    response = await act(clients, zhang, session_id, "confirm", {"sha256": "not a hash"})
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "sha256"
    for text in ("  ", "长" * 2001):
        response = await act(clients, zhang, session_id, "object", {"sha256": sha256, "text": text})
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "text"
    response = await act(
        clients, zhang, session_id, "object", {"sha256": sha256, "text": "错", "line_id": 999_999}
    )
    assert response.status == 400

    assert (await act(clients, zhang, session_id, "confirm", {"sha256": sha256})).status == 200
    for action, body in (
        ("confirm", {"sha256": sha256}),
        ("object", {"sha256": sha256, "text": "又想反悔"}),
    ):
        response = await act(clients, zhang, session_id, action, body)
        assert response.status == 409
        assert (await response.json())["error"]["code"] == "conflict"

    # the clerk marks a fact: the version the party confirmed is no longer current
    response = await clients.post_json(
        clerk, f"/api/v1/transcript/lines/{ids[2]}/undisputed", {"undisputed": True}
    )
    assert response.status == 200
    now = await state(zhang, session_id)
    assert now["sha256"] != sha256 and now["changed_since_answer"] is True
    response = await act(clients, zhang, session_id, "confirm", {"sha256": sha256})
    assert response.status == 409
    response = await act(clients, zhang, session_id, "confirm", {"sha256": now["sha256"]})
    assert response.status == 200


async def test_only_the_parties_of_the_dispute_answer(clients: Clients) -> None:
    session_id, _, clerk, sha256 = await opened(clients)
    wang = await clients.party(WANG)  # a party of another dispute
    response = await act(clients, wang, session_id, "confirm", {"sha256": sha256})
    assert response.status == 404
    assert (await wang.get(review_path(session_id))).status == 404
    response = await act(clients, clerk, session_id, "confirm", {"sha256": sha256})
    assert response.status == 403
    judge = await clients.staff("faguan")
    response = await act(clients, judge, session_id, "object", {"sha256": sha256, "text": "错"})
    assert response.status == 403
    denials = await audited(clients, "access.denied")
    assert len(denials) >= 3
    assert {row.outcome for row in denials} == {"denied"}
    # a party opens nothing and freezes nothing
    zhang = await clients.party(ZHANG)
    assert (await act(clients, zhang, session_id, "freeze", {"sha256": sha256})).status == 403
    # staff see every party; a party sees only their own
    assert len((await state(judge, session_id))["parties"]) == 2
    assert [p["name"] for p in (await state(zhang, session_id))["parties"]] == ["张三"]


async def test_freezing_with_a_missing_answer_needs_a_reason_and_records_it(
    clients: Clients,
) -> None:
    session_id, _, clerk, sha256 = await opened(clients)
    zhang = await clients.party(ZHANG)
    assert (await act(clients, zhang, session_id, "confirm", {"sha256": sha256})).status == 200
    zhang_id = (await state(zhang, session_id))["parties"][0]["user_id"]
    li_id = next(
        p["user_id"] for p in (await state(clerk, session_id))["missing"] if p["name"] == "李四"
    )

    response = await act(clients, clerk, session_id, "freeze", {"sha256": sha256})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["field"] == "missing" and "李四" in error["message"]
    response = await act(
        clients,
        clerk,
        session_id,
        "freeze",
        {"sha256": sha256, "missing": [{"user_id": zhang_id, "reason": "absent"}]},
    )
    assert response.status == 400  # 张三 answered: no reason to give for them
    response = await act(
        clients,
        clerk,
        session_id,
        "freeze",
        {"sha256": sha256, "missing": [{"user_id": li_id, "reason": "gone fishing"}]},
    )
    assert response.status == 400
    response = await act(
        clients,
        clerk,
        session_id,
        "freeze",
        {
            "sha256": sha256,
            "missing": [{"user_id": li_id, "reason": "refused", "note": "当庭拒绝签名"}],
        },
    )
    assert response.status == 200, await response.text()
    frozen = await response.json()
    assert frozen["state"] == "frozen"
    recorded = {p["name"]: p["answer"] for p in frozen["parties"]}
    assert recorded["李四"]["decision"] == "refused"
    assert recorded["李四"]["recorded_by"] == "卫书记员"
    assert recorded["李四"]["note"] == "当庭拒绝签名"
    assert recorded["张三"]["decision"] == "confirmed"
    refusal = await audited(clients, "transcript.refused")
    assert len(refusal) == 1 and refusal[0].details["sha256"] == sha256
    assert len(await audited(clients, "transcript.frozen")) == 1
    # freezing twice is refused
    response = await act(clients, clerk, session_id, "freeze", {"sha256": sha256})
    assert response.status == 409


async def test_the_review_opens_only_once_the_session_is_over(clients: Clients) -> None:
    session_id, _ = await with_lines(clients)
    clerk = await clients.staff("shujiyuan")
    await run_sql(
        clients,
        update(CaseSession).where(CaseSession.id == session_id).values(status="open"),
    )
    response = await act(clients, clerk, session_id, "open", {})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "conflict"
    state_now = await state(clerk, session_id)
    assert state_now["over"] is False and state_now["may_open"] is False

    # the host ended the room: the session is over even before it is closed in the case
    at = datetime.now(UTC)
    await run_sql(
        clients,
        insert(RoomLogEntry).values(
            session_id=session_id, dispute_id=1, kind="join", at=at - timedelta(minutes=30)
        ),
        insert(RoomLogEntry).values(session_id=session_id, dispute_id=1, kind="end", at=at),
    )
    zhang = await clients.party(ZHANG)
    assert (await act(clients, zhang, session_id, "open", {})).status == 403
    response = await act(clients, clerk, session_id, "open", {})
    assert response.status == 201, await response.text()
    assert (await act(clients, clerk, session_id, "open", {})).status == 409
    assert len(await audited(clients, "transcript.review_opened")) == 1


async def test_a_frozen_transcript_that_was_tampered_with_fails_its_check(
    clients: Clients,
) -> None:
    session_id, ids, clerk, sha256 = await opened(clients)
    li_zhang = []
    for phone in (ZHANG, LI):
        party = await clients.party(phone)
        assert (await act(clients, party, session_id, "confirm", {"sha256": sha256})).status == 200
        li_zhang.append(party)
    assert (await act(clients, clerk, session_id, "freeze", {"sha256": sha256})).status == 200

    await run_sql(
        clients, update(TranscriptLine).where(TranscriptLine.id == ids[1]).values(text="改过")
    )
    checked = await (await clerk.get(review_path(session_id, "verify"))).json()
    assert checked["text_matches"] is True and checked["lines_match"] is False
    await run_sql(clients, update(TranscriptReview).values(frozen_text="[]"))
    checked = await (await clerk.get(review_path(session_id, "verify"))).json()
    assert checked["text_matches"] is False and checked["ok"] is False
    page = await (await li_zhang[0].get(f"/sessions/{session_id}/transcript")).text()
    assert 'role="alert"' in page
