"""Rooms through the real signalling: aiortc peers join a session's room over socket.io,
publish synthetic audio and video through the SFU and receive one another.

The demo loan dispute has a scheduled mediation hosted by 郑调解 (tiaojie) between
张三 (applicant) and 李四 (respondent).  These tests run on SQLite: the media path does
not touch the database beyond what tests/media/test_room_record.py covers on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import select

from server.db.engine import Database
from server.db.models import RoomLogEntry
from server.rooms.setup import ROOMS
from tests.media.peers import Participant, party_cookie, staff_cookie
from tests.support import Clients, demo_session

pytestmark = pytest.mark.timeout(120)

ZHANG, LI = "13800000001", "13800000002"


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def room_log(clients: Clients, session_id: int) -> list[RoomLogEntry]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            rows = await session.scalars(
                select(RoomLogEntry)
                .where(RoomLogEntry.session_id == session_id)
                .order_by(RoomLogEntry.id)
            )
            return list(rows.all())
    finally:
        await db.dispose()


People = Callable[[str], Awaitable[Participant]]


@pytest.fixture
async def people(clients: Clients) -> AsyncIterator[dict[str, Participant]]:
    """The host and both parties, connected (not yet joined)."""
    crowd = {
        "host": Participant(clients, "host"),
        "zhang": Participant(clients, "zhang"),
        "li": Participant(clients, "li"),
    }
    await crowd["host"].connect(await staff_cookie(clients, "tiaojie"))
    await crowd["zhang"].connect(await party_cookie(clients, ZHANG))
    await crowd["li"].connect(await party_cookie(clients, LI))
    try:
        yield crowd
    finally:
        for person in crowd.values():
            await person.close()


async def everyone_in(clients: Clients, people: dict[str, Participant]) -> int:
    """All three join and publish; the host admits the parties from the lobby."""
    session_id = await demo_session(clients)
    host, zhang, li = people["host"], people["zhang"], people["li"]
    await host.join(session_id)
    await host.publish()
    for party in (zhang, li):
        answer = await party.join(session_id)
        assert answer["state"]["my_subroom"] == "lobby"
        await party.publish()
    await host.must("room:admit", {"all": True})
    return session_id


def sfu_stats(clients: Clients) -> dict[str, int]:
    return clients.server.app[ROOMS].sfu.stats()


async def test_everyone_receives_the_others_without_the_server_decoding_video(
    clients: Clients, people: dict[str, Participant]
) -> None:
    await everyone_in(clients, people)
    host, zhang, li = people["host"], people["zhang"], people["li"]
    for viewer in (host, zhang, li):
        for other in (host, zhang, li):
            if other is not viewer:
                await viewer.wait_frames(other.member_id, "camera", 10)
                await viewer.wait_frames(other.member_id, "mic", 25)
    stats = sfu_stats(clients)
    assert stats["frames_out"] > 0
    assert stats["video_decoded"] == 0


async def test_a_party_waits_in_the_lobby_and_receives_nothing_until_admitted(
    clients: Clients, people: dict[str, Participant]
) -> None:
    session_id = await demo_session(clients)
    host, zhang = people["host"], people["zhang"]
    await host.join(session_id)
    await host.publish()
    await zhang.join(session_id)
    await zhang.publish()
    await asyncio.sleep(2)
    assert zhang.received(host.member_id, "camera") == 0
    assert host.received(zhang.member_id, "camera") == 0
    lobby = [m for m in host.state["members"] if m["subroom"] == "lobby"]
    assert [m["id"] for m in lobby] == [zhang.member_id]
    await host.must("room:admit", {"member_id": zhang.member_id})
    await zhang.next_notice("admitted")
    await zhang.wait_frames(host.member_id, "camera", 10)
    await host.wait_frames(zhang.member_id, "camera", 10)


async def test_a_caucus_is_heard_only_inside_it(
    clients: Clients, people: dict[str, Participant]
) -> None:
    await everyone_in(clients, people)
    host, zhang, li = people["host"], people["zhang"], people["li"]
    await li.wait_frames(zhang.member_id, "camera", 5)
    answer = await host.must("room:caucus", {"member_ids": [host.member_id, zhang.member_id]})
    assert answer["subroom"].startswith("caucus:")
    await li.stops_receiving(zhang.member_id, "mic")
    await li.stops_receiving(host.member_id, "camera")
    assert li.received(zhang.member_id, "camera") == li.received(zhang.member_id, "camera")
    await zhang.wait_frames(host.member_id, "mic", 25)
    await host.wait_frames(zhang.member_id, "camera", 10)
    # the caucus's chat stays inside it
    await zhang.must("chat:send", {"text": "只跟调解员说"})
    await li.must("chat:send", {"text": "我在主会场"})
    await asyncio.sleep(0.5)
    assert "只跟调解员说" not in [line["text"] for line in li.chat]
    assert "我在主会场" not in [line["text"] for line in zhang.chat]
    # back together
    await host.must("room:move", {"member_ids": [host.member_id, zhang.member_id], "to": "main"})
    await li.wait_frames(zhang.member_id, "camera", 10)


async def test_a_removed_participant_stops_receiving_within_two_seconds(
    clients: Clients, people: dict[str, Participant]
) -> None:
    session_id = await everyone_in(clients, people)
    host, zhang, li = people["host"], people["zhang"], people["li"]
    await li.wait_frames(host.member_id, "camera", 5)
    await host.must("room:remove", {"member_id": li.member_id})
    await li.next_notice("removed")
    await li.stops_receiving(host.member_id, "camera")
    await li.stops_receiving(zhang.member_id, "mic", within=0)
    # removed people cannot come back, nor act
    refused = await li.call("room:join", {"session_id": session_id, "consent_recording": True})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    kinds = [row.kind for row in await room_log(clients, session_id)]
    assert "remove" in kinds


async def test_a_dropped_peer_rejoins_the_same_place_and_others_saw_reconnecting(
    clients: Clients, people: dict[str, Participant]
) -> None:
    session_id = await everyone_in(clients, people)
    host, zhang = people["host"], people["zhang"]
    await zhang.must("chat:send", {"text": "网络不好"})
    old_id = zhang.member_id
    await zhang.drop()
    for _ in range(100):
        if host.member(old_id)["presence"] == "reconnecting":
            break
        await asyncio.sleep(0.05)
    assert host.member(old_id)["presence"] == "reconnecting"
    back = Participant(clients, "zhang again")
    people["zhang"] = back
    await back.connect(await party_cookie(clients, ZHANG))
    answer = await back.join(session_id)
    assert back.member_id == old_id
    assert answer["state"]["my_subroom"] == "main"
    assert "网络不好" in [line["text"] for line in answer["chat"]]
    await back.publish()
    await back.wait_frames(host.member_id, "camera", 10)
    await host.wait_frames(old_id, "camera", 10)
    kinds = [row.kind for row in await room_log(clients, session_id)]
    assert "drop" in kinds and "rejoin" in kinds
    assert "leave" not in kinds


async def test_bad_input_is_refused_and_the_room_goes_on(
    clients: Clients, people: dict[str, Participant]
) -> None:
    session_id = await everyone_in(clients, people)
    host, zhang, li = people["host"], people["zhang"], people["li"]
    # malformed SDP
    answer = await zhang.call("media:offer", {"sdp": "v=0 garbage", "sources": {}})
    assert answer["ok"] is False and answer["error"]["code"] == "invalid"
    assert (await zhang.next_error())["event"] == "media:offer"
    # a room that does not exist
    stranger = Participant(clients, "stranger")
    await stranger.connect(await staff_cookie(clients, "tiaojie2"))
    try:
        answer = await stranger.call("room:join", {"session_id": 999999, "consent_recording": True})
        assert answer["ok"] is False and answer["error"]["code"] == "not_found"
        # an offer without having joined a room
        answer = await stranger.call("media:offer", {"sdp": "v=0", "sources": {}})
        assert answer["ok"] is False and answer["error"]["code"] == "forbidden"
    finally:
        await stranger.close()
    # a party trying the host's controls
    answer = await li.call("room:remove", {"member_id": zhang.member_id})
    assert answer["ok"] is False and answer["error"]["code"] == "forbidden"
    answer = await li.call("room:mute", {"member_id": host.member_id})
    assert answer["ok"] is False and answer["error"]["code"] == "forbidden"
    # oversized: refused; far too large: the connection is cut
    answer = await li.call("chat:send", {"text": "长" * 100_000})
    assert answer["ok"] is False and answer["error"]["code"] == "invalid"
    await li.sio.emit("chat:send", {"text": "长" * 2_000_000})
    for _ in range(100):
        if not li.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not li.sio.connected
    # the others go on
    await zhang.wait_frames(host.member_id, "camera", 10)
    await host.wait_frames(zhang.member_id, "camera", 10)
    assert session_id


async def test_a_flooding_socket_is_refused_then_disconnected(
    clients: Clients, people: dict[str, Participant]
) -> None:
    await everyone_in(clients, people)
    host, li = people["host"], people["li"]
    outcomes = await asyncio.gather(
        *[li.sio.call("room:hand", {"raised": True}, timeout=3) for _ in range(150)],
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, dict) and not o.get("ok")]
    assert refused and refused[0]["error"]["code"] == "too_many_attempts"
    for _ in range(100):
        if not li.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not li.sio.connected
    await host.wait_frames(people["zhang"].member_id, "camera", 10)


async def test_the_host_mutes_and_a_muted_party_cannot_unmute_until_asked(
    clients: Clients, people: dict[str, Participant]
) -> None:
    await everyone_in(clients, people)
    host, zhang, li = people["host"], people["zhang"], people["li"]
    await li.wait_frames(zhang.member_id, "mic", 10)
    await host.must("room:mute", {"member_id": zhang.member_id})
    await zhang.next_notice("muted")
    await li.stops_receiving(zhang.member_id, "mic")
    answer = await zhang.call("room:self", {"audio": True})
    assert answer["ok"] is False
    await host.must("room:unmute_request", {"member_id": zhang.member_id})
    await zhang.next_notice("unmute_requested")
    await zhang.must("room:self", {"audio": True})
    await li.wait_frames(zhang.member_id, "mic", 10)


def browser_like_extension_ids(sdp: str) -> str:
    """Number the RTP header extensions as Chromium does (audio level 1, abs-send-time 2,
    mid 4), not as aiortc does, so that the server must keep the client's numbering."""
    ids = {
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 1,
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 2,
        "urn:ietf:params:rtp-hdrext:sdes:mid": 4,
    }
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=extmap:"):
            uri = line.split(" ", 1)[1]
            if uri in ids:
                line = f"a=extmap:{ids[uri]} {uri}"
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def extension_ids(sdp: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for line in sdp.splitlines():
        if line.startswith("a=extmap:"):
            number, uri = line[len("a=extmap:") :].split(" ", 1)
            found.setdefault(uri, set()).add(int(number.split("/")[0]))
    return found


async def test_the_server_keeps_the_clients_header_extension_ids_when_it_renegotiates(
    clients: Clients, people: dict[str, Participant]
) -> None:
    """One bundle, one id per extension: a browser refuses an offer that renumbers."""
    session_id = await demo_session(clients)
    host, zhang = people["host"], people["zhang"]
    await host.join(session_id)
    await host.publish(munge=browser_like_extension_ids)
    await zhang.join(session_id)
    await zhang.publish()
    await host.must("room:admit", {"member_id": zhang.member_id})
    await host.wait_frames(zhang.member_id, "camera", 10)
    assert host.server_offers
    for offer in host.server_offers:
        ids = extension_ids(offer)
        assert all(len(numbers) == 1 for numbers in ids.values()), ids
        assert ids.get("urn:ietf:params:rtp-hdrext:sdes:mid") == {4}


async def test_an_empty_room_is_let_go_and_opens_again_on_the_next_join(
    clients: Clients, people: dict[str, Participant]
) -> None:
    session_id = await demo_session(clients)
    host, zhang = people["host"], people["zhang"]
    hub = clients.server.app[ROOMS]
    await host.join(session_id)
    await zhang.join(session_id)
    await zhang.must("room:leave")
    assert session_id in hub.rooms  # the host is still there
    await host.must("room:leave")
    assert session_id not in hub.rooms
    again = await host.join(session_id)
    assert again["state"]["my_role"] == "host"
    assert session_id in hub.rooms
    kinds = [row.kind for row in await room_log(clients, session_id)]
    assert kinds.count("join") == 3
