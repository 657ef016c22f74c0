"""The rooms' socket.io events: joining, media negotiation, host controls, hearing
mode and chat.

Each handler parses its input, finds the sender's member in the room the socket
joined (so an event can only act in the sender's own room), lets the room model
check the sender's role, and returns the acknowledgement.  Errors become the
``error`` event through ``server.sockets.Signalling``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from media.room import Member, Room
from media.sfu import MediaError
from server.auth import access
from server.auth.principal import Principal
from server.db.models import CaseSession, ChatLine
from server.domain.errors import N_, Forbidden, Invalid, NotFound
from server.domain.ids import parse_id
from server.i18n import translate_in
from server.rooms.guests import GuestPass
from server.rooms.ice import ice_servers
from server.rooms.live import LiveRoom, Retired, RoomHub, track_map
from server.rooms.names import transcript_room
from server.services import rooms as service
from server.sockets import Signalling

Caller = Principal | GuestPass

MAX_SDP = 32 * 1024
MAX_CHAT = 2000
SOURCES = ("mic", "camera", "screen")
HEARING_ACTIONS = ("start", "pause", "resume", "close")
NOT_IN_ROOM = N_("You are not in this room. Join it first.")


def _dict(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Invalid(N_("The message is not valid."))
    return data


def _text(data: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(N_("This field is required: %(field)s."), field=name)
    if len(value) > limit:
        raise Invalid(N_("%(field)s is too long (at most %(n)s characters)."), field=name, n=limit)
    return value


def _flag(data: dict[str, Any], name: str, default: bool | None = None) -> bool | None:
    value = data.get(name, default)
    if value is not None and not isinstance(value, bool):
        raise Invalid(N_("The message is not valid."))
    return value


def _required_flag(data: dict[str, Any], name: str) -> bool:
    value = _flag(data, name)
    if value is None:
        raise Invalid(N_("This field is required: %(field)s."), field=name)
    return value


def _member_ids(data: dict[str, Any]) -> list[str]:
    ids = data.get("member_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise Invalid(N_("This field is required: %(field)s."), field="member_ids")
    return ids[:50]


def _member_id(data: dict[str, Any]) -> str:
    return _text(data, "member_id", 64)


class RoomEvents:
    def __init__(self, signalling: Signalling, hub: RoomHub) -> None:
        self.signalling = signalling
        self.hub = hub
        on = signalling.on
        on("room:join", self.join)
        on("room:leave", self.leave)
        on("media:offer", self.offer)
        on("media:answer", self.answer)
        on("media:ice", self.ice)
        on("media:keyframe", self.keyframe)
        on("media:quality", self.quality)
        on("room:self", self.set_self)
        on("room:hand", self.hand)
        on("chat:send", self.chat)
        on("room:admit", self.admit)
        on("room:to_lobby", self.to_lobby)
        on("room:lock", self.lock)
        on("room:mute", self.mute)
        on("room:unmute_request", self.unmute_request)
        on("room:stop_video", self.stop_video)
        on("room:remove", self.remove)
        on("room:end", self.end)
        on("room:caucus", self.caucus)
        on("room:move", self.move)
        on("room:caucus_record", self.caucus_record)
        on("hearing:action", self.hearing)
        on("transcript:watch", self.watch_transcript)
        signalling.on_disconnect(self.disconnected)

    # --- where the sender is ---------------------------------------------------------

    async def _where(self, sid: str) -> tuple[LiveRoom, Member]:
        state = await self.hub.sio.get_session(sid)
        session_id, member_id = state.get("room"), state.get("member")
        live = self.hub.rooms.get(session_id) if session_id is not None else None
        if live is None or live.sids.get(member_id or "") != sid:
            raise Forbidden(NOT_IN_ROOM)
        member = live.model.member(member_id or "")
        if member.presence == "left":
            raise Forbidden(NOT_IN_ROOM)
        return live, member

    async def watch_transcript(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        """Staff and parties of the dispute get the session's final lines as they come."""
        data = _dict(data)
        session_id = parse_id(data.get("session_id"), "session_id")
        if not isinstance(caller, Principal):
            raise Forbidden(N_("No such session, or it is not yours to join."))
        async with self.hub.database.transaction(write=False) as db:
            case_session = await db.get(CaseSession, session_id)
            if case_session is None:
                raise NotFound(N_("No such session, or it is not yours to join."))
            await access.dispute_for(db, caller, case_session.dispute_id)
        await self.hub.sio.enter_room(sid, transcript_room(session_id))
        return {"ok": True}

    # --- joining and leaving -----------------------------------------------------------

    async def join(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        session_id = parse_id(data.get("session_id"), "session_id")
        state = await self.hub.sio.get_session(sid)
        locale = state.get("locale", "zh_CN")
        async with self.hub.database.transaction(write=False) as db:
            facts, seat = await service.seat_for(
                db, caller, session_id, reverify_minutes=self.hub.settings.reverify_minutes
            )
        if facts.recording and data.get("consent_recording") is not True:
            raise Invalid(
                N_("This session is recorded: agree to the recording to join."),
                field="consent_recording",
            )
        if state.get("room") not in (None, session_id):
            raise Invalid(N_("Leave the other room first."))
        audio = _flag(data, "audio", True) is not False
        video = _flag(data, "video", True) is not False and data.get("audio_only") is not True
        while True:
            live = await self.hub.room_for(facts, fresh=seat.role == "host")
            try:
                member, previous = await self.hub.enter(
                    live, seat, sid, locale, audio=audio, video=video, consented=facts.recording
                )
                break
            except Retired:  # let go of while we were coming in: a fresh one
                continue
        await self.hub.sio.save_session(sid, {**state, "room": session_id, "member": member.id})
        if previous is not None:  # the same person opened the room elsewhere: that one goes
            await self.hub.sio.emit("room:notice", {"kind": "replaced", "message": ""}, to=previous)
            await self.hub.sio.disconnect(previous)
        async with self.hub.database.transaction(write=False) as db:
            scopes = ["main"]
            if member.subroom.startswith("caucus:"):
                scopes.append(live.chat_scope(member.subroom))
            history = await service.chat_history(db, session_id, scopes)
        return {
            "ok": True,
            "member_id": member.id,
            "state": self.hub.state_for(live, member.id),
            "ice_servers": ice_servers(self.hub.settings, seat.identity),
            "chat": [chat_json(line, live, locale) for line in history],
        }

    async def leave(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        live, member = await self._where(sid)
        await self.hub.detach(live, member.id)
        await self.hub.act(live, lambda: live.model.leave(member.id))
        await self._forget_room(sid)
        await self.hub.retire_if_empty(live)
        return {"ok": True}

    async def disconnected(self, sid: str) -> None:
        try:
            live, member = await self._where(sid)
        except Exception:
            return
        await self.hub.dropped(live, member.id)

    async def _forget_room(self, sid: str) -> None:
        state = await self.hub.sio.get_session(sid)
        state.pop("room", None)
        state.pop("member", None)
        await self.hub.sio.save_session(sid, state)

    # --- media --------------------------------------------------------------------------

    async def offer(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        sdp = _text(data, "sdp", MAX_SDP)
        sources = data.get("sources") or {}
        if not isinstance(sources, dict) or not all(
            isinstance(mid, str) and source in SOURCES for mid, source in sources.items()
        ):
            raise Invalid(N_("The message is not valid."))
        try:
            answer, tracks = await live.media.offer(member.id, sdp, sources)
        except MediaError as error:
            raise Invalid(error.message) from None
        return {"ok": True, "sdp": answer, "tracks": track_map(tracks)}

    async def answer(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        sdp = _text(data, "sdp", MAX_SDP)
        revision = data.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool):
            raise Invalid(N_("This field is required: %(field)s."), field="revision")
        try:
            await live.media.answer(member.id, sdp, revision)
        except MediaError as error:
            raise Invalid(error.message) from None
        return {"ok": True}

    async def ice(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        candidate = data.get("candidate")
        if candidate is not None and (
            not isinstance(candidate, dict)
            or not isinstance(candidate.get("candidate", ""), str)
            or len(str(candidate.get("candidate", ""))) > 1024
        ):
            raise Invalid(N_("The message is not valid."))
        try:
            await live.media.add_ice_candidate(member.id, candidate)
        except MediaError as error:
            raise Invalid(error.message) from None
        return {"ok": True}

    async def keyframe(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        publisher = _member_id(data)
        source = data.get("source", "camera")
        if source not in ("camera", "screen"):
            raise Invalid(N_("The message is not valid."))
        if not live.model.forwards(member.id, publisher, source):
            raise Forbidden(N_("You do not receive this participant's video."))
        live.media.request_keyframe(publisher, source)
        return {"ok": True}

    async def quality(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        level = data.get("level")
        if level not in ("good", "fair", "poor"):
            raise Invalid(N_("The message is not valid."))
        if member.quality != level:
            await self.hub.act(live, lambda: live.model.set_quality(member.id, level))
        return {"ok": True}

    # --- the member's own state -------------------------------------------------------

    async def set_self(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        audio, video, screen = (_flag(data, name) for name in ("audio", "video", "screen"))
        await self.hub.act(
            live, lambda: live.model.set_self(member.id, audio=audio, video=video, screen=screen)
        )
        return {"ok": True}

    async def hand(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        raised = _required_flag(data, "raised")
        await self.hub.act(live, lambda: live.model.raise_hand(member.id, raised))
        return {"ok": True}

    async def chat(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        text = _text(data, "text", MAX_CHAT).strip()
        if not live.model.may_chat(member.id):
            raise Forbidden(N_("You can write in the chat once you are admitted to the room."))
        seat = live.seats[member.id]
        async with self.hub.database.transaction() as db:
            line = await service.save_chat(
                db, live.facts, seat, live.chat_scope(member.subroom), text
            )
        audience = set(live.model.audience(member.id)) | {member.id}
        await self.hub.emit_each(
            live, audience, "room:chat", lambda locale: chat_json(line, live, locale)
        )
        return {"ok": True, "message": chat_json(line, live, live.locale_of(member.id))}

    # --- host controls -------------------------------------------------------------------

    async def admit(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        if data.get("all") is True:
            admitted = await self.hub.act(live, lambda: live.model.admit_all(member.id))
        else:
            target = _member_id(data)
            admitted = [target]
            await self.hub.act(live, lambda: live.model.admit(member.id, target))
        for target in admitted:
            await self.hub.notify(live, target, "admitted", N_("The host has let you in."))
        return {"ok": True}

    async def to_lobby(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        return await self._on_member(
            sid,
            data,
            Room.to_lobby,
            "to_lobby",
            N_("The host has moved you to the waiting room."),
        )

    async def lock(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        locked = _required_flag(data, "locked")
        await self.hub.act(live, lambda: live.model.lock(member.id, locked))
        return {"ok": True}

    async def _on_member(
        self,
        sid: str,
        data: Any,
        change: Callable[[Room, str, str], object],
        notice: str,
        message: str,
    ) -> dict[str, Any]:
        """A host control aimed at one member, who is told who did it."""
        live, member = await self._where(sid)
        target = _member_id(_dict(data))
        await self.hub.act(live, lambda: change(live.model, member.id, target))
        await self.hub.notify(live, target, notice, message, member.name)
        return {"ok": True}

    async def mute(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        return await self._on_member(
            sid, data, Room.mute, "muted", N_("%(name)s has muted your microphone.")
        )

    async def unmute_request(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        return await self._on_member(
            sid,
            data,
            Room.request_unmute,
            "unmute_requested",
            N_("%(name)s asks you to turn on your microphone."),
        )

    async def stop_video(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        return await self._on_member(
            sid, data, Room.stop_video, "video_stopped", N_("%(name)s has turned off your camera.")
        )

    async def remove(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        target = _member_id(data)
        target_sid = live.sids.get(target)
        await self.hub.act(live, lambda: live.model.remove(member.id, target))
        await self.hub.notify(
            live, target, "removed", N_("%(name)s has removed you from the room."), member.name
        )
        await self.hub.detach(live, target)
        if target_sid is not None:
            await self._forget_room(target_sid)
        return {"ok": True}

    async def end(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        live, member = await self._where(sid)
        await self.hub.act(live, lambda: live.model.end(member.id))
        for target in list(live.sids):
            await self.hub.notify(live, target, "ended", N_("The host has ended the session."))
        for target, target_sid in list(live.sids.items()):
            await self.hub.detach(live, target)
            await self._forget_room(target_sid)
        await live.media.close()
        return {"ok": True}

    async def caucus(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        targets = _member_ids(data)
        record = _flag(data, "record", False) is True
        subroom = await self.hub.act(
            live, lambda: live.model.open_caucus(member.id, targets, record)
        )
        for target in targets:
            await self.hub.notify(live, target, "moved", N_("You are now in a private caucus."))
        return {"ok": True, "subroom": subroom.id}

    async def move(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        targets = _member_ids(data)
        to = _text(data, "to", 32)
        await self.hub.act(live, lambda: live.model.move(member.id, targets, to))
        return {"ok": True}

    async def caucus_record(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        subroom = _text(data, "subroom", 32)
        record = _required_flag(data, "record")
        await self.hub.act(live, lambda: live.model.set_caucus_record(member.id, subroom, record))
        return {"ok": True}

    async def hearing(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        data = _dict(data)
        live, member = await self._where(sid)
        action = data.get("action")
        if action not in HEARING_ACTIONS:
            raise Invalid(N_("The message is not valid."))
        reason = _text(data, "reason", 64, required=False)
        state = await self.hub.act(live, lambda: live.model.hearing(member.id, action, reason))
        await self.hub.audit_hearing(live, caller.actor(), action, reason)
        if state == "closed":
            for target in list(live.sids):
                if target != member.id:
                    await self.hub.notify(
                        live, target, "ended", N_("The judge has closed the hearing.")
                    )
        return {"ok": True, "state": str(state)}


def chat_json(line: ChatLine, live: LiveRoom, locale: str) -> dict[str, Any]:
    return {
        "id": line.id,
        "name": line.name,
        "seat": translate_in(locale, line.seat) if line.seat else "",
        "subroom": line.subroom.split("@", 1)[0],
        "text": line.text,
        "sent_at": line.sent_at.isoformat(),
        "member_id": next(
            (mid for mid, seat in live.seats.items() if seat.identity == line.identity), ""
        ),
    }
