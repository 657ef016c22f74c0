"""The vocabulary of a live room: roles, sub-rooms, presence, members and room events.

Plain data only; the rules that change it live in :mod:`media.room`, which re-exports
every name defined here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


def N_(text: str) -> str:
    """Mark a message for extraction; the server translates it where it is shown."""
    return text


def utcnow() -> datetime:
    """The default room clock: now, as an aware UTC datetime."""
    return datetime.now(UTC)


class RoomRole(StrEnum):
    HOST = "host"  # the mediator, or the presiding judge of a hearing
    CO_HOST = "co_host"
    CLERK = "clerk"
    PARTY = "party"
    AGENT = "agent"
    WITNESS = "witness"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"


class RoomKind(StrEnum):
    MEDIATION = "mediation"
    HEARING = "hearing"


class SubRoomKind(StrEnum):
    MAIN = "main"
    LOBBY = "lobby"
    WITNESS_WAIT = "witness_wait"
    CAUCUS = "caucus"


class HearingState(StrEnum):
    WAITING = "waiting"
    IN_SESSION = "in_session"
    PAUSED = "paused"
    CLOSED = "closed"


class Presence(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    LEFT = "left"


class Source(StrEnum):
    MIC = "mic"
    CAMERA = "camera"
    SCREEN = "screen"


class Quality(StrEnum):
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
    UNKNOWN = "unknown"


class LeftReason(StrEnum):
    """Why a member's presence is LEFT (kept apart: 在线诉讼规则 Art. 25)."""

    LEAVE = "leave"  # left by choice
    DROP_TIMEOUT = "drop_timeout"  # the network failed for too long
    REMOVED = "removed"  # removed by the host


STAFF_ROLES: frozenset[RoomRole] = frozenset({RoomRole.HOST, RoomRole.CO_HOST, RoomRole.CLERK})
"""Roles that enter the main room directly, even when the room is locked, and see everyone."""

CONTROL_ROLES: frozenset[RoomRole] = frozenset({RoomRole.HOST, RoomRole.CO_HOST})
"""Roles that run the room (admit, move, mute, lock, remove, caucus)."""

PRESENT: frozenset[Presence] = frozenset({Presence.CONNECTED, Presence.RECONNECTING})

MAIN = "main"
LOBBY = "lobby"
WITNESS_WAIT = "witness_wait"
CAUCUS_PREFIX = "caucus:"

ALLOWED_PAUSE_REASONS: tuple[str, ...] = ("recess", "non_public_evidence", "mediation")
"""Why a hearing may be paused (休庭, 不公开质证, 庭中调解)."""

QUALITY_LEVELS: tuple[str, ...] = (Quality.GOOD, Quality.FAIR, Quality.POOR)
"""The levels a member may report (``unknown`` is only the starting value)."""


def role_can_publish(role: RoomRole | str) -> bool:
    """Whether this role may send audio or video (an observer never does)."""
    return role != RoomRole.OBSERVER


def _format(message: str, params: dict[str, Any]) -> str:
    try:
        return message % params if params else message
    except (KeyError, TypeError, ValueError):
        return message


class RoomRefused(Exception):
    """A move the room does not allow.

    ``code`` is one of ``forbidden``, ``not_found``, ``conflict``, ``invalid``, ``gone``;
    ``message`` is an English message id (translated by the server) and ``params`` fills
    its ``%(name)s`` placeholders.
    """

    def __init__(self, code: str, message: str, /, **params: Any) -> None:
        super().__init__(_format(message, params))
        self.code = code
        self.message = message
        self.params: dict[str, Any] = params


@dataclass(kw_only=True)
class SubRoom:
    """A part of the room; only ``main`` and caucuses carry media.

    ``label`` is an English message id with ``%(name)s`` placeholders filled from
    ``label_params`` (e.g. ``"Caucus %(n)s"`` with ``{"n": 2}``).
    """

    id: str
    kind: SubRoomKind
    label: str = ""
    record: bool = False
    label_params: dict[str, Any] = field(default_factory=dict)

    def label_text(self, translate: Callable[[str], str] | None = None) -> str:
        """The label to show, translated by ``translate`` when given (English otherwise)."""
        if not self.label:
            return ""
        text = translate(self.label) if translate is not None else self.label
        return _format(text, self.label_params)

    @property
    def carries_media(self) -> bool:
        return self.kind in (SubRoomKind.MAIN, SubRoomKind.CAUCUS)


@dataclass(kw_only=True)
class Member:
    """One person in a room.  Read it freely; change it only through :class:`Room`."""

    id: str
    identity: str  # "user:<id>" or "guest:<participant row id>"
    name: str
    role: RoomRole
    seat: str
    subroom: str
    presence: Presence = Presence.CONNECTED
    hand: bool = False
    audio: bool = False
    video: bool = False
    screen: bool = False
    muted_by_host: bool = False
    video_stopped_by_host: bool = False
    quality: Quality = Quality.UNKNOWN
    joined_at: datetime
    left_at: datetime | None = None
    left_reason: LeftReason | None = None
    removed: bool = False

    @property
    def present(self) -> bool:
        """Connected, or reconnecting after a network drop."""
        return self.presence in PRESENT

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


@dataclass(frozen=True)
class RoomEvent:
    """Something that happened in the room, for the server's log and broadcasts.

    ``actor`` is the member who did it (``None`` for the network or the room itself),
    ``subject`` the member it happened to, ``at`` the room clock's aware UTC time.
    """

    kind: str
    actor: str | None
    subject: str | None
    detail: dict[str, Any]
    at: datetime
