"""Helpers shared by the page and API handlers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from server.auth.login import LoginResult
from server.context import METRICS, RESPONSE_DELAY, SESSION_COOKIE, set_cookie, settings
from server.domain.errors import N_, Invalid
from server.domain.ids import parse_id
from server.i18n import gettext
from server.services.sessions import Links


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def safe_next(value: object, default: str = "/") -> str:
    """Only same-site relative paths may be redirect targets."""
    target = str(value or "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def path_id(request: web.Request, name: str = "id") -> int:
    try:
        return parse_id(request.match_info.get(name, ""), name)
    except Invalid:
        raise Invalid(N_("The address is not valid.")) from None


def login_message(result: LoginResult) -> str:
    return gettext(result.message, **result.params) if result.message else ""


def note_login(request: web.Request, method: str, result: LoginResult) -> None:
    """Count the attempt and slow a failing client down (after the commit)."""
    outcome = (
        "ok" if result.ok else ("totp" if result.totp_ticket and result.status == 200 else "failed")
    )
    request.app[METRICS].logins.labels(method, outcome).inc()
    if result.delay:
        request[RESPONSE_DELAY] = result.delay


def start_session(response: web.StreamResponse, request: web.Request, token: str) -> None:
    set_cookie(
        response, request, SESSION_COOKIE, token, max_age=settings(request).session_hours * 3600
    )


async def form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {key: str(value).strip() for key, value in data.items() if isinstance(value, str)}


# --- page notices: the error of a form post, carried on the redirect, signed ---------------

FLASH_SECONDS = 600  # how long a signed notice in a redirect's URL is believed


class Flash:
    """Signed notices that a page's form post hands to the page it redirects to
    (``?error=<token>``), one salt per page family."""

    def __init__(self, salt: str) -> None:
        self.salt = salt

    def _serializer(self, request: web.Request) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(settings(request).secret(), salt=self.salt)

    def dumps(self, request: web.Request, data: dict[str, Any]) -> str:
        return str(self._serializer(request).dumps(data))

    def error(self, request: web.Request) -> dict[str, Any] | None:
        """The notice in ``?error=``, if it is one of ours, signed and recent, with a text."""
        token = request.query.get("error")
        if not token:
            return None
        try:
            data = self._serializer(request).loads(token, max_age=FLASH_SECONDS)
        except BadSignature:
            return None
        if isinstance(data, dict) and isinstance(data.get("e"), str):
            return data
        return None


# --- the court's clock and invitation links, for pages that schedule hearings ----------------


def court_zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(settings(request).timezone)


def in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    """A time the user typed without a zone is in the court's."""
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def invitation_links(request: web.Request) -> Links:
    config = settings(request)
    return Links(
        secret=config.secret(),
        base_url=config.public_url or f"{request.scheme}://{request.host}",
        valid_days=config.invitation_days,
        zone=court_zone(request),
    )
