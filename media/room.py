"""One room's live state and the rules for changing it.

Pure Python: no I/O, no asyncio, no aiortc.  Every change goes through one method of
:class:`Room`, which checks who asks and whether the move is legal (raising
:class:`RoomRefused` otherwise), changes the state, and records one :class:`RoomEvent`
only when something really changed.  The server drains the events to log them and to
tell the members; it asks :meth:`Room.forwards` whom the SFU may forward to whom and
:meth:`Room.snapshot` what each member may see.

Choices made here:

* Caucus labels are the message id ``"Caucus %(n)s"`` with ``{"n": n}``; the main room,
  lobby and witness waiting room have labels too.  :meth:`Room.snapshot` gives each
  sub-room's ``label`` (message id) and ``label_params`` for the server to translate,
  or the finished text when given a ``translate`` function.
* The host's mute and stop-video are lifted by :meth:`Room.request_unmute`, which asks
  the member to unmute (it never turns their microphone or camera on: they decide).
* A locked room still takes back its own members after a network failure (even one
  that lasted too long), but not new people or members who left by choice; staff
  always enter.
* A closed hearing carries no media and takes no joins, but the room lives on (chat,
  host controls) until the host ends it.  An ended room refuses every change except
  presence bookkeeping.
* Members who left stay listed to staff (presence ``left``), never to the others.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from media.room_hearing import HEARING_ACTIONS, HEARING_CLOSED, next_hearing_state
from media.room_types import (
    ALLOWED_PAUSE_REASONS,
    CAUCUS_PREFIX,
    CONTROL_ROLES,
    LOBBY,
    MAIN,
    N_,
    PRESENT,
    QUALITY_LEVELS,
    STAFF_ROLES,
    WITNESS_WAIT,
    HearingState,
    LeftReason,
    Member,
    Presence,
    Quality,
    RoomEvent,
    RoomKind,
    RoomRefused,
    RoomRole,
    Source,
    SubRoom,
    SubRoomKind,
    role_can_publish,
    utcnow,
)
from media.room_views import member_view, member_visible, subroom_view, subroom_visible

__all__ = [
    "ALLOWED_PAUSE_REASONS",
    "CAUCUS_LABEL",
    "CAUCUS_PREFIX",
    "CONTROL_ROLES",
    "HEARING_ACTIONS",
    "LOBBY",
    "MAIN",
    "N_",
    "PRESENT",
    "QUALITY_LEVELS",
    "STAFF_ROLES",
    "WITNESS_WAIT",
    "HearingState",
    "LeftReason",
    "Member",
    "Presence",
    "Quality",
    "Room",
    "RoomEvent",
    "RoomKind",
    "RoomRefused",
    "RoomRole",
    "Source",
    "SubRoom",
    "SubRoomKind",
    "new_member_id",
    "role_can_publish",
    "utcnow",
]

logger = logging.getLogger(__name__)

CAUCUS_LABEL = N_("Caucus %(n)s")
_LABELS = {
    MAIN: N_("Main room"),
    LOBBY: N_("Lobby"),
    WITNESS_WAIT: N_("Witness waiting room"),
}

_NO_MEMBER = N_("No such member in this room.")
_NOT_IN_ROOM = N_("You are not in the room.")
_GONE_MEMBER = N_("%(name)s is no longer in the room.")
_CONTROL_ONLY = N_("Only the host or a co-host can do this.")
_HOST_ONLY = N_("Only the host can do this.")
_NOT_ON_HOST = N_("A co-host cannot do this to the host.")
_NOT_ON_SELF = N_("You cannot do this to yourself.")
_ENDED = N_("This room has ended.")
_NOT_PUBLISHER = N_("Observers cannot speak or show video.")


def new_member_id() -> str:
    """A short random member id."""
    return secrets.token_urlsafe(8)


class Room:
    """The live side of one scheduled mediation or hearing."""

    def __init__(
        self,
        key: str,
        kind: RoomKind,
        *,
        clock: Callable[[], datetime] = utcnow,
        hearing_state: HearingState = HearingState.WAITING,
        new_id: Callable[[], str] = new_member_id,
    ) -> None:
        self.key = key
        self.kind = RoomKind(kind)
        self._clock = clock
        self._new_id = new_id
        self._members: dict[str, Member] = {}
        self._by_identity: dict[str, str] = {}
        self._removed: set[str] = set()
        self._subrooms: dict[str, SubRoom] = {
            MAIN: SubRoom(id=MAIN, kind=SubRoomKind.MAIN, label=_LABELS[MAIN]),
            LOBBY: SubRoom(id=LOBBY, kind=SubRoomKind.LOBBY, label=_LABELS[LOBBY]),
        }
        self._hearing: HearingState | None = None
        if self.kind is RoomKind.HEARING:
            self._subrooms[WITNESS_WAIT] = SubRoom(
                id=WITNESS_WAIT, kind=SubRoomKind.WITNESS_WAIT, label=_LABELS[WITNESS_WAIT]
            )
            self._hearing = HearingState(hearing_state)
        self._hearing_since = self._now()
        self._caucuses_opened = 0
        self._locked = False
        self._ended = False
        self._events: list[RoomEvent] = []

    def __repr__(self) -> str:
        return f"<Room {self.key} {self.kind.value} members={len(self._members)}>"

    # read-only state ------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self._locked

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def hearing_state(self) -> HearingState | None:
        """The hearing's state, or ``None`` for a mediation."""
        return self._hearing

    @property
    def hearing_since(self) -> datetime:
        return self._hearing_since

    def subrooms(self) -> list[SubRoom]:
        """The open sub-rooms: main, lobby, witness_wait (hearings), then caucuses."""
        return list(self._subrooms.values())

    def subroom(self, subroom_id: str) -> SubRoom:
        found = self._subrooms.get(subroom_id)
        if found is None:
            raise RoomRefused("not_found", N_("There is no such sub-room."))
        return found

    def members(self, *, present_only: bool = False) -> list[Member]:
        """Members in the order they first joined."""
        return [m for m in self._members.values() if m.present or not present_only]

    def member(self, member_id: str) -> Member:
        found = self._members.get(member_id)
        if found is None:
            raise RoomRefused("not_found", _NO_MEMBER)
        return found

    def by_identity(self, identity: str) -> Member | None:
        member_id = self._by_identity.get(identity)
        return None if member_id is None else self._members[member_id]

    # membership -----------------------------------------------------------------------

    def join(
        self, identity: str, name: str, role: RoomRole, seat: str, *, audio: bool, video: bool
    ) -> Member:
        """Let a person in, or back in; the same identity always gets the same member."""
        role = _role(role)
        if identity in self._removed:
            raise RoomRefused("forbidden", N_("You were removed from this room."))
        if self._ended:
            raise RoomRefused("gone", _ENDED)
        if self._hearing is HearingState.CLOSED:
            raise RoomRefused("gone", HEARING_CLOSED)
        existing = self.by_identity(identity)
        if existing is not None:
            return self._rejoin(existing, name, seat, audio=audio, video=video)
        if self._locked and role not in STAFF_ROLES:
            raise RoomRefused("forbidden", N_("The room is locked; ask the host to let you in."))
        member = Member(
            id=self._fresh_id(),
            identity=identity,
            name=name,
            role=role,
            seat=seat,
            subroom=self._placement(role),
            audio=audio and role_can_publish(role),
            video=video and role_can_publish(role),
            joined_at=self._now(),
        )
        self._members[member.id] = member
        self._by_identity[identity] = member.id
        self._emit(
            "join",
            member.id,
            member.id,
            {"identity": identity, "role": role.value, "subroom": member.subroom},
        )
        return member

    def _rejoin(self, member: Member, name: str, seat: str, *, audio: bool, video: bool) -> Member:
        before = member.presence
        if (
            before is Presence.LEFT
            and self._locked
            and not member.is_staff
            and member.left_reason is not LeftReason.DROP_TIMEOUT
        ):
            raise RoomRefused("forbidden", N_("The room is locked; ask the host to let you in."))
        member.name = name
        member.seat = seat
        member.presence = Presence.CONNECTED
        member.left_at = None
        member.left_reason = None
        # a new peer connection: what the devices send now, within the host's limits
        member.audio = audio and role_can_publish(member.role) and not member.muted_by_host
        member.video = video and role_can_publish(member.role) and not member.video_stopped_by_host
        member.screen = False
        self._emit(
            "rejoin", member.id, member.id, {"after": before.value, "subroom": member.subroom}
        )
        return member

    def leave(self, member_id: str) -> None:
        """The member left by choice."""
        member = self.member(member_id)
        if not member.present:
            return
        self._set_left(member, LeftReason.LEAVE)
        self._emit("leave", member.id, member.id, {"subroom": member.subroom})
        self._prune_caucuses(member.id)

    def dropped(self, member_id: str) -> None:
        """The member's connection failed; they have a while to come back."""
        member = self.member(member_id)
        if member.presence is not Presence.CONNECTED:
            return
        member.presence = Presence.RECONNECTING
        self._emit("drop", None, member.id, {"subroom": member.subroom})

    def reconnected(self, member_id: str) -> None:
        """The member is back after a drop, in the same sub-room."""
        member = self.member(member_id)
        if member.presence is Presence.CONNECTED:
            return
        if member.presence is Presence.LEFT:
            raise RoomRefused("conflict", N_("You are no longer in the room; join again."))
        member.presence = Presence.CONNECTED
        self._emit(
            "rejoin",
            member.id,
            member.id,
            {"after": Presence.RECONNECTING.value, "subroom": member.subroom},
        )

    def expire(self, member_id: str) -> None:
        """The drop lasted too long.  A no-op if the member came back meanwhile."""
        member = self.member(member_id)
        if member.presence is not Presence.RECONNECTING:
            return
        self._set_left(member, LeftReason.DROP_TIMEOUT)
        self._emit("drop_timeout", None, member.id, {"subroom": member.subroom})
        self._prune_caucuses(None)

    # host controls --------------------------------------------------------------------

    def admit(self, actor: str, member_id: str) -> None:
        """Let someone waiting (lobby or witness waiting room) into the main room."""
        by = self._controller(actor)
        member = self._target(by, member_id, protect_host=False)
        if member.subroom not in (LOBBY, WITNESS_WAIT):
            raise RoomRefused(
                "conflict", N_("%(name)s is not waiting to be let in."), name=member.name
            )
        self._place(member, MAIN, "admit", by.id)

    def admit_all(self, actor: str) -> list[str]:
        """Let everyone in the lobby in (not witnesses: they wait until called)."""
        by = self._controller(actor)
        waiting = [m for m in self._members.values() if m.present and m.subroom == LOBBY]
        for member in waiting:
            self._place(member, MAIN, "admit", by.id)
        return [m.id for m in waiting]

    def to_lobby(self, actor: str, member_id: str) -> None:
        by = self._controller(actor)
        member = self._target(by, member_id)
        if member.subroom == LOBBY:
            raise RoomRefused("conflict", N_("%(name)s is already in the lobby."), name=member.name)
        self._place(member, LOBBY, "to_lobby", by.id)
        self._prune_caucuses(by.id)

    def lock(self, actor: str, locked: bool) -> None:
        by = self._controller(actor)
        if self._locked == locked:
            return
        self._locked = locked
        self._emit("lock", by.id, None, {"locked": locked})

    def mute(self, actor: str, member_id: str) -> None:
        """Turn the member's microphone off; they cannot turn it on until asked to."""
        by = self._controller(actor)
        member = self._target(by, member_id)
        if member.muted_by_host and not member.audio:
            return
        member.muted_by_host = True
        member.audio = False
        self._emit("mute", by.id, member.id, {})

    def stop_video(self, actor: str, member_id: str) -> None:
        """Turn the member's camera off; they cannot turn it on until asked to."""
        by = self._controller(actor)
        member = self._target(by, member_id)
        if member.video_stopped_by_host and not member.video:
            return
        member.video_stopped_by_host = True
        member.video = False
        self._emit("stop_video", by.id, member.id, {})

    def request_unmute(
        self, actor: str, member_id: str, *, audio: bool = True, video: bool = True
    ) -> None:
        """Ask the member to unmute: lifts the host's mute (``audio``) and stop-video
        (``video``) so that the member may turn them on; turns nothing on itself."""
        by = self._controller(actor)
        member = self._target(by, member_id)
        if not role_can_publish(member.role):
            raise RoomRefused("invalid", _NOT_PUBLISHER)
        lift_audio = audio and member.muted_by_host
        lift_video = video and member.video_stopped_by_host
        if not (lift_audio or lift_video) and member.audio:
            raise RoomRefused("conflict", N_("%(name)s is not muted."), name=member.name)
        if lift_audio:
            member.muted_by_host = False
        if lift_video:
            member.video_stopped_by_host = False
        self._emit("unmute_requested", by.id, member.id, {"audio": lift_audio, "video": lift_video})

    def remove(self, actor: str, member_id: str) -> None:
        """Put the member out for good: their identity cannot join again."""
        by = self._controller(actor)
        member = self._target(by, member_id, present=False)
        if member.removed:
            return
        member.removed = True
        self._removed.add(member.identity)
        if member.present:
            self._set_left(member, LeftReason.REMOVED)
        else:
            member.left_reason = LeftReason.REMOVED
        self._emit("remove", by.id, member.id, {"subroom": member.subroom})
        self._prune_caucuses(by.id)

    def end(self, actor: str) -> None:
        by = self._controller(actor, host_only=True)
        self._ended = True
        self._emit("end", by.id, None, {})
        logger.info("room %s: ended", self.key)

    def open_caucus(self, actor: str, member_ids: list[str], record: bool = False) -> SubRoom:
        """Open a caucus (背靠背) and move these members (the actor may be one) into it."""
        by = self._controller(actor)
        if self.kind is not RoomKind.MEDIATION:
            raise RoomRefused("conflict", N_("Caucuses are held only in mediations."))
        if record and by.role is not RoomRole.HOST:
            raise RoomRefused("forbidden", _HOST_ONLY)
        members = self._movable(by, member_ids)
        self._caucuses_opened += 1
        n = self._caucuses_opened
        caucus = SubRoom(
            id=f"{CAUCUS_PREFIX}{n}",
            kind=SubRoomKind.CAUCUS,
            label=CAUCUS_LABEL,
            record=record,
            label_params={"n": n},
        )
        self._subrooms[caucus.id] = caucus
        self._emit(
            "caucus_open",
            by.id,
            None,
            {"subroom": caucus.id, "record": record, "members": [m.id for m in members]},
        )
        for member in members:
            self._place(member, caucus.id, "move", by.id)
        self._prune_caucuses(by.id)
        return caucus

    def move(self, actor: str, member_ids: list[str], to: str) -> None:
        """Move members to a sub-room (back to main, into a caucus, calling a witness in)."""
        by = self._controller(actor)
        target = self.subroom(to)
        members = self._movable(by, member_ids)
        if not target.carries_media and any(m.id == by.id for m in members):
            raise RoomRefused("invalid", N_("You cannot send yourself to a waiting room."))
        for member in members:
            self._place(member, target.id, "move", by.id)
        self._prune_caucuses(by.id)

    def set_caucus_record(self, actor: str, subroom: str, record: bool) -> None:
        by = self._controller(actor, host_only=True)
        caucus = self.subroom(subroom)
        if caucus.kind is not SubRoomKind.CAUCUS:
            raise RoomRefused("invalid", N_("Only a caucus can be recorded or not."))
        if caucus.record == record:
            return
        caucus.record = record
        self._emit("caucus_record", by.id, None, {"subroom": caucus.id, "record": record})

    def hearing(self, actor: str, action: str, reason: str = "") -> HearingState:
        """Start, pause (with a reason), resume or close the hearing: the judge's call."""
        by = self._controller(actor, host_only=True)
        if self._hearing is None:
            raise RoomRefused("conflict", N_("This room is not a hearing."))
        target = next_hearing_state(self._hearing, action, reason)
        before = self._hearing
        self._hearing = target
        self._hearing_since = self._now()
        logger.info("room %s: hearing %s -> %s", self.key, before.value, target.value)
        self._emit(
            f"hearing_{action}",
            by.id,
            None,
            {"from": before.value, "to": target.value, "reason": reason},
        )
        return target

    # the member's own controls --------------------------------------------------------

    def set_self(
        self,
        member_id: str,
        *,
        audio: bool | None = None,
        video: bool | None = None,
        screen: bool | None = None,
    ) -> None:
        """Turn one's own microphone, camera or screen sharing on or off."""
        member = self._acting_self(member_id)
        wanted = {"audio": audio, "video": video, "screen": screen}
        changes = {k: v for k, v in wanted.items() if v is not None and v != getattr(member, k)}
        if any(changes.values()) and not role_can_publish(member.role):
            raise RoomRefused("forbidden", _NOT_PUBLISHER)
        if changes.get("audio") and member.muted_by_host:
            raise RoomRefused(
                "forbidden", N_("The host has muted you; you can unmute when the host asks you to.")
            )
        if changes.get("video") and member.video_stopped_by_host:
            raise RoomRefused(
                "forbidden",
                N_("The host has stopped your video; you can start it when the host asks you to."),
            )
        if not changes:
            return
        for name, value in changes.items():
            setattr(member, name, value)
        self._emit("self", member.id, member.id, changes)

    def raise_hand(self, member_id: str, raised: bool) -> None:
        member = self._acting_self(member_id)
        if member.hand == raised:
            return
        member.hand = raised
        self._emit("hand", member.id, member.id, {"raised": raised})

    def set_quality(self, member_id: str, level: str) -> None:
        member = self.member(member_id)
        if level not in QUALITY_LEVELS:
            raise RoomRefused(
                "invalid", N_("Unknown connection quality %(level)s."), level=str(level)
            )
        if member.quality == level:
            return
        member.quality = Quality(level)
        self._emit("quality", member.id, member.id, {"level": member.quality.value})

    # queries for the server and the SFU -----------------------------------------------

    def may_chat(self, member_id: str) -> bool:
        member = self._members.get(member_id)
        return (
            member is not None
            and not self._ended
            and member.present
            and self._subrooms[member.subroom].carries_media
        )

    def forwards(self, subscriber_id: str, publisher_id: str, source: str) -> bool:
        """Whether the subscriber receives this source of the publisher (the routing rule)."""
        if subscriber_id == publisher_id:
            return False
        sub = self._members.get(subscriber_id)
        pub = self._members.get(publisher_id)
        if sub is None or pub is None or not (sub.present and pub.present):
            return False
        if sub.subroom != pub.subroom or not self._subrooms[pub.subroom].carries_media:
            return False
        if not self._media_live() or not role_can_publish(pub.role):
            return False
        return self._sends(pub, source)

    @staticmethod
    def _sends(pub: Member, source: str) -> bool:
        """Whether the member sends this source now (within the host's limits)."""
        if source == Source.MIC:
            return pub.audio and not pub.muted_by_host
        if source == Source.CAMERA:
            return pub.video and not pub.video_stopped_by_host
        if source == Source.SCREEN:
            return pub.screen
        return False

    def recorded(self, member_id: str) -> bool:
        """Whether this member's media goes to recording and transcription now: present,
        publishing, in the main room or in a caucus whose recording the host turned on."""
        member = self._members.get(member_id)
        if member is None or not member.present or not role_can_publish(member.role):
            return False
        where = self._subrooms[member.subroom]
        return self._media_live() and (
            where.kind is SubRoomKind.MAIN or (where.kind is SubRoomKind.CAUCUS and where.record)
        )

    def records(self, member_id: str, source: str) -> bool:
        """Whether this source of the member goes into the room's recording now: what
        :meth:`recorded` allows and the member sends (a muted microphone is not)."""
        member = self._members.get(member_id)
        return member is not None and self.recorded(member_id) and self._sends(member, source)

    def audience(self, member_id: str) -> list[str]:
        """Who may read this member's chat lines and captions: the present members of the
        same sub-room (the member included); nobody for a waiting room."""
        member = self.member(member_id)
        if self._ended or not member.present or not self._subrooms[member.subroom].carries_media:
            return []
        return [m.id for m in self._members.values() if m.present and m.subroom == member.subroom]

    def snapshot(
        self, for_member: str, *, translate: Callable[[str], str] | None = None
    ) -> dict[str, Any]:
        """What this member may see of the room, as plain JSON-ready values."""
        viewer = self.member(for_member)
        hearing = (
            None
            if self._hearing is None
            else {"state": self._hearing.value, "since": self._hearing_since.isoformat()}
        )
        return {
            "kind": self.kind.value,
            "me": viewer.id,
            "my_subroom": viewer.subroom,
            "my_role": viewer.role.value,
            "locked": self._locked,
            "ended": self._ended,
            "hearing": hearing,
            "subrooms": [
                subroom_view(s, translate)
                for s in self._subrooms.values()
                if subroom_visible(s, viewer)
            ],
            "members": [
                member_view(m, viewer, self._subrooms[m.subroom])
                for m in self._members.values()
                if member_visible(m, viewer, self._subrooms[m.subroom])
            ],
        }

    def drain_events(self) -> list[RoomEvent]:
        """The events since the last drain, oldest first."""
        events, self._events = self._events, []
        return events

    # internals ------------------------------------------------------------------------

    def _now(self) -> datetime:
        at = self._clock()
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("the room clock must return aware datetimes")
        return at.astimezone(UTC)

    def _emit(
        self, kind: str, actor: str | None, subject: str | None, detail: dict[str, Any]
    ) -> None:
        event = RoomEvent(kind=kind, actor=actor, subject=subject, detail=detail, at=self._now())
        logger.debug("room %s: %s actor=%s subject=%s %s", self.key, kind, actor, subject, detail)
        self._events.append(event)

    def _fresh_id(self) -> str:
        while True:
            candidate = self._new_id()
            if candidate not in self._members:
                return candidate

    def _placement(self, role: RoomRole) -> str:
        if role in STAFF_ROLES:
            return MAIN
        if role is RoomRole.WITNESS and self.kind is RoomKind.HEARING:
            return WITNESS_WAIT
        return LOBBY

    def _media_live(self) -> bool:
        return not self._ended and self._hearing is not HearingState.CLOSED

    def _set_left(self, member: Member, reason: LeftReason) -> None:
        member.presence = Presence.LEFT
        member.left_at = self._now()
        member.left_reason = reason
        member.screen = False
        if reason is not LeftReason.DROP_TIMEOUT:
            member.hand = False

    def _controller(self, actor: str, *, host_only: bool = False) -> Member:
        """The acting member, if the room is live and their role may run it."""
        if self._ended:
            raise RoomRefused("gone", _ENDED)
        by = self.member(actor)
        if not by.present:
            raise RoomRefused("forbidden", _NOT_IN_ROOM)
        if host_only and by.role is not RoomRole.HOST:
            raise RoomRefused("forbidden", _HOST_ONLY)
        if by.role not in CONTROL_ROLES:
            raise RoomRefused("forbidden", _CONTROL_ONLY)
        return by

    def _target(
        self, by: Member, member_id: str, *, protect_host: bool = True, present: bool = True
    ) -> Member:
        member = self.member(member_id)
        if member.id == by.id:
            raise RoomRefused("invalid", _NOT_ON_SELF)
        if protect_host and by.role is RoomRole.CO_HOST and member.role is RoomRole.HOST:
            raise RoomRefused("forbidden", _NOT_ON_HOST)
        if present and not member.present:
            raise RoomRefused("conflict", _GONE_MEMBER, name=member.name)
        return member

    def _movable(self, by: Member, member_ids: Iterable[str]) -> list[Member]:
        """The members to move, all checked before any moves."""
        members = [self.member(i) for i in dict.fromkeys(member_ids)]
        if not members:
            raise RoomRefused("invalid", N_("Choose at least one member."))
        for member in members:
            if by.role is RoomRole.CO_HOST and member.role is RoomRole.HOST:
                raise RoomRefused("forbidden", _NOT_ON_HOST)
            if not member.present:
                raise RoomRefused("conflict", _GONE_MEMBER, name=member.name)
        return members

    def _acting_self(self, member_id: str) -> Member:
        if self._ended:
            raise RoomRefused("gone", _ENDED)
        member = self.member(member_id)
        if not member.present:
            raise RoomRefused("conflict", _NOT_IN_ROOM)
        return member

    def _place(self, member: Member, to: str, kind: str, actor: str) -> None:
        before = member.subroom
        if before == to:
            return
        member.subroom = to
        self._emit(kind, actor, member.id, {"from": before, "to": to})

    def _prune_caucuses(self, actor: str | None) -> None:
        """Close caucuses nobody present is in; their absent members return to main."""
        occupied = {m.subroom for m in self._members.values() if m.present}
        for caucus in list(self._subrooms.values()):
            if caucus.kind is not SubRoomKind.CAUCUS or caucus.id in occupied:
                continue
            del self._subrooms[caucus.id]
            for member in self._members.values():
                if member.subroom == caucus.id:
                    member.subroom = MAIN
            self._emit("caucus_close", actor, None, {"subroom": caucus.id})


def _role(role: RoomRole | str) -> RoomRole:
    try:
        return RoomRole(role)
    except ValueError:
        raise RoomRefused("invalid", N_("Unknown role %(role)s."), role=str(role)) from None
