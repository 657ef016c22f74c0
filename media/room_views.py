"""What each member may see of a room: the plain, JSON-ready parts of ``RoomState``.

Staff (host, co-host, clerk) see everyone, members who left included.  The others see
who is present in the main room and in their own sub-room, and caucus members only as
"in caucus" (the sub-room id, nothing of what happens there); people waiting in the
lobby or the witness waiting room are shown to staff and to themselves only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from media.room_types import Member, Quality, SubRoom, SubRoomKind

_HIDDEN_IN_CAUCUS: dict[str, Any] = {
    "hand": False,
    "audio": False,
    "video": False,
    "screen": False,
    "muted_by_host": False,
    "video_stopped_by_host": False,
    "quality": Quality.UNKNOWN.value,
}


def member_visible(member: Member, viewer: Member, where: SubRoom) -> bool:
    """Whether ``viewer`` sees ``member`` listed; ``where`` is the member's sub-room."""
    if member.id == viewer.id or viewer.is_staff:
        return True
    if not member.present:
        return False
    return member.subroom == viewer.subroom or where.kind in (SubRoomKind.MAIN, SubRoomKind.CAUCUS)


def member_view(member: Member, viewer: Member, where: SubRoom) -> dict[str, Any]:
    """One entry of ``RoomState.members`` as ``viewer`` may see it."""
    view: dict[str, Any] = {
        "id": member.id,
        "name": member.name,
        "role": member.role.value,
        "seat": member.seat,
        "subroom": member.subroom,
        "presence": member.presence.value,
        "hand": member.hand,
        "audio": member.audio,
        "video": member.video,
        "screen": member.screen,
        "muted_by_host": member.muted_by_host,
        "video_stopped_by_host": member.video_stopped_by_host,
        "quality": member.quality.value,
    }
    elsewhere = member.subroom != viewer.subroom
    if elsewhere and where.kind is SubRoomKind.CAUCUS and not viewer.is_staff:
        view.update(_HIDDEN_IN_CAUCUS)
    return view


def subroom_visible(subroom: SubRoom, viewer: Member) -> bool:
    """Staff see every sub-room; the others the main room, caucuses and their own."""
    return viewer.is_staff or subroom.carries_media or subroom.id == viewer.subroom


def subroom_view(subroom: SubRoom, translate: Callable[[str], str] | None = None) -> dict[str, Any]:
    """One entry of ``RoomState.subrooms``.

    ``label`` is the message id, to be translated and filled from ``label_params``;
    with ``translate`` it is the finished text already.
    """
    return {
        "id": subroom.id,
        "kind": subroom.kind.value,
        "label": subroom.label if translate is None else subroom.label_text(translate),
        "label_params": dict(subroom.label_params),
        "record": subroom.record,
    }


__all__ = ["member_view", "member_visible", "subroom_view", "subroom_visible"]
