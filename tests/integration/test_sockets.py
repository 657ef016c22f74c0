"""socket.io: a connection needs a session; watching a dispute goes through the access check."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.db.engine import Database
from server.db.models import AuditEvent
from tests.support import Clients

SESSION_COOKIE = "yz_session"
WAIT = 5


def session_cookie(client: TestClient[Any, Any]) -> str:
    for morsel in client.session.cookie_jar:
        if morsel.key == SESSION_COOKIE and morsel.value:
            return morsel.value
    raise AssertionError("the client holds no session cookie")


class Watcher:
    """A socket.io client that keeps every ``error`` event it is sent."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.errors: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sio.on("error", self._on_error)

    async def _on_error(self, data: dict[str, Any]) -> None:
        await self.errors.put(data)

    async def connect(self, clients: Clients, cookies: dict[str, str]) -> None:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
        await self.sio.connect(
            str(clients.server.make_url("/")),
            headers=headers,
            transports=["websocket"],
            wait_timeout=WAIT,
        )

    async def watch(self, payload: Any) -> dict[str, Any]:
        answer = await self.sio.call("dispute:watch", payload, timeout=WAIT)
        assert isinstance(answer, dict), answer
        return answer

    async def next_error(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.errors.get(), WAIT)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def denials_by(clients: Clients, user_id: int) -> list[AuditEvent]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            rows = await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "access.denied", AuditEvent.actor_id == user_id)
                .order_by(AuditEvent.seq)
            )
            return list(rows.all())
    finally:
        await db.dispose()


async def test_a_connection_without_a_session_is_refused(clients: Clients) -> None:
    for cookies in ({}, {SESSION_COOKIE: "not-a-real-session-token"}):
        watcher = Watcher()
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await watcher.connect(clients, cookies)
            assert not watcher.sio.connected
        finally:
            await watcher.close()


async def test_a_party_may_watch_only_their_own_dispute(clients: Clients) -> None:
    browser = await clients.party("13800000001")
    user_id: int = (await (await browser.get("/api/v1/me")).json())["id"]
    watcher = Watcher()
    try:
        await watcher.connect(clients, {SESSION_COOKIE: session_cookie(browser)})
        assert await watcher.watch({"dispute_id": 1}) == {"ok": True, "dispute_id": 1}
        assert watcher.errors.empty()
        assert await denials_by(clients, user_id) == []

        answer = await watcher.watch({"dispute_id": 2})
        error = await watcher.next_error()
    finally:
        await watcher.close()

    assert answer == {"ok": False, "error": error}
    assert error["event"] == "dispute:watch"
    assert error["status"] == 404 and error["code"] == "not_found"
    assert error["message"] == "该纠纷不存在，或您无权查看。"
    [denial] = await denials_by(clients, user_id)
    assert denial.dispute_id == 2 and denial.outcome == "denied"
    assert denial.actor_role == "party"
    assert denial.details["where"] == "socket dispute:watch"
    assert denial.details["permission"] == "dispute.view"


async def test_the_refusal_speaks_english_when_the_language_cookie_asks(
    clients: Clients,
) -> None:
    browser = await clients.party("13800000001")
    watcher = Watcher()
    try:
        await watcher.connect(clients, {SESSION_COOKIE: session_cookie(browser), "yz_lang": "en"})
        answer = await watcher.watch({"dispute_id": 2})
        error = await watcher.next_error()
    finally:
        await watcher.close()
    assert answer["ok"] is False
    assert error["status"] == 404
    assert error["message"] == "No such dispute, or it is not yours to see."


MALFORMED: tuple[tuple[Any, str], ...] = (
    ({"dispute_id": "x"}, "This field is not valid: dispute_id."),
    ({"dispute_id": None}, "This field is not valid: dispute_id."),
    ({"dispute_id": 1.5}, "This field is not valid: dispute_id."),
    ({"dispute_id": True}, "This field is not valid: dispute_id."),
    ({"dispute_id": 0}, "This field is not valid: dispute_id."),
    ({"dispute_id": 2**40}, "This field is not valid: dispute_id."),
    ({"dispute_id": 2**63}, "This field is not valid: dispute_id."),
    ({}, "This field is required: dispute_id."),
    ([1], "This field is required: dispute_id."),
    ("1", "This field is required: dispute_id."),
)


async def test_a_malformed_watch_request_is_answered_with_400(clients: Clients) -> None:
    browser = await clients.party("13800000001")
    user_id: int = (await (await browser.get("/api/v1/me")).json())["id"]
    watcher = Watcher()
    answers: list[tuple[Any, dict[str, Any], dict[str, Any]]] = []
    try:
        await watcher.connect(clients, {SESSION_COOKIE: session_cookie(browser), "yz_lang": "en"})
        for payload, _message in MALFORMED:
            answers.append((payload, await watcher.watch(payload), await watcher.next_error()))
        # the connection survives bad requests
        assert await watcher.watch({"dispute_id": 1}) == {"ok": True, "dispute_id": 1}
    finally:
        await watcher.close()
    for (payload, answer, error), (_payload, message) in zip(answers, MALFORMED, strict=True):
        assert answer == {"ok": False, "error": error}, payload
        assert error["status"] == 400 and error["code"] == "invalid", (payload, error)
        assert error["message"] == message, (payload, error)
    assert await denials_by(clients, user_id) == []
