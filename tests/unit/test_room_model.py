"""The live room model: who is where, who may do what, and who hears whom."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.room import (
    ALLOWED_PAUSE_REASONS,
    STAFF_ROLES,
    HearingState,
    Member,
    Presence,
    Room,
    RoomKind,
    RoomRefused,
    RoomRole,
    SubRoomKind,
    role_can_publish,
)

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SOURCES = ("mic", "camera", "screen")


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def counter_ids() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"m{next(numbers)}"


def make_room(kind: RoomKind = RoomKind.MEDIATION, clock: FakeClock | None = None) -> Room:
    return Room("session:7", kind, clock=clock or FakeClock(), new_id=counter_ids())


def enter(
    room: Room, name: str, role: RoomRole, *, audio: bool = True, video: bool = True
) -> Member:
    return room.join(f"user:{name}", name, role, seat=role.value, audio=audio, video=video)


def refused(code: str, action: Callable[[], object]) -> RoomRefused:
    with pytest.raises(RoomRefused) as caught:
        action()
    assert caught.value.code == code, caught.value.message
    return caught.value


def kinds(room: Room) -> list[str]:
    return [event.kind for event in room.drain_events()]


class Mediation:
    """A mediation with a host (mediator), a co-host, a clerk and two admitted parties."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.room = make_room(RoomKind.MEDIATION, self.clock)
        self.host = enter(self.room, "mediator", RoomRole.HOST)
        self.co_host = enter(self.room, "assistant", RoomRole.CO_HOST)
        self.clerk = enter(self.room, "clerk", RoomRole.CLERK)
        self.applicant = enter(self.room, "applicant", RoomRole.PARTY)
        self.respondent = enter(self.room, "respondent", RoomRole.PARTY)
        self.room.admit_all(self.host.id)
        self.room.drain_events()


class Hearing:
    """A hearing waiting to start: the judge, a clerk, two admitted parties, a witness waiting."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.room = make_room(RoomKind.HEARING, self.clock)
        self.judge = enter(self.room, "judge", RoomRole.HOST)
        self.clerk = enter(self.room, "clerk", RoomRole.CLERK)
        self.plaintiff = enter(self.room, "plaintiff", RoomRole.PARTY)
        self.defendant = enter(self.room, "defendant", RoomRole.PARTY)
        self.witness = enter(self.room, "witness", RoomRole.WITNESS)
        self.room.admit_all(self.judge.id)
        self.room.drain_events()


@pytest.fixture
def m() -> Mediation:
    return Mediation()


@pytest.fixture
def h() -> Hearing:
    return Hearing()


# placement on join -----------------------------------------------------------------


@pytest.mark.parametrize("role", [RoomRole.HOST, RoomRole.CO_HOST, RoomRole.CLERK])
def test_staff_go_straight_to_the_main_room(role: RoomRole) -> None:
    room = make_room()
    assert enter(room, "staff", role).subroom == "main"


@pytest.mark.parametrize(
    "role",
    [RoomRole.PARTY, RoomRole.AGENT, RoomRole.WITNESS, RoomRole.INTERPRETER, RoomRole.OBSERVER],
)
def test_everyone_else_waits_in_the_lobby_of_a_mediation(role: RoomRole) -> None:
    room = make_room()
    assert enter(room, "someone", role).subroom == "lobby"


def test_a_party_waits_in_the_lobby_until_the_host_admits_them() -> None:
    room = make_room()
    host = enter(room, "mediator", RoomRole.HOST)
    party = enter(room, "applicant", RoomRole.PARTY)
    assert not room.forwards(party.id, host.id, "mic")
    assert not room.forwards(host.id, party.id, "mic")
    assert not room.may_chat(party.id)

    room.admit(host.id, party.id)

    assert party.subroom == "main"
    assert room.forwards(party.id, host.id, "mic")
    assert room.forwards(host.id, party.id, "camera")
    assert room.may_chat(party.id)


def test_a_witness_in_a_hearing_waits_apart_and_cannot_hear_until_called(h: Hearing) -> None:
    assert h.witness.subroom == "witness_wait"
    h.room.hearing(h.judge.id, "start")
    for other in (h.judge, h.plaintiff, h.defendant, h.clerk):
        for source in SOURCES:
            assert not h.room.forwards(h.witness.id, other.id, source)
    assert not h.room.may_chat(h.witness.id)
    assert h.room.audience(h.witness.id) == []

    h.room.move(h.judge.id, [h.witness.id], "main")

    assert h.room.forwards(h.witness.id, h.judge.id, "mic")
    assert h.room.forwards(h.judge.id, h.witness.id, "mic")


def test_a_locked_room_refuses_newcomers_but_lets_staff_in(m: Mediation) -> None:
    m.room.lock(m.host.id, True)
    error = refused("forbidden", lambda: enter(m.room, "latecomer", RoomRole.PARTY))
    assert "locked" in error.message
    assert enter(m.room, "second mediator", RoomRole.CO_HOST).subroom == "main"
    m.room.lock(m.co_host.id, False)
    assert enter(m.room, "latecomer", RoomRole.PARTY).subroom == "lobby"


def test_a_locked_room_takes_back_a_member_whose_network_failed(m: Mediation) -> None:
    m.room.lock(m.host.id, True)
    m.room.dropped(m.applicant.id)
    m.room.expire(m.applicant.id)
    again = enter(m.room, "applicant", RoomRole.PARTY)
    assert again.id == m.applicant.id
    assert again.presence is Presence.CONNECTED


def test_a_locked_room_does_not_take_back_someone_who_left_by_choice(m: Mediation) -> None:
    m.room.leave(m.applicant.id)
    m.room.lock(m.host.id, True)
    refused("forbidden", lambda: enter(m.room, "applicant", RoomRole.PARTY))


def test_an_ended_room_refuses_every_join(m: Mediation) -> None:
    m.room.end(m.host.id)
    refused("gone", lambda: enter(m.room, "latecomer", RoomRole.PARTY))
    refused("gone", lambda: enter(m.room, "mediator", RoomRole.HOST))


def test_a_removed_person_cannot_join_again(m: Mediation) -> None:
    m.room.remove(m.host.id, m.respondent.id)
    assert m.respondent.presence is Presence.LEFT
    assert m.respondent.removed
    refused("forbidden", lambda: enter(m.room, "respondent", RoomRole.PARTY))


def test_an_unknown_role_is_invalid() -> None:
    room = make_room()
    refused("invalid", lambda: room.join("user:x", "X", "judge", "X", audio=False, video=False))  # type: ignore[arg-type]


def test_an_observer_joins_without_sending_anything() -> None:
    room = make_room()
    observer = enter(room, "observer", RoomRole.OBSERVER, audio=True, video=True)
    assert not observer.audio and not observer.video


# reconnection -------------------------------------------------------------------------


def test_joining_again_returns_the_same_member_where_they_were(m: Mediation) -> None:
    caucus = m.room.open_caucus(m.host.id, [m.host.id, m.applicant.id])
    m.room.raise_hand(m.applicant.id, True)
    m.room.dropped(m.applicant.id)
    assert m.applicant.presence is Presence.RECONNECTING

    again = enter(m.room, "applicant", RoomRole.PARTY, video=False)

    assert again is m.applicant
    assert again.id == m.applicant.id
    assert again.presence is Presence.CONNECTED
    assert again.subroom == caucus.id
    assert again.hand
    assert not again.video
    assert kinds(m.room)[-2:] == ["drop", "rejoin"]


def test_a_member_who_is_reconnecting_still_counts_as_present(m: Mediation) -> None:
    m.room.dropped(m.applicant.id)
    assert m.room.forwards(m.host.id, m.applicant.id, "mic")
    m.room.reconnected(m.applicant.id)
    assert m.applicant.presence is Presence.CONNECTED
    assert kinds(m.room) == ["drop", "rejoin"]


def test_a_drop_that_lasts_too_long_means_the_member_left(m: Mediation) -> None:
    m.room.dropped(m.applicant.id)
    m.room.expire(m.applicant.id)
    assert m.applicant.presence is Presence.LEFT
    assert m.applicant.left_reason == "drop_timeout"
    assert not m.room.forwards(m.host.id, m.applicant.id, "mic")
    assert kinds(m.room) == ["drop", "drop_timeout"]


def test_an_expiry_after_the_member_came_back_changes_nothing(m: Mediation) -> None:
    m.room.dropped(m.applicant.id)
    m.room.reconnected(m.applicant.id)
    m.room.expire(m.applicant.id)
    assert m.applicant.presence is Presence.CONNECTED
    assert kinds(m.room) == ["drop", "rejoin"]


def test_repeated_presence_reports_emit_one_event_each_change(m: Mediation) -> None:
    m.room.dropped(m.applicant.id)
    m.room.dropped(m.applicant.id)
    m.room.leave(m.applicant.id)
    m.room.leave(m.applicant.id)
    assert kinds(m.room) == ["drop", "leave"]


def test_reconnecting_after_leaving_needs_a_new_join(m: Mediation) -> None:
    m.room.leave(m.applicant.id)
    refused("conflict", lambda: m.room.reconnected(m.applicant.id))
    assert enter(m.room, "applicant", RoomRole.PARTY).presence is Presence.CONNECTED


def test_leaving_lowers_the_hand_and_stops_screen_sharing(m: Mediation) -> None:
    m.room.raise_hand(m.applicant.id, True)
    m.room.set_self(m.applicant.id, screen=True)
    m.room.leave(m.applicant.id)
    assert not m.applicant.hand and not m.applicant.screen
    assert m.applicant.left_at == m.clock.now


def test_a_member_muted_by_the_host_comes_back_still_muted(m: Mediation) -> None:
    m.room.mute(m.host.id, m.applicant.id)
    m.room.dropped(m.applicant.id)
    again = enter(m.room, "applicant", RoomRole.PARTY, audio=True)
    assert again.muted_by_host and not again.audio


# host controls ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["clerk", "applicant"])
@pytest.mark.parametrize(
    "control",
    [
        lambda m, by: m.room.admit(by, m.respondent.id),
        lambda m, by: m.room.admit_all(by),
        lambda m, by: m.room.to_lobby(by, m.respondent.id),
        lambda m, by: m.room.lock(by, True),
        lambda m, by: m.room.mute(by, m.respondent.id),
        lambda m, by: m.room.request_unmute(by, m.respondent.id),
        lambda m, by: m.room.stop_video(by, m.respondent.id),
        lambda m, by: m.room.remove(by, m.respondent.id),
        lambda m, by: m.room.end(by),
        lambda m, by: m.room.open_caucus(by, [m.respondent.id]),
        lambda m, by: m.room.move(by, [m.respondent.id], "lobby"),
    ],
)
def test_only_the_host_and_co_hosts_run_the_room(
    m: Mediation, who: str, control: Callable[[Mediation, str], object]
) -> None:
    actor = getattr(m, who).id
    refused("forbidden", lambda: control(m, actor))
    assert kinds(m.room) == []


def test_a_co_host_runs_the_room_but_only_the_host_ends_it(m: Mediation) -> None:
    m.room.mute(m.co_host.id, m.applicant.id)
    m.room.lock(m.co_host.id, True)
    refused("forbidden", lambda: m.room.end(m.co_host.id))
    m.room.end(m.host.id)
    assert m.room.ended
    assert kinds(m.room) == ["mute", "lock", "end"]


@pytest.mark.parametrize(
    "control",
    [
        lambda r, by, host: r.mute(by, host),
        lambda r, by, host: r.stop_video(by, host),
        lambda r, by, host: r.remove(by, host),
        lambda r, by, host: r.to_lobby(by, host),
        lambda r, by, host: r.move(by, [host], "lobby"),
    ],
)
def test_a_co_host_cannot_act_on_the_host(
    m: Mediation, control: Callable[[Room, str, str], object]
) -> None:
    error = refused("forbidden", lambda: control(m.room, m.co_host.id, m.host.id))
    assert error.message == "A co-host cannot do this to the host."


def test_the_host_can_act_on_a_co_host(m: Mediation) -> None:
    m.room.mute(m.host.id, m.co_host.id)
    assert m.co_host.muted_by_host


def test_nobody_removes_themselves(m: Mediation) -> None:
    refused("invalid", lambda: m.room.remove(m.host.id, m.host.id))
    assert m.host.presence is Presence.CONNECTED


def test_an_absent_host_controls_nothing(m: Mediation) -> None:
    m.room.leave(m.host.id)
    refused("forbidden", lambda: m.room.mute(m.host.id, m.applicant.id))


def test_controls_on_an_unknown_member_are_not_found(m: Mediation) -> None:
    refused("not_found", lambda: m.room.mute(m.host.id, "nobody"))
    refused("not_found", lambda: m.room.mute("nobody", m.host.id))
    refused("not_found", lambda: m.room.member("nobody"))
    assert m.room.by_identity("user:nobody") is None


def test_nothing_changes_in_an_ended_room(m: Mediation) -> None:
    m.room.end(m.host.id)
    refused("gone", lambda: m.room.lock(m.host.id, True))
    refused("gone", lambda: m.room.end(m.host.id))
    refused("gone", lambda: m.room.set_self(m.applicant.id, audio=False))
    assert not m.room.forwards(m.applicant.id, m.host.id, "mic")
    assert not m.room.may_chat(m.host.id)
    m.room.leave(m.applicant.id)
    assert m.applicant.presence is Presence.LEFT


def test_admitting_everyone_lets_in_the_lobby_but_not_waiting_witnesses() -> None:
    room = make_room(RoomKind.HEARING)
    judge = enter(room, "judge", RoomRole.HOST)
    party = enter(room, "plaintiff", RoomRole.PARTY)
    witness = enter(room, "witness", RoomRole.WITNESS)
    assert room.admit_all(judge.id) == [party.id]
    assert witness.subroom == "witness_wait"
    room.admit(judge.id, witness.id)
    assert witness.subroom == "main"


def test_admitting_someone_who_is_not_waiting_is_a_conflict(m: Mediation) -> None:
    refused("conflict", lambda: m.room.admit(m.host.id, m.applicant.id))


def test_sending_someone_back_to_the_lobby_cuts_their_media(m: Mediation) -> None:
    m.room.to_lobby(m.co_host.id, m.respondent.id)
    assert m.respondent.subroom == "lobby"
    assert not m.room.forwards(m.respondent.id, m.host.id, "mic")
    refused("conflict", lambda: m.room.to_lobby(m.host.id, m.respondent.id))
    [event] = m.room.drain_events()
    assert (event.kind, event.actor, event.subject) == ("to_lobby", m.co_host.id, m.respondent.id)
    assert event.detail == {"from": "main", "to": "lobby"}


def test_locking_twice_changes_the_room_once(m: Mediation) -> None:
    m.room.lock(m.host.id, True)
    m.room.lock(m.host.id, True)
    assert m.room.locked
    assert kinds(m.room) == ["lock"]


# mute and video -----------------------------------------------------------------------


def test_a_member_muted_by_the_host_cannot_unmute_until_asked(m: Mediation) -> None:
    m.room.mute(m.host.id, m.applicant.id)
    assert not m.room.forwards(m.host.id, m.applicant.id, "mic")
    assert m.room.forwards(m.host.id, m.applicant.id, "camera")
    refused("forbidden", lambda: m.room.set_self(m.applicant.id, audio=True))

    m.room.request_unmute(m.host.id, m.applicant.id)
    assert not m.applicant.audio  # asking turns nothing on: the member decides
    m.room.set_self(m.applicant.id, audio=True)

    assert m.room.forwards(m.host.id, m.applicant.id, "mic")
    events = m.room.drain_events()
    assert [e.kind for e in events] == ["mute", "unmute_requested", "self"]
    assert events[1].detail == {"audio": True, "video": False}
    assert events[2].detail == {"audio": True}


def test_a_camera_stopped_by_the_host_stays_off_until_asked(m: Mediation) -> None:
    m.room.stop_video(m.host.id, m.applicant.id)
    assert not m.room.forwards(m.host.id, m.applicant.id, "camera")
    assert m.room.forwards(m.host.id, m.applicant.id, "mic")
    refused("forbidden", lambda: m.room.set_self(m.applicant.id, video=True))
    m.room.request_unmute(m.host.id, m.applicant.id)
    m.room.set_self(m.applicant.id, video=True)
    assert m.room.forwards(m.host.id, m.applicant.id, "camera")


def test_a_request_to_unmute_can_leave_the_camera_stopped(m: Mediation) -> None:
    m.room.mute(m.host.id, m.applicant.id)
    m.room.stop_video(m.host.id, m.applicant.id)
    m.room.request_unmute(m.host.id, m.applicant.id, video=False)
    assert not m.applicant.muted_by_host
    assert m.applicant.video_stopped_by_host


def test_asking_someone_already_speaking_to_unmute_is_a_conflict(m: Mediation) -> None:
    refused("conflict", lambda: m.room.request_unmute(m.host.id, m.applicant.id))


def test_asking_a_member_who_muted_themselves_only_asks(m: Mediation) -> None:
    m.room.set_self(m.applicant.id, audio=False)
    m.room.drain_events()
    m.room.request_unmute(m.host.id, m.applicant.id)
    [event] = m.room.drain_events()
    assert event.kind == "unmute_requested"
    assert event.detail == {"audio": False, "video": False}


def test_muting_an_already_muted_member_changes_nothing(m: Mediation) -> None:
    m.room.mute(m.host.id, m.applicant.id)
    m.room.mute(m.co_host.id, m.applicant.id)
    assert kinds(m.room) == ["mute"]


def test_observers_never_publish() -> None:
    room = make_room()
    host = enter(room, "mediator", RoomRole.HOST)
    observer = enter(room, "observer", RoomRole.OBSERVER)
    room.admit(host.id, observer.id)
    refused("forbidden", lambda: room.set_self(observer.id, audio=True))
    refused("forbidden", lambda: room.set_self(observer.id, screen=True))
    refused("invalid", lambda: room.request_unmute(host.id, observer.id))
    observer.audio = True  # even if something slipped through, the routing rule holds
    assert not room.forwards(host.id, observer.id, "mic")
    assert room.forwards(observer.id, host.id, "mic")
    assert not role_can_publish(RoomRole.OBSERVER)
    assert all(role_can_publish(r) for r in RoomRole if r is not RoomRole.OBSERVER)


def test_setting_what_is_already_set_emits_nothing(m: Mediation) -> None:
    m.room.set_self(m.applicant.id, audio=True, video=True, screen=False)
    m.room.raise_hand(m.applicant.id, False)
    m.room.set_quality(m.applicant.id, "good")
    m.room.set_quality(m.applicant.id, "good")
    assert kinds(m.room) == ["quality"]
    refused("invalid", lambda: m.room.set_quality(m.applicant.id, "excellent"))


def test_each_source_follows_its_own_switch(m: Mediation) -> None:
    assert not m.room.forwards(m.host.id, m.applicant.id, "screen")
    m.room.set_self(m.applicant.id, screen=True, audio=False)
    assert m.room.forwards(m.host.id, m.applicant.id, "screen")
    assert not m.room.forwards(m.host.id, m.applicant.id, "mic")
    assert m.room.forwards(m.host.id, m.applicant.id, "camera")
    assert not m.room.forwards(m.host.id, m.applicant.id, "hologram")
    assert not m.room.forwards(m.applicant.id, m.applicant.id, "camera")
    assert not m.room.forwards(m.host.id, "nobody", "camera")


# caucus -------------------------------------------------------------------------------


def test_a_caucus_keeps_its_media_apart_from_the_main_room(m: Mediation) -> None:
    caucus = m.room.open_caucus(m.host.id, [m.host.id, m.applicant.id])

    assert caucus.id == "caucus:1" and caucus.kind is SubRoomKind.CAUCUS
    assert m.room.forwards(m.applicant.id, m.host.id, "mic")
    assert m.room.forwards(m.host.id, m.applicant.id, "mic")
    for outsider in (m.respondent, m.co_host, m.clerk):
        for source in SOURCES:
            assert not m.room.forwards(outsider.id, m.applicant.id, source)
            assert not m.room.forwards(m.applicant.id, outsider.id, source)
    assert m.room.forwards(m.respondent.id, m.clerk.id, "mic")


def test_caucuses_are_numbered_and_labelled_for_translation(m: Mediation) -> None:
    first = m.room.open_caucus(m.host.id, [m.applicant.id])
    second = m.room.open_caucus(m.host.id, [m.respondent.id])
    assert (first.id, second.id) == ("caucus:1", "caucus:2")
    assert second.label == "Caucus %(n)s" and second.label_params == {"n": 2}
    assert second.label_text() == "Caucus 2"
    assert second.label_text(lambda text: {"Caucus %(n)s": "背靠背 %(n)s"}[text]) == "背靠背 2"


def test_bringing_everyone_back_closes_the_caucus(m: Mediation) -> None:
    caucus = m.room.open_caucus(m.co_host.id, [m.applicant.id, m.co_host.id])
    m.room.move(m.co_host.id, [m.applicant.id, m.co_host.id], "main")
    assert caucus.id not in [s.id for s in m.room.subrooms()]
    assert m.applicant.subroom == "main"
    events = m.room.drain_events()
    assert [e.kind for e in events] == [
        "caucus_open",
        "move",
        "move",
        "move",
        "move",
        "caucus_close",
    ]
    assert events[0].detail == {
        "subroom": "caucus:1",
        "record": False,
        "members": [m.applicant.id, m.co_host.id],
    }
    assert events[-1].detail == {"subroom": "caucus:1"}
    # numbers are never reused, so the log stays unambiguous
    assert m.room.open_caucus(m.host.id, [m.applicant.id]).id == "caucus:2"


def test_a_caucus_whose_last_member_left_disappears(m: Mediation) -> None:
    caucus = m.room.open_caucus(m.host.id, [m.applicant.id])
    m.room.dropped(m.applicant.id)
    assert caucus in m.room.subrooms()  # still there while they reconnect
    m.room.expire(m.applicant.id)
    assert caucus not in m.room.subrooms()
    assert enter(m.room, "applicant", RoomRole.PARTY).subroom == "main"


def test_moving_into_a_caucus_that_does_not_exist_is_not_found(m: Mediation) -> None:
    refused("not_found", lambda: m.room.move(m.host.id, [m.applicant.id], "caucus:9"))
    refused("not_found", lambda: m.room.move(m.host.id, [m.applicant.id], "witness_wait"))


def test_a_move_checks_everyone_before_moving_anyone(m: Mediation) -> None:
    m.room.leave(m.respondent.id)
    m.room.drain_events()
    refused("conflict", lambda: m.room.move(m.host.id, [m.applicant.id, m.respondent.id], "lobby"))
    refused("invalid", lambda: m.room.move(m.host.id, [], "lobby"))
    assert m.applicant.subroom == "main"
    assert kinds(m.room) == []


def test_the_host_cannot_send_themselves_to_a_waiting_room(m: Mediation) -> None:
    refused("invalid", lambda: m.room.move(m.host.id, [m.host.id], "lobby"))


def test_a_host_may_take_someone_from_the_lobby_straight_into_a_caucus() -> None:
    room = make_room()
    host = enter(room, "mediator", RoomRole.HOST)
    party = enter(room, "applicant", RoomRole.PARTY)
    caucus = room.open_caucus(host.id, [host.id, party.id])
    assert party.subroom == caucus.id
    assert room.forwards(party.id, host.id, "mic")


def test_caucuses_are_held_only_in_mediations(h: Hearing) -> None:
    refused("conflict", lambda: h.room.open_caucus(h.judge.id, [h.plaintiff.id]))


def test_caucus_media_is_not_recorded_unless_the_host_says_so(m: Mediation) -> None:
    caucus = m.room.open_caucus(m.host.id, [m.host.id, m.applicant.id])
    assert m.room.recorded(m.respondent.id)
    assert not m.room.recorded(m.applicant.id)
    refused("forbidden", lambda: m.room.set_caucus_record(m.co_host.id, caucus.id, True))
    refused("forbidden", lambda: m.room.open_caucus(m.co_host.id, [m.respondent.id], record=True))
    m.room.set_caucus_record(m.host.id, caucus.id, True)
    m.room.set_caucus_record(m.host.id, caucus.id, True)
    assert m.room.recorded(m.applicant.id)
    assert [e.kind for e in m.room.drain_events()].count("caucus_record") == 1
    refused("invalid", lambda: m.room.set_caucus_record(m.host.id, "main", False))
    refused("not_found", lambda: m.room.set_caucus_record(m.host.id, "caucus:5", True))


def test_nobody_waiting_or_gone_is_recorded(m: Mediation) -> None:
    newcomer = enter(m.room, "agent", RoomRole.AGENT)
    assert not m.room.recorded(newcomer.id)
    m.room.leave(m.applicant.id)
    assert not m.room.recorded(m.applicant.id)
    assert not m.room.recorded("nobody")


# chat and captions --------------------------------------------------------------------


def test_chat_in_a_caucus_reaches_the_caucus_only(m: Mediation) -> None:
    m.room.open_caucus(m.host.id, [m.host.id, m.applicant.id])
    assert sorted(m.room.audience(m.applicant.id)) == sorted([m.host.id, m.applicant.id])
    main = [m.co_host.id, m.clerk.id, m.respondent.id]
    assert sorted(m.room.audience(m.respondent.id)) == sorted(main)


def test_people_waiting_cannot_chat_and_nobody_reads_them() -> None:
    room = make_room()
    enter(room, "mediator", RoomRole.HOST)
    party = enter(room, "applicant", RoomRole.PARTY)
    assert not room.may_chat(party.id)
    assert room.audience(party.id) == []
    assert not room.may_chat("nobody")


def test_members_who_left_neither_chat_nor_read(m: Mediation) -> None:
    m.room.leave(m.respondent.id)
    assert not m.room.may_chat(m.respondent.id)
    assert m.respondent.id not in m.room.audience(m.applicant.id)


# hearing ------------------------------------------------------------------------------


def test_a_hearing_starts_pauses_resumes_and_closes_with_logged_times(h: Hearing) -> None:
    assert h.room.hearing_state is HearingState.WAITING
    h.clock.advance(60)
    assert h.room.hearing(h.judge.id, "start") is HearingState.IN_SESSION
    h.clock.advance(600)
    assert h.room.hearing(h.judge.id, "pause", "recess") is HearingState.PAUSED
    h.clock.advance(300)
    assert h.room.hearing(h.judge.id, "resume") is HearingState.IN_SESSION
    h.clock.advance(900)
    assert h.room.hearing(h.judge.id, "close") is HearingState.CLOSED

    events = h.room.drain_events()
    assert [e.kind for e in events] == [
        "hearing_start",
        "hearing_pause",
        "hearing_resume",
        "hearing_close",
    ]
    assert [e.at - START for e in events] == [timedelta(seconds=s) for s in (60, 660, 960, 1860)]
    assert events[1].detail == {"from": "in_session", "to": "paused", "reason": "recess"}
    assert all(e.actor == h.judge.id for e in events)
    assert h.room.hearing_since == START + timedelta(seconds=1860)


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ([], "pause"),
        ([], "resume"),
        ([], "close"),
        (["start"], "start"),
        (["start"], "resume"),
        (["start", "pause"], "pause"),
        (["start", "pause"], "start"),
        (["start", "close"], "start"),
        (["start", "close"], "resume"),
        (["start", "close"], "close"),
    ],
)
def test_illegal_hearing_moves_are_refused(h: Hearing, path: list[str], action: str) -> None:
    for step in path:
        h.room.hearing(h.judge.id, step, "recess")
    before = h.room.hearing_state
    h.room.drain_events()
    error = refused("conflict", lambda: h.room.hearing(h.judge.id, action, "recess"))
    assert error.message.endswith(".")
    assert h.room.hearing_state is before
    assert kinds(h.room) == []


@pytest.mark.parametrize("reason", ALLOWED_PAUSE_REASONS)
def test_a_pause_states_an_allowed_reason(h: Hearing, reason: str) -> None:
    h.room.hearing(h.judge.id, "start")
    h.room.hearing(h.judge.id, "pause", reason)
    assert h.room.hearing_state is HearingState.PAUSED


@pytest.mark.parametrize("reason", ["", "lunch"])
def test_a_pause_without_an_allowed_reason_is_invalid(h: Hearing, reason: str) -> None:
    h.room.hearing(h.judge.id, "start")
    refused("invalid", lambda: h.room.hearing(h.judge.id, "pause", reason))
    refused("invalid", lambda: h.room.hearing(h.judge.id, "adjourn"))


def test_only_the_judge_runs_the_hearing() -> None:
    hearing = Hearing()
    co_judge = enter(hearing.room, "assessor", RoomRole.CO_HOST)
    for actor in (co_judge, hearing.clerk, hearing.plaintiff):
        refused("forbidden", lambda a=actor: hearing.room.hearing(a.id, "start"))  # type: ignore[misc]
    assert hearing.room.hearing_state is HearingState.WAITING


def test_a_mediation_has_no_hearing_state(m: Mediation) -> None:
    assert m.room.hearing_state is None
    refused("conflict", lambda: m.room.hearing(m.host.id, "start"))


def test_closing_the_hearing_stops_all_media_and_joins(h: Hearing) -> None:
    h.room.hearing(h.judge.id, "start")
    assert h.room.forwards(h.plaintiff.id, h.judge.id, "mic")
    h.room.hearing(h.judge.id, "close")
    assert not h.room.forwards(h.plaintiff.id, h.judge.id, "mic")
    assert not h.room.recorded(h.judge.id)
    refused("gone", lambda: enter(h.room, "latecomer", RoomRole.AGENT))
    assert not h.room.ended  # the judge still ends the room
    h.room.end(h.judge.id)
    assert h.room.ended


def test_a_room_can_resume_a_hearing_in_its_known_state() -> None:
    room = Room("session:9", RoomKind.HEARING, hearing_state=HearingState.PAUSED)
    judge = enter(room, "judge", RoomRole.HOST)
    assert room.hearing(judge.id, "resume") is HearingState.IN_SESSION


# snapshots ----------------------------------------------------------------------------


def _listed(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in state["members"]}


def test_staff_see_everyone_including_those_waiting_and_those_who_left(m: Mediation) -> None:
    waiting = enter(m.room, "agent", RoomRole.AGENT)
    m.room.leave(m.respondent.id)
    for viewer in (m.host, m.co_host, m.clerk):
        listed = _listed(m.room.snapshot(viewer.id))
        assert waiting.id in listed
        assert listed[m.respondent.id]["presence"] == "left"
    assert [s["id"] for s in m.room.snapshot(m.clerk.id)["subrooms"]] == ["main", "lobby"]


def test_parties_see_the_main_room_and_themselves_but_not_the_lobby(m: Mediation) -> None:
    waiting = enter(m.room, "agent", RoomRole.AGENT)
    m.room.leave(m.respondent.id)

    listed = _listed(m.room.snapshot(m.applicant.id))
    assert waiting.id not in listed
    assert m.respondent.id not in listed
    assert set(listed) == {m.host.id, m.co_host.id, m.clerk.id, m.applicant.id}

    own = m.room.snapshot(waiting.id)
    assert own["my_subroom"] == "lobby"
    assert waiting.id in _listed(own)
    assert [s["id"] for s in own["subrooms"]] == ["main", "lobby"]
    assert [s["id"] for s in m.room.snapshot(m.applicant.id)["subrooms"]] == ["main"]


def test_others_see_caucus_members_only_as_in_caucus(m: Mediation) -> None:
    m.room.raise_hand(m.applicant.id, True)
    caucus = m.room.open_caucus(m.host.id, [m.host.id, m.applicant.id])

    seen_by_respondent = _listed(m.room.snapshot(m.respondent.id))[m.applicant.id]
    assert seen_by_respondent["subroom"] == caucus.id
    assert not seen_by_respondent["audio"] and not seen_by_respondent["video"]
    assert not seen_by_respondent["hand"]

    seen_by_host = _listed(m.room.snapshot(m.host.id))[m.applicant.id]
    seen_by_clerk = _listed(m.room.snapshot(m.clerk.id))[m.applicant.id]
    assert seen_by_host["audio"] and seen_by_host["hand"]
    assert seen_by_clerk["audio"]
    assert m.room.snapshot(m.respondent.id)["subrooms"] == [
        {"id": "main", "kind": "main", "label": "Main room", "label_params": {}, "record": False},
        {
            "id": caucus.id,
            "kind": "caucus",
            "label": "Caucus %(n)s",
            "label_params": {"n": 1},
            "record": False,
        },
    ]


def test_a_snapshot_is_plain_json_with_the_room_state_fields(h: Hearing) -> None:
    h.room.hearing(h.judge.id, "start")
    state = h.room.snapshot(h.witness.id)
    decoded = json.loads(json.dumps(state))
    assert decoded == state
    assert state["me"] == h.witness.id
    assert state["my_subroom"] == "witness_wait"
    assert state["my_role"] == "witness"
    assert state["kind"] == "hearing"
    assert (state["locked"], state["ended"]) == (False, False)
    assert state["hearing"] == {"state": "in_session", "since": START.isoformat()}
    assert {s["id"] for s in state["subrooms"]} == {"main", "witness_wait"}
    assert set(state["members"][0]) == {
        "id",
        "name",
        "role",
        "seat",
        "subroom",
        "presence",
        "hand",
        "audio",
        "video",
        "screen",
        "muted_by_host",
        "video_stopped_by_host",
        "quality",
    }
    assert m_ids(state) == {h.judge.id, h.clerk.id, h.plaintiff.id, h.defendant.id, h.witness.id}


def m_ids(state: dict[str, Any]) -> set[str]:
    return set(_listed(state))


def test_labels_are_translated_for_the_viewer(m: Mediation) -> None:
    m.room.open_caucus(m.host.id, [m.applicant.id])
    chinese = {"Main room": "主会场", "Lobby": "等候室", "Caucus %(n)s": "背靠背 %(n)s"}
    state = m.room.snapshot(m.host.id, translate=lambda t: chinese.get(t, t))
    assert [s["label"] for s in state["subrooms"]] == ["主会场", "等候室", "背靠背 1"]
    assert [s["label"] for s in m.room.snapshot(m.host.id)["subrooms"]][-1] == "Caucus %(n)s"


def test_a_snapshot_for_a_stranger_is_not_found(m: Mediation) -> None:
    refused("not_found", lambda: m.room.snapshot("nobody"))


# events -------------------------------------------------------------------------------


def test_events_are_drained_in_order_with_the_room_clock() -> None:
    clock = FakeClock()
    room = make_room(clock=clock)
    host = enter(room, "mediator", RoomRole.HOST)
    clock.advance(5)
    party = enter(room, "applicant", RoomRole.PARTY)
    clock.advance(5)
    room.admit(host.id, party.id)
    clock.advance(5)
    room.dropped(party.id)

    events = room.drain_events()

    assert [(e.kind, e.actor, e.subject) for e in events] == [
        ("join", host.id, host.id),
        ("join", party.id, party.id),
        ("admit", host.id, party.id),
        ("drop", None, party.id),
    ]
    assert [e.at for e in events] == [START + timedelta(seconds=s) for s in (0, 5, 10, 15)]
    assert all(e.at.tzinfo is UTC for e in events)
    assert events[1].detail == {"identity": "user:applicant", "role": "party", "subroom": "lobby"}
    assert events[2].detail == {"from": "lobby", "to": "main"}
    assert room.drain_events() == []
    assert party.joined_at == START + timedelta(seconds=5)


def test_event_times_are_utc_whatever_zone_the_clock_uses() -> None:
    beijing = timezone(timedelta(hours=8))
    room = Room(
        "session:1", RoomKind.MEDIATION, clock=lambda: datetime(2026, 12, 1, 17, 0, tzinfo=beijing)
    )
    enter(room, "mediator", RoomRole.HOST)
    [event] = room.drain_events()
    assert event.at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert event.at.tzinfo is UTC


def test_a_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        Room("session:1", RoomKind.MEDIATION, clock=lambda: datetime(2026, 12, 1, 9, 0))


def test_member_ids_are_short_random_and_distinct() -> None:
    room = Room("session:1", RoomKind.MEDIATION)
    ids = {enter(room, f"p{i}", RoomRole.PARTY).id for i in range(20)}
    assert len(ids) == 20
    assert all(8 <= len(i) <= 16 for i in ids)


def test_a_refusal_carries_its_message_id_and_parameters(m: Mediation) -> None:
    m.room.leave(m.respondent.id)
    error = refused("conflict", lambda: m.room.mute(m.host.id, m.respondent.id))
    assert error.message == "%(name)s is no longer in the room."
    assert error.params == {"name": "respondent"}
    assert str(error) == "respondent is no longer in the room."


# the routing rule holds whatever happens ----------------------------------------------

PEOPLE: list[tuple[str, RoomRole]] = [
    ("host", RoomRole.HOST),
    ("co_host", RoomRole.CO_HOST),
    ("clerk", RoomRole.CLERK),
    ("party1", RoomRole.PARTY),
    ("party2", RoomRole.PARTY),
    ("agent", RoomRole.AGENT),
    ("witness", RoomRole.WITNESS),
    ("observer", RoomRole.OBSERVER),
]
person = st.sampled_from([name for name, _ in PEOPLE])
controller = st.sampled_from(["host", "host", "host", "co_host", "party1"])
places = st.sampled_from(["main", "lobby", "witness_wait", "caucus:1", "caucus:2", "caucus:3"])
operations = st.one_of(
    st.tuples(st.just("join"), person, st.booleans(), st.booleans()),
    st.tuples(st.just("leave"), person),
    st.tuples(st.just("dropped"), person),
    st.tuples(st.just("reconnected"), person),
    st.tuples(st.just("expire"), person),
    st.tuples(st.just("admit"), controller, person),
    st.tuples(st.just("admit_all"), controller),
    st.tuples(st.just("to_lobby"), controller, person),
    st.tuples(st.just("open_caucus"), controller, st.lists(person, max_size=3), st.booleans()),
    st.tuples(st.just("move"), controller, st.lists(person, max_size=3), places),
    st.tuples(st.just("mute"), controller, person),
    st.tuples(st.just("request_unmute"), controller, person),
    st.tuples(st.just("stop_video"), controller, person),
    st.tuples(st.just("set_self"), person, st.booleans(), st.booleans(), st.booleans()),
    st.tuples(st.just("remove"), controller, person),
    st.tuples(st.just("lock"), controller, st.booleans()),
    st.tuples(
        st.just("hearing"), controller, st.sampled_from(["start", "pause", "resume", "close"])
    ),
)


def _apply(room: Room, op: tuple[Any, ...]) -> None:
    def mid(name: str) -> str:
        found = room.by_identity(f"user:{name}")
        return found.id if found is not None else f"unknown-{name}"

    roles = dict(PEOPLE)
    name, *args = op
    if name == "join":
        who, audio, video = args
        room.join(f"user:{who}", who, roles[who], roles[who].value, audio=audio, video=video)
    elif name in ("leave", "dropped", "reconnected", "expire"):
        getattr(room, name)(mid(args[0]))
    elif name in ("admit", "to_lobby", "mute", "request_unmute", "stop_video", "remove"):
        getattr(room, name)(mid(args[0]), mid(args[1]))
    elif name == "admit_all":
        getattr(room, name)(mid(args[0]))
    elif name == "open_caucus":
        room.open_caucus(mid(args[0]), [mid(p) for p in args[1]], record=args[2])
    elif name == "move":
        room.move(mid(args[0]), [mid(p) for p in args[1]], args[2])
    elif name == "set_self":
        room.set_self(mid(args[0]), audio=args[1], video=args[2], screen=args[3])
    elif name == "lock":
        room.lock(mid(args[0]), args[1])
    elif name == "hearing":
        room.hearing(mid(args[0]), args[1], "recess")


def _check_invariants(room: Room) -> None:
    members = room.members()
    subrooms = {s.id: s for s in room.subrooms()}
    for member in members:
        assert member.subroom in subrooms
    for subroom in subrooms.values():
        if subroom.kind is SubRoomKind.CAUCUS:
            assert any(x.present and x.subroom == subroom.id for x in members)
    live = not room.ended and room.hearing_state is not HearingState.CLOSED
    for sub in members:
        for pub in members:
            for source in SOURCES:
                if room.forwards(sub.id, pub.id, source):
                    assert sub.id != pub.id
                    assert sub.present and pub.present
                    assert sub.subroom == pub.subroom
                    assert subrooms[sub.subroom].kind in (SubRoomKind.MAIN, SubRoomKind.CAUCUS)
                    assert live
                    assert pub.role is not RoomRole.OBSERVER
                    if source == "mic":
                        assert not pub.muted_by_host
                    if source == "camera":
                        assert not pub.video_stopped_by_host
        if sub.present:
            for other in room.audience(sub.id):
                assert room.member(other).subroom == sub.subroom
        if not sub.is_staff:
            for seen in room.snapshot(sub.id)["members"]:
                if seen["id"] != sub.id:
                    assert seen["presence"] != "left"
                    assert (
                        seen["subroom"] not in ("lobby", "witness_wait")
                        or seen["subroom"] == sub.subroom
                    )


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(list(RoomKind)),
    ops=st.lists(operations, max_size=40),
    end_after=st.one_of(st.none(), st.integers(min_value=0, max_value=40)),
)
def test_nothing_ever_crosses_a_sub_room_or_leaves_a_waiting_room(
    kind: RoomKind, ops: list[tuple[Any, ...]], end_after: int | None
) -> None:
    room = make_room(kind)
    for name, role in PEOPLE:
        room.join(f"user:{name}", name, role, role.value, audio=True, video=True)
    for step, op in enumerate(ops):
        if step == end_after:
            with contextlib.suppress(RoomRefused):  # the host may have left already
                room.end(room.members()[0].id)
        try:
            _apply(room, op)
        except RoomRefused as error:
            assert error.code in {"forbidden", "not_found", "conflict", "invalid", "gone"}
        _check_invariants(room)
    assert all(e.at.tzinfo is UTC for e in room.drain_events())


def test_staff_roles_are_the_host_the_co_host_and_the_clerk() -> None:
    assert frozenset({RoomRole.HOST, RoomRole.CO_HOST, RoomRole.CLERK}) == STAFF_ROLES


def test_joining_again_while_connected_keeps_the_member_and_stops_screen_sharing(
    m: Mediation,
) -> None:
    m.room.set_self(m.applicant.id, screen=True)
    m.room.drain_events()
    again = enter(m.room, "applicant", RoomRole.PARTY)
    assert again is m.applicant and not again.screen
    [event] = m.room.drain_events()
    assert (event.kind, event.detail) == ("rejoin", {"after": "connected", "subroom": "main"})
