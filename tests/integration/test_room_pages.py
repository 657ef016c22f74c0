"""The room's pages and APIs on both databases: who may open a session's room, guest
links (made by the session's staff, refused to anyone else, useless once tampered with),
and the room's log, which only the court's staff read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from server.db.engine import Database
from server.db.models import AuditEvent, LoginSession, RoomLogEntry
from tests.support import Clients, demo_session

ZHANG, WANG = "13800000001", "13800000003"


async def run_sql(clients: Clients, statement: Any) -> None:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            await session.execute(statement)
    finally:
        await db.dispose()


async def get(client: TestClient[Any, Any], path: str) -> Any:
    return await client.get(path, allow_redirects=False)


async def test_the_host_opens_the_room_page_with_the_session_in_it(clients: Clients) -> None:
    session_id = await demo_session(clients)
    host = await clients.staff("tiaojie")
    response = await get(host, f"/sessions/{session_id}/room")
    assert response.status == 200
    page = await response.text()
    assert f'data-session-id="{session_id}"' in page
    assert 'data-host="true"' in page
    assert "在线调解" in page and "演0101诉前调" in page
    # the dispute page links to it
    dispute = await (await get(host, "/disputes/1")).text()
    assert f"/sessions/{session_id}/room" in dispute


async def test_a_party_whose_code_is_stale_confirms_first_and_a_stranger_gets_nothing(
    clients: Clients,
) -> None:
    session_id = await demo_session(clients)
    zhang = await clients.party(ZHANG)
    await run_sql(
        clients, update(LoginSession).values(reverified_at=datetime.now(UTC) - timedelta(hours=1))
    )
    response = await get(zhang, f"/sessions/{session_id}/room")
    assert response.status == 303
    assert response.headers["Location"].startswith("/reverify?next=")

    wang = await clients.party(WANG)  # a party of another dispute
    response = await get(wang, f"/sessions/{session_id}/room")
    assert response.status == 404
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            denied = await session.scalar(
                select(AuditEvent).where(AuditEvent.action == "access.denied").limit(1)
            )
    finally:
        await db.dispose()
    assert denied is not None


async def test_session_staff_make_guest_links_and_nobody_else_can(clients: Clients) -> None:
    session_id = await demo_session(clients)
    host = await clients.staff("tiaojie")
    path = f"/api/v1/sessions/{session_id}/guests"

    response = await clients.post_json(host, path, {"name": "赵翻译", "role": "interpreter"})
    assert response.status == 201, await response.text()
    url = (await response.json())["url"]
    token = url.rsplit("/", 1)[1]

    response = await clients.post_json(host, path, {"name": "某人", "role": "judge"})
    assert response.status == 400
    assert "证人" in (await response.json())["error"]["message"]

    zhang = await clients.party(ZHANG)
    response = await clients.post_json(zhang, path, {"name": "我的朋友", "role": "observer"})
    assert response.status == 403

    guest = await clients.new()
    response = await get(guest, f"/rooms/guest/{token}")
    assert response.status == 200
    assert f'data-guest-token="{token}"' in await response.text()
    response = await get(guest, f"/rooms/guest/{token[:-2]}xx")
    assert response.status == 400

    # the dispute page's form makes one too
    csrf = await clients.csrf(host)
    response = await host.post(
        f"/sessions/{session_id}/guests",
        data={"_csrf": csrf, "name": "钱证人", "role": "witness"},
    )
    assert response.status == 200
    assert "/rooms/guest/" in await response.text()


async def test_only_staff_read_the_rooms_log(clients: Clients) -> None:
    session_id = await demo_session(clients)
    await run_sql(
        clients,
        RoomLogEntry.__table__.insert().values(
            session_id=session_id,
            dispute_id=1,
            kind="join",
            actor="张三",
            actor_identity="user:1",
            subject="",
            subject_identity="",
            detail={"subroom": "lobby"},
            at=datetime.now(UTC),
        ),
    )
    zhang = await clients.party(ZHANG)
    response = await get(zhang, f"/api/v1/sessions/{session_id}/log")
    assert response.status == 403
    clerk = await clients.staff("tiaojie")
    response = await get(clerk, f"/api/v1/sessions/{session_id}/log")
    assert response.status == 200
    items = (await response.json())["items"]
    assert [item["kind"] for item in items] == ["join"]
    assert items[0]["at"].endswith("+00:00")
