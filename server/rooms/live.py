"""The live rooms of this process: each one ties a session's room model
(``media.room.Room``, which owns who is where) to its media (``media.sfu.SfuRoom``),
to the sockets of its members, and to the record in the database.

Every change goes the same way (``RoomHub.changed``): the model changes, its events
are written to the room log, the media is re-routed (what must no longer be heard
stops at once), and each member gets the room's state as they may see it.  One lock
per room serialises these steps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import socketio
from aiohttp import web

from media.room import Room
from media.room_types import (
    HearingState,
    Member,
    RoomEvent,
    RoomKind,
    RoomRefused,
    RoomRole,
)
from media.sfu import Sfu, SfuRoom, TrackInfo
from server import audit
from server.audit import Actor, AuditEntry
from server.config import Settings
from server.context import DATABASE, OUTBOX, SETTINGS, SPOOL
from server.db.engine import Database
from server.domain.errors import Conflict, DomainError, Forbidden, Gone, Invalid, NotFound
from server.i18n import DEFAULT_LOCALE, translate_in
from server.rooms.names import socket_room
from server.rooms.recording import LiveRecording, RoomRecordings
from server.services import recordings as recordings_service
from server.services import rooms as service
from server.services.rooms import LogRow, RoomSeat, SessionFacts
from storage.spool import Spool

log = logging.getLogger(__name__)

REFUSALS: dict[str, type[DomainError]] = {
    "forbidden": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "invalid": Invalid,
    "gone": Gone,
}


def refused(error: RoomRefused) -> DomainError:
    """The room model's refusal as the domain error the transports know."""
    kind = REFUSALS.get(error.code, Conflict)
    return kind(error.message, **error.params)


class Retired(Exception):
    """The room was let go of while someone was entering it: enter a fresh one."""


@dataclass
class LiveRoom:
    facts: SessionFacts
    model: Room
    media: SfuRoom
    seats: dict[str, RoomSeat] = field(default_factory=dict)  # member id -> seat
    sids: dict[str, str] = field(default_factory=dict)  # member id -> socket id
    locales: dict[str, str] = field(default_factory=dict)  # member id -> locale
    drops: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    scopes: dict[str, str] = field(default_factory=dict)  # caucus id -> chat scope
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    retired: bool = False  # let go of by the hub: a new one takes its place
    language: str = "zh"  # what the live transcription listens for
    # the session clock's zero: media times (the audio tap's, captions') count from here
    clock_start: datetime = field(default_factory=lambda: datetime.now(UTC))
    recording: LiveRecording | None = None  # while the room records (server/rooms/recording.py)

    @property
    def key(self) -> str:
        return socket_room(self.facts.session_id)

    def locale_of(self, member_id: str) -> str:
        return self.locales.get(member_id, DEFAULT_LOCALE)

    def chat_scope(self, subroom: str) -> str:
        """Where a chat line is filed: a caucus gets a scope of its own each time it opens."""
        if not subroom.startswith("caucus:"):
            return subroom
        if subroom not in self.scopes:
            self.scopes[subroom] = f"{subroom}@{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        return self.scopes[subroom]

    def forget_closed_caucuses(self, open_ids: set[str]) -> None:
        for subroom in list(self.scopes):
            if subroom not in open_ids:
                del self.scopes[subroom]


class MediaHooks:
    """What the media engine tells the room: renegotiations and peer states."""

    def __init__(self, hub: RoomHub, session_id: int) -> None:
        self.hub = hub
        self.session_id = session_id

    async def send_offer(
        self, member_id: str, sdp: str, revision: int, tracks: dict[str, TrackInfo]
    ) -> None:
        live = self.hub.rooms.get(self.session_id)
        sid = live.sids.get(member_id) if live else None
        if sid is not None:
            await self.hub.sio.emit(
                "media:offer",
                {"sdp": sdp, "revision": revision, "tracks": track_map(tracks)},
                to=sid,
            )

    async def peer_state(self, member_id: str, state: str) -> None:
        await self.hub.peer_state(self.session_id, member_id, state)


def track_map(tracks: dict[str, TrackInfo]) -> dict[str, dict[str, str]]:
    return {mid: {"member_id": t.member_id, "source": t.source} for mid, t in tracks.items()}


class RoomHub:
    """Owns every live room of this process (a room lives on one process)."""

    def __init__(self, app: web.Application, sio: socketio.AsyncServer, sfu: Sfu) -> None:
        self.app = app
        self.sio = sio
        self.sfu = sfu
        self.rooms: dict[int, LiveRoom] = {}
        self._creating = asyncio.Lock()
        self.recordings = RoomRecordings(self)

    @property
    def database(self) -> Database:
        return self.app[DATABASE]

    @property
    def settings(self) -> Settings:
        return self.app[SETTINGS]

    @property
    def spool(self) -> Spool:
        return self.app[SPOOL]

    def wake_outbox(self) -> None:
        outbox = self.app.get(OUTBOX)
        if outbox is not None:
            outbox.wake()

    # --- rooms ------------------------------------------------------------------

    async def room_for(self, facts: SessionFacts, *, fresh: bool = False) -> LiveRoom:
        async with self._creating:
            live = self.rooms.get(facts.session_id)
            if live is not None and not (fresh and live.model.ended):
                return live
            if live is not None:
                await self.recordings.stop(live, reason="ended")
                await live.media.close()
            state = HearingState.WAITING
            if facts.kind == "hearing":  # a restarted process resumes from the log
                async with self.database.transaction(write=False) as db:
                    last = await service.last_hearing_state(db, facts.session_id)
                if last is not None:
                    state = HearingState(last[0])
            model = Room(socket_room(facts.session_id), RoomKind(facts.kind), hearing_state=state)
            hooks = MediaHooks(self, facts.session_id)
            media = self.sfu.room(model.key, hooks, model.forwards)
            live = LiveRoom(
                facts=facts,
                model=model,
                media=media,
                language=facts.language or self.settings.asr_language,
            )
            self.rooms[facts.session_id] = live
            return live

    def by_key(self, room_key: str) -> LiveRoom | None:
        """The live room of a media room key (``session:<id>``), if there is one."""
        prefix, _, number = room_key.partition(":")
        if prefix != "session" or not number.isdigit():
            return None
        return self.rooms.get(int(number))

    def recorded(self, room_key: str, member_id: str) -> bool:
        """Whether a member's audio goes to the transcription tap now."""
        live = self.by_key(room_key)
        return live is not None and live.model.recorded(member_id)

    async def close(self) -> None:
        await self.recordings.close()
        for live in list(self.rooms.values()):
            for task in live.drops.values():
                task.cancel()
            async with live.lock:
                await self.recordings.stop(live, reason=recordings_service.SERVER_SHUTDOWN)
        await self.sfu.close()
        self.rooms.clear()

    # --- one change, from the model to everyone ---------------------------------------

    async def act(self, live: LiveRoom, change: Callable[[], Any]) -> Any:
        """Apply one change to the model under the room's lock, then tell everyone."""
        async with live.lock:
            try:
                result = change()
            except RoomRefused as error:
                raise refused(error) from None
            await self.changed(live)
            return result

    async def changed(self, live: LiveRoom) -> None:
        """After a change (the room's lock held): log, re-route, broadcast."""
        events = live.model.drain_events()
        if events:
            await self._write_log(live, events)
        await live.media.reroute()
        await self.recordings.sync(live, events)
        await self.broadcast(live)

    async def _write_log(self, live: LiveRoom, events: list[RoomEvent]) -> None:
        def who(member_id: str | None) -> tuple[str, str]:
            seat = live.seats.get(member_id or "")
            return (seat.name, seat.identity) if seat else ("", "")

        rows = []
        for event in events:
            actor, actor_identity = who(event.actor)
            subject, subject_identity = who(event.subject)
            rows.append(
                LogRow(
                    kind=event.kind,
                    at=event.at,
                    actor=actor,
                    actor_identity=actor_identity,
                    subject=subject,
                    subject_identity=subject_identity,
                    detail=dict(event.detail),
                )
            )
        await self._write_rows(live, rows)

    async def _write_rows(self, live: LiveRoom, rows: list[LogRow]) -> None:
        try:
            async with self.database.transaction() as db:
                await service.write_log(db, live.facts.session_id, live.facts.dispute_id, rows)
        except Exception:  # the room goes on; the failure is in the server's log
            log.exception("room %s: could not write %d log rows", live.key, len(rows))

    def state_for(self, live: LiveRoom, member_id: str) -> dict[str, Any]:
        locale = live.locale_of(member_id)
        facts = live.facts
        state = live.model.snapshot(member_id, translate=lambda text: translate_in(locale, text))
        for member in state.get("members", []):
            member["seat"] = translate_in(locale, member["seat"]) if member["seat"] else ""
        state.update(
            session_id=facts.session_id,
            dispute_id=facts.dispute_id,
            kind=facts.kind,
            title=translate_in(locale, facts.title),
            court=facts.court if locale == "zh_CN" else facts.court_en,
            case_number=facts.case_number,
            recording=facts.recording,
            recording_state=self.recording_state(live),
        )
        return state

    @staticmethod
    def recording_state(live: LiveRoom) -> str:
        """What everyone in the room is shown: recording, paused, or off."""
        if live.recording is None:
            return "off"
        return "paused" if live.recording.paused else "recording"

    async def broadcast(self, live: LiveRoom) -> None:
        open_ids = {subroom.id for subroom in live.model.subrooms()}
        live.forget_closed_caucuses(open_ids)
        for member_id, sid in list(live.sids.items()):
            await self.sio.emit("room:state", self.state_for(live, member_id), to=sid)

    async def notify(
        self, live: LiveRoom, member_id: str, kind: str, message: str, by: str = ""
    ) -> None:
        await self.emit_each(
            live,
            [member_id],
            "room:notice",
            lambda locale: {
                "kind": kind,
                "by": by,
                "message": translate_in(locale, message, name=by),
            },
        )

    async def emit_each(
        self,
        live: LiveRoom,
        member_ids: Iterable[str],
        event: str,
        payload: Callable[[str], dict[str, Any]],
    ) -> None:
        """Send an event to each of these members who is connected, in their language."""
        for member_id in member_ids:
            sid = live.sids.get(member_id)
            if sid is not None:
                await self.sio.emit(event, payload(live.locale_of(member_id)), to=sid)

    # --- presence -------------------------------------------------------------------

    async def retire_if_empty(self, live: LiveRoom) -> None:
        """Let go of a room nobody is in or reconnecting to (an ended room stays, so
        that late comers are told it ended); the log keeps its record, and a hearing
        resumes from it."""
        async with self._creating, live.lock:
            if live.model.ended or live.drops or any(m.present for m in live.model.members()):
                return
            if self.rooms.get(live.facts.session_id) is live:
                del self.rooms[live.facts.session_id]
                live.retired = True
                await self.recordings.stop(live, reason="empty")
                await live.media.close()

    async def enter(
        self,
        live: LiveRoom,
        seat: RoomSeat,
        sid: str,
        locale: str,
        *,
        audio: bool,
        video: bool,
        consented: bool,
    ) -> tuple[Member, str | None]:
        """The caller joins (or comes back to) the room on this socket."""
        async with live.lock:
            if live.retired:
                raise Retired
            try:
                member = live.model.join(
                    seat.identity,
                    seat.name,
                    RoomRole(seat.role),
                    seat.seat,
                    audio=audio,
                    video=video,
                )
            except RoomRefused as error:
                raise refused(error) from None
            previous = await self.attach(live, member, seat, sid, locale)
            if consented:
                await self._write_rows(
                    live,
                    [
                        LogRow(
                            kind="consent_recording",
                            at=datetime.now(UTC),
                            actor=seat.name,
                            actor_identity=seat.identity,
                        )
                    ],
                )
            await self.changed(live)
        return member, previous

    async def audit_hearing(self, live: LiveRoom, actor: Actor, action: str, reason: str) -> None:
        """The hearing's start, pause, resume and close are in the audit log too."""
        async with self.database.transaction() as db:
            await audit.append(
                db,
                AuditEntry(
                    action=f"hearing.{action}",
                    actor=actor,
                    object_type="case_session",
                    object_id=live.facts.session_id,
                    dispute_id=live.facts.dispute_id,
                    details={"reason": reason} if reason else {},
                ),
            )

    async def attach(
        self, live: LiveRoom, member: Member, seat: RoomSeat, sid: str, locale: str
    ) -> str | None:
        """Bind a member to this socket; the socket it had before, if another one."""
        previous = live.sids.get(member.id)
        live.seats[member.id] = seat
        live.sids[member.id] = sid
        live.locales[member.id] = locale
        drop = live.drops.pop(member.id, None)
        if drop is not None:
            drop.cancel()
        await self.sio.enter_room(sid, live.key)
        return previous if previous != sid else None

    async def detach(self, live: LiveRoom, member_id: str) -> None:
        sid = live.sids.pop(member_id, None)
        if sid is not None:
            await self.sio.leave_room(sid, live.key)
        drop = live.drops.pop(member_id, None)
        if drop is not None:
            drop.cancel()
        await live.media.remove(member_id)

    async def dropped(self, live: LiveRoom, member_id: str) -> None:
        """The member's connection went away without leaving: reconnecting, for a while."""
        member = find(live, member_id)
        if member is None or member.presence != "connected":
            return
        async with live.lock:
            live.model.dropped(member_id)
            await self.changed(live)
        if member_id not in live.drops:
            live.drops[member_id] = asyncio.create_task(self._expire_later(live, member_id))

    async def _expire_later(self, live: LiveRoom, member_id: str) -> None:
        await asyncio.sleep(self.settings.room_drop_grace_seconds)
        live.drops.pop(member_id, None)
        member = find(live, member_id)
        if member is None or member.presence != "reconnecting":
            return
        live.sids.pop(member_id, None)
        await live.media.remove(member_id)
        async with live.lock:
            live.model.expire(member_id)
            await self.changed(live)
        await self.retire_if_empty(live)

    async def peer_state(self, session_id: int, member_id: str, state: str) -> None:
        live = self.rooms.get(session_id)
        if live is None:
            return
        member = find(live, member_id)
        if member is None:
            return
        if state in ("failed", "disconnected") and member.presence == "connected":
            await self.dropped(live, member_id)
        elif state == "connected" and member.presence == "reconnecting":
            drop = live.drops.pop(member_id, None)
            if drop is not None:
                drop.cancel()
            async with live.lock:
                live.model.reconnected(member_id)
                await self.changed(live)


def find(live: LiveRoom, member_id: str) -> Member | None:
    try:
        return live.model.member(member_id)
    except RoomRefused:
        return None
