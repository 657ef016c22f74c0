"""socket.io on the same aiohttp app: authenticated connections and per-dispute rooms.

Connecting needs the session cookie; every event checks the caller again through
``server.auth.access``, the same check the pages and the API use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from aiohttp import web
from yarl import URL

from server.auth import access, sessions
from server.auth.principal import Principal
from server.context import DATABASE, LANG_COOKIE, SESSION_COOKIE, SETTINGS, SIO, client_ip
from server.domain.errors import N_, DomainError, InternalError, Invalid
from server.domain.ids import parse_id
from server.i18n import DEFAULT_LOCALE, normalise_locale, translate_in
from server.middlewares import HTTP_MESSAGES, status_of
from server.security_events import record_denial

log = logging.getLogger(__name__)

EventHandler = Callable[[Principal, str, Any], Awaitable[dict[str, Any]]]


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
        sio.on("connect", self.connect)
        sio.on("disconnect", self.disconnect)
        self.on("dispute:watch", self.watch_dispute)

    def on(self, event: str, handler: EventHandler) -> None:
        """Register an event whose handler may raise: the sender gets an error event and ack."""

        async def guarded(sid: str, data: Any = None) -> dict[str, Any]:
            caller, locale = await self._caller(sid)
            try:
                return await handler(caller, sid, data)
            except DomainError as error:
                return await self._fail(sid, event, caller, locale, error)
            except Exception:
                log.exception("socket event %s failed", event)
                internal = InternalError(HTTP_MESSAGES[500])
                return await self._fail(sid, event, caller, locale, internal)

        self.sio.on(event, guarded)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        request: web.Request = environ["aiohttp.request"]
        database = self.app[DATABASE]
        async with database.transaction(write=False) as session:
            caller = await sessions.resolve(
                session, request.cookies.get(SESSION_COOKIE), ip=client_ip(request)
            )
        if caller is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthenticated")
        locale = normalise_locale(request.cookies.get(LANG_COOKIE)) or DEFAULT_LOCALE
        await self.sio.save_session(sid, {"principal": caller, "locale": locale})
        await self.sio.enter_room(sid, f"user:{caller.user_id}")
        return True

    async def disconnect(self, sid: str, *_: Any) -> None:
        log.debug("socket %s disconnected", sid)

    async def _caller(self, sid: str) -> tuple[Principal, str]:
        state = await self.sio.get_session(sid)
        return state["principal"], state["locale"]

    async def _fail(
        self,
        sid: str,
        event: str,
        caller: Principal,
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

    async def watch_dispute(self, caller: Principal, sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or "dispute_id" not in data:
            raise Invalid(N_("This field is required: %(field)s."), field="dispute_id")
        dispute_id = parse_id(data["dispute_id"], "dispute_id")
        async with self.app[DATABASE].transaction(write=False) as session:
            dispute = await access.dispute_for(session, caller, dispute_id)
        await self.sio.enter_room(sid, dispute_room(dispute.id))
        return {"ok": True, "dispute_id": dispute.id}


def attach(app: web.Application) -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=_origins(app))
    sio.attach(app)
    app[SIO] = sio
    Signalling(app, sio)
