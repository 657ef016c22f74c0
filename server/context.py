"""Typed application keys and small helpers for reading a request's context."""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.login import Client
from server.auth.principal import Principal
from server.config import Settings
from server.db.engine import Database
from server.domain.errors import N_, Unauthenticated
from server.metrics import HttpMetrics
from server.notify import Channel
from server.uploads import UploadOutbox
from storage.base import ObjectStore
from storage.spool import Spool

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
CHANNEL = web.AppKey("channel", Channel)
METRICS = web.AppKey("metrics", HttpMetrics)
SIO = web.AppKey("sio", socketio.AsyncServer)
STORE = web.AppKey("store", ObjectStore)
SPOOL = web.AppKey("spool", Spool)
OUTBOX = web.AppKey("upload_outbox", UploadOutbox)

REQUEST_ID = web.RequestKey("request_id", str)
LOCALE = web.RequestKey("locale", str)
CSRF_TOKEN = web.RequestKey("csrf_token", str)
DB_SESSION = web.RequestKey("db_session", AsyncSession)
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
RESPONSE_DELAY = web.RequestKey("response_delay", float)

SESSION_COOKIE = "yz_session"
CSRF_COOKIE = "yz_csrf"
LANG_COOKIE = "yz_lang"
TOTP_TICKET_COOKIE = "yz_totp"


def db(request: web.Request) -> AsyncSession:
    return request[DB_SESSION]


def settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def principal(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


def require_login(request: web.Request) -> Principal:
    caller = principal(request)
    if caller is None:
        raise Unauthenticated(N_("Please log in first."))
    return caller


def client_ip(request: web.Request) -> str:
    """The caller's address: the socket peer, or what a trusted proxy says it forwarded."""
    peer = request.remote or ""
    if peer and peer in settings(request).trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:64]
    return peer


def client(request: web.Request) -> Client:
    return Client(ip=client_ip(request), user_agent=request.headers.get("User-Agent", ""))


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def set_cookie(
    response: web.StreamResponse,
    request: web.Request,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    same_site: str = "Lax",
    **extra: Any,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite=same_site,
        secure=settings(request).cookie_secure,
        path="/",
        **extra,
    )
