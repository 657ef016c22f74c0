"""Hearing mode (在线庭审), on SQLite and PostgreSQL: the judge starts, pauses, resumes and
closes; a witness invited by link (no account) waits apart and hears nothing until
called; every step and each join, leave and drop is in the room's log with its time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from server.db.engine import Database
from server.db.models import (
    AuditEvent,
    CaseSession,
    DisputeStaff,
    LoginSession,
    RoomLogEntry,
    User,
)
from server.domain.roles import DisputeRole
from server.rooms.setup import ROOMS
from tests.media.peers import Participant, party_cookie, session_cookie, staff_cookie
from tests.support import Clients

pytestmark = pytest.mark.timeout(120)

ZHANG = "13800000001"


async def hearing_session(clients: Clients) -> int:
    """A hearing of the demo loan dispute, presided over by 褚法官 (faguan)."""
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            judge = await session.scalar(select(User).where(User.username == "faguan"))
            assert judge is not None
            on_it = await session.scalar(
                select(DisputeStaff.id).where(
                    DisputeStaff.dispute_id == 1, DisputeStaff.user_id == judge.id
                )
            )
            if on_it is None:
                session.add(DisputeStaff(dispute_id=1, user_id=judge.id, role=DisputeRole.JUDGE))
            hearing = CaseSession(
                dispute_id=1,
                kind="hearing",
                status="open",
                scheduled_start=datetime.now(UTC) + timedelta(minutes=5),
                host_user_id=judge.id,
            )
            session.add(hearing)
            await session.flush()
            return hearing.id
    finally:
        await db.dispose()


async def rows(clients: Clients, model: Any, *where: Any) -> list[Any]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            return list((await session.scalars(select(model).where(*where))).all())
    finally:
        await db.dispose()


async def stale_verification(clients: Clients) -> None:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            await session.execute(
                update(LoginSession).values(reverified_at=datetime.now(UTC) - timedelta(hours=1))
            )
    finally:
        await db.dispose()


async def test_a_hearing_runs_from_start_to_close_with_a_witness_called_in(
    clients: Clients,
) -> None:
    session_id = await hearing_session(clients)
    judge_client = await clients.staff("faguan")
    judge, party, witness = (Participant(clients, n) for n in ("judge", "party", "witness"))
    try:
        await judge.connect(session_cookie(judge_client))
        answer = await judge.join(session_id)
        assert answer["state"]["kind"] == "hearing"
        assert answer["state"]["my_role"] == "host"
        assert answer["state"]["hearing"]["state"] == "waiting"
        await judge.publish()

        response = await clients.post_json(
            judge_client,
            f"/api/v1/sessions/{session_id}/guests",
            {"name": "赵证人", "role": "witness"},
        )
        assert response.status == 201, await response.text()
        link = (await response.json())["url"]
        token = link.rsplit("/", 1)[1]
        page = await (await clients.new()).get(f"/rooms/guest/{token}")
        assert page.status == 200

        await witness.connect(guest=token)
        answer = await witness.join(session_id)
        assert answer["state"]["my_subroom"] == "witness_wait"
        await witness.publish()

        await party.connect(await party_cookie(clients, ZHANG))
        await party.join(session_id)
        await party.publish()
        await judge.must("room:admit", {"member_id": party.member_id})

        # a party may not run the hearing
        refused = await party.call("hearing:action", {"action": "start"})
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
        await judge.must("hearing:action", {"action": "start"})
        await party.wait_frames(judge.member_id, "camera", 10)
        await asyncio.sleep(1)
        assert witness.received(judge.member_id, "mic") == 0
        assert party.received(witness.member_id, "camera") == 0

        # pausing needs a reason from the list
        refused = await judge.call("hearing:action", {"action": "pause", "reason": "lunch"})
        assert refused["ok"] is False
        await judge.must("hearing:action", {"action": "pause", "reason": "recess"})
        await judge.must("hearing:action", {"action": "resume"})

        # the witness is called in
        await judge.must("room:move", {"member_ids": [witness.member_id], "to": "main"})
        await witness.wait_frames(judge.member_id, "mic", 25)
        await party.wait_frames(witness.member_id, "camera", 10)

        await party.must("room:leave")
        await judge.must("hearing:action", {"action": "close"})
        await witness.next_notice("ended")
        refused = await judge.call("hearing:action", {"action": "resume"})
        assert refused["ok"] is False and refused["error"]["code"] == "conflict"
    finally:
        for person in (judge, party, witness):
            await person.close()

    log = await rows(clients, RoomLogEntry, RoomLogEntry.session_id == session_id)
    kinds = [row.kind for row in log]
    for kind in (
        "join",
        "hearing_start",
        "hearing_pause",
        "hearing_resume",
        "leave",
        "hearing_close",
    ):
        assert kind in kinds, (kind, kinds)
    pause = next(row for row in log if row.kind == "hearing_pause")
    assert pause.detail.get("reason") == "recess"
    assert pause.actor == "褚法官"
    assert all(row.at.tzinfo is not None for row in log)
    assert [row.at for row in log] == sorted(row.at for row in log)
    consents = [row.actor for row in log if row.kind == "consent_recording"]
    assert "赵证人" in consents
    audited = await rows(clients, AuditEvent, AuditEvent.action.like("hearing.%"))
    assert {a.action for a in audited} >= {"hearing.start", "hearing.close"}


async def test_a_restarted_room_resumes_the_hearing_state_from_the_log(clients: Clients) -> None:
    session_id = await hearing_session(clients)
    judge = Participant(clients, "judge")
    try:
        await judge.connect(await staff_cookie(clients, "faguan"))
        await judge.join(session_id)
        await judge.must("hearing:action", {"action": "start"})
        await judge.must("hearing:action", {"action": "pause", "reason": "mediation"})
    finally:
        await judge.close()
    hub = clients.server.app[ROOMS]
    for live in hub.rooms.values():  # as if the process had restarted: no live rooms
        await live.media.close()
    hub.rooms.clear()
    judge = Participant(clients, "judge again")
    try:
        await judge.connect(await staff_cookie(clients, "faguan"))
        answer = await judge.join(session_id)
        assert answer["state"]["hearing"]["state"] == "paused"
    finally:
        await judge.close()


async def test_joining_needs_consent_to_recording_and_a_fresh_code_for_parties(
    clients: Clients,
) -> None:
    session_id = await hearing_session(clients)
    party = Participant(clients, "party")
    try:
        cookie = await party_cookie(clients, ZHANG, reverify=False)
        await stale_verification(clients)  # logged in with a code an hour ago
        await party.connect(cookie)
        refused = await party.call(
            "room:join", {"session_id": session_id, "consent_recording": True}
        )
        assert refused["ok"] is False and refused["error"]["code"] == "reverification_required"
    finally:
        await party.close()
    party = Participant(clients, "party")
    try:
        await party.connect(await party_cookie(clients, ZHANG))
        refused = await party.call("room:join", {"session_id": session_id})
        assert refused["ok"] is False and refused["error"]["code"] == "invalid"
        assert "录" in refused["error"]["message"]
        await party.join(session_id)
    finally:
        await party.close()
