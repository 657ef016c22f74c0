"""The room page of a session (with its pre-join check), the page a guest's link opens,
guest invitations, and the room's log (who joined, left or dropped, and when)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, Field

from server.auth.principal import Principal
from server.context import db, require_login, settings
from server.domain.errors import N_, Forbidden, ReverificationRequired
from server.domain.roles import Role
from server.i18n import DEFAULT_LOCALE, current_locale, gettext
from server.openapi import documented
from server.rooms import guests
from server.routes.api import body
from server.routes.common import form, path_id
from server.services import rooms as service
from server.services.rooms import SessionFacts
from server.templating import render


def _room(facts: SessionFacts, host: bool) -> dict[str, Any]:
    english = current_locale.get() != DEFAULT_LOCALE
    return {
        "session_id": facts.session_id,
        "dispute_id": facts.dispute_id,
        "kind": facts.kind,
        "title": gettext(facts.title),
        "court": facts.court_en if english else facts.court,
        "case_number": facts.case_number,
        "recording": facts.recording,
        "host": host,
        "dispute_url": f"/disputes/{facts.dispute_id}",
    }


async def room_page(request: web.Request) -> web.StreamResponse:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    try:
        facts, seat = await service.seat_for(
            db(request), caller, session_id, reverify_minutes=settings(request).reverify_minutes
        )
    except ReverificationRequired:
        raise web.HTTPSeeOther(f"/reverify?next={quote(request.path_qs)}") from None
    return render(
        request,
        "room.html",
        {"room": _room(facts, seat.role in ("host", "co_host")), "guest_token": ""},
    )


async def guest_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    config = settings(request)
    guest_id, session_id = guests.read(
        config.secret_key.get_secret_value(), token, max_age_days=config.invitation_days
    )
    await service.guest_pass(db(request), guest_id, session_id, "")
    facts = await service.facts(db(request), session_id)
    return render(request, "room.html", {"room": _room(facts, False), "guest_token": token})


class GuestIn(BaseModel):
    name: str = Field(max_length=service.MAX_GUEST_NAME)
    role: str = Field(description="witness, interpreter or observer")


class GuestOut(BaseModel):
    id: int
    name: str
    role: str
    url: str


@documented(
    "Invite a guest (witness, interpreter, observer) to a session's room",
    body=GuestIn,
    response=GuestOut,
    status=201,
)
async def guest_create(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    data = await body(request, GuestIn)
    guest = await service.invite_guest(db(request), caller, session_id, data.name, data.role)
    url = _guest_url(request, guest.id, session_id)
    return web.json_response(
        GuestOut(id=guest.id, name=guest.name, role=guest.role, url=url).model_dump(),
        status=201,
    )


def _guest_url(request: web.Request, guest_id: int, session_id: int) -> str:
    config = settings(request)
    token = guests.sign(config.secret_key.get_secret_value(), guest_id, session_id)
    return f"{config.base_url}/rooms/guest/{token}"


async def guest_form(request: web.Request) -> web.Response:
    """The dispute page's form: make a guest's link and show it to copy."""
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    data = await form(request)
    guest = await service.invite_guest(
        db(request), caller, session_id, data.get("name", ""), data.get("role", "")
    )
    url = _guest_url(request, guest.id, session_id)
    return render(request, "guest_link.html", {"guest": guest, "url": url})


class LogLine(BaseModel):
    kind: str
    actor: str
    subject: str
    detail: dict[str, Any]
    at: str


@documented("The room's log of a session (joins, leaves, drops, hearing steps)", response=LogLine)
async def room_log(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    await _staff_of_session(request, caller, session_id)
    rows = await service.room_log(db(request), session_id)
    return web.json_response(
        {
            "items": [
                LogLine(
                    kind=row.kind,
                    actor=row.actor,
                    subject=row.subject,
                    detail=row.detail,
                    at=row.at.isoformat(),
                ).model_dump()
                for row in rows
            ]
        }
    )


async def _staff_of_session(request: web.Request, caller: Principal, session_id: int) -> None:
    if caller.role in (Role.PARTY, Role.AGENT):
        raise Forbidden(N_("Only the court's staff can read the room's log."))
    await service.seat_for(
        db(request), caller, session_id, reverify_minutes=settings(request).reverify_minutes
    )


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/sessions/{session_id}/room", room_page, name="room")
    r.add_get("/rooms/guest/{token}", guest_page, name="room_guest")
    r.add_post("/sessions/{session_id}/guests", guest_form, name="session_guests")
    r.add_post("/api/v1/sessions/{session_id}/guests", guest_create, name="api_session_guests")
    r.add_get("/api/v1/sessions/{session_id}/log", room_log, name="api_session_log")
