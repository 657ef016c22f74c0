"""socket.io on the same aiohttp app: authenticated connections and per-dispute rooms.

Connecting needs the session cookie, or for a session's guest (a witness, an
interpreter, an observer without an account) the signed guest link's token in the
``auth`` payload.  Every event checks the caller again through ``server.auth.access``,
the same check the pages and the API use.  Each socket may send a burst of messages
and then a steady rate; beyond that it gets an error event, and a socket that keeps
flooding is disconnected.  Oversized messages are refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from aiohttp import web
from yarl import URL

from server.auth import access, sessions
from server.auth.principal import Principal
from server.context import DATABASE, LANG_COOKIE, SESSION_COOKIE, SETTINGS, SIO, client_ip
from server.domain.errors import (
    N_,
    DomainError,
    Forbidden,
    InternalError,
    Invalid,
    TooManyAttempts,
)
from server.domain.ids import parse_id
from server.i18n import DEFAULT_LOCALE, normalise_locale, translate_in
from server.middlewares import HTTP_MESSAGES, status_of
from server.rooms import guests
from server.rooms.guests import GuestPass
from server.rooms.ratelimit import Bucket
from server.security_events import record_denial
from server.services import rooms as room_service

log = logging.getLogger(__name__)

HARD_LIMIT = 1024 * 1024
Caller = Principal | GuestPass
EventHandler = Callable[[Caller, str, Any], Awaitable[dict[str, Any]]]
DisconnectHandler = Callable[[str], Awaitable[None]]


def _origins(app: web.Application) -> list[str] | None:
    settings = app[SETTINGS]
    origins = list(settings.allowed_origins)
    if settings.public_url:
        origins.append(str(URL(settings.public_url).origin()))
    return origins or None  # None: same origin only


def dispute_room(dispute_id: int) -> str:
    return f"dispute:{dispute_id}"


class Signalling:
    def __init__(self, app: web.Application, sio: socketio.AsyncServer) -> None:
        self.app = app
        self.sio = sio
        self.buckets: dict[str, Bucket] = {}
        self.disconnect_handlers: list[DisconnectHandler] = []
        sio.on("connect", self.connect)
        sio.on("disconnect", self.disconnect)
        self.on("dispute:watch", self.watch_dispute)

    def on(self, event: str, handler: EventHandler) -> None:
        """Register an event whose handler may raise: the sender gets an error event and ack."""

        async def guarded(sid: str, data: Any = None) -> dict[str, Any]:
            caller, locale = await self._caller(sid)
            try:
                await self._admit(sid, data)
                return await handler(caller, sid, data)
            except DomainError as error:
                return await self._fail(sid, event, caller, locale, error)
            except Exception:
                log.exception("socket event %s failed", event)
                internal = InternalError(HTTP_MESSAGES[500])
                return await self._fail(sid, event, caller, locale, internal)

        self.sio.on(event, guarded)

    def on_disconnect(self, handler: DisconnectHandler) -> None:
        self.disconnect_handlers.append(handler)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        request: web.Request = environ["aiohttp.request"]
        database = self.app[DATABASE]
        ip = client_ip(request)
        caller: Caller | None
        async with database.transaction(write=False) as session:
            caller = await sessions.resolve(session, request.cookies.get(SESSION_COOKIE), ip=ip)
            if caller is None and isinstance(auth, dict) and isinstance(auth.get("guest"), str):
                caller = await self._guest(session, auth["guest"], ip)
        if caller is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthenticated")
        locale = normalise_locale(request.cookies.get(LANG_COOKIE)) or DEFAULT_LOCALE
        await self.sio.save_session(sid, {"principal": caller, "locale": locale})
        settings = self.app[SETTINGS]
        self.buckets[sid] = Bucket(rate=settings.socket_rate, burst=2 * settings.socket_rate)
        if isinstance(caller, Principal):
            await self.sio.enter_room(sid, f"user:{caller.user_id}")
        return True

    async def _guest(self, session: Any, token: str, ip: str) -> GuestPass | None:
        settings = self.app[SETTINGS]
        try:
            guest_id, session_id = guests.read(
                settings.secret_key.get_secret_value(),
                token,
                max_age_days=settings.invitation_days,
            )
            return await room_service.guest_pass(session, guest_id, session_id, ip)
        except DomainError:
            return None

    async def disconnect(self, sid: str, *_: Any) -> None:
        log.debug("socket %s disconnected", sid)
        self.buckets.pop(sid, None)
        for handler in self.disconnect_handlers:
            try:
                await handler(sid)
            except Exception:
                log.exception("disconnect handler failed for %s", sid)

    async def _caller(self, sid: str) -> tuple[Caller, str]:
        state = await self.sio.get_session(sid)
        return state["principal"], state["locale"]

    async def _admit(self, sid: str, data: Any) -> None:
        """Refuse a flood (and cut off a socket that keeps flooding) or an oversized message."""
        bucket = self.buckets.get(sid)
        if bucket is not None and not bucket.take():
            if bucket.flooding:
                log.warning("socket %s flooded: disconnecting", sid)
                await self.sio.disconnect(sid)
            raise TooManyAttempts(N_("Too many messages: slow down."))
        if (
            data is not None
            and len(json.dumps(data, default=str)) > self.app[SETTINGS].socket_max_bytes
        ):
            raise Invalid(N_("The message is too large."))

    async def _fail(
        self,
        sid: str,
        event: str,
        caller: Caller,
        locale: str,
        error: DomainError,
    ) -> dict[str, Any]:
        if error.security:
            await record_denial(self.app[DATABASE], caller.actor(), error, f"socket {event}")
        payload = {
            "event": event,
            "code": error.code,
            "status": status_of(error),
            "message": translate_in(
                locale,
                error.message,
                **error.localised_params(lambda text: translate_in(locale, text)),
            ),
        }
        await self.sio.emit("error", payload, to=sid)
        return {"ok": False, "error": payload}

    async def watch_dispute(self, caller: Caller, sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(caller, Principal):
            raise Forbidden(N_("No such dispute, or it is not yours to see."))
        if not isinstance(data, dict) or "dispute_id" not in data:
            raise Invalid(N_("This field is required: %(field)s."), field="dispute_id")
        dispute_id = parse_id(data["dispute_id"], "dispute_id")
        async with self.app[DATABASE].transaction(write=False) as session:
            dispute = await access.dispute_for(session, caller, dispute_id)
        await self.sio.enter_room(sid, dispute_room(dispute.id))
        return {"ok": True, "dispute_id": dispute.id}


def attach(app: web.Application) -> Signalling:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=_origins(app),
        # beyond this the transport itself cuts the connection; below it, a message
        # larger than socket_max_bytes gets an error event (Signalling._admit)
        max_http_buffer_size=max(HARD_LIMIT, 4 * app[SETTINGS].socket_max_bytes),
    )
    sio.attach(app)
    app[SIO] = sio
    return Signalling(app, sio)
