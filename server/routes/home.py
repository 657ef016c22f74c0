"""The home page of each role: a party's own disputes with what to do next, a staff
member's queue summary, and the most recent disputes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from server.auth import access
from server.context import db, require_login, settings
from server.db.models import Dispute
from server.domain.roles import Permission, Role, has_permission
from server.routes.queues import countdown_text
from server.services import queues
from server.services.workflow import calendar_for
from server.templating import render

HOME_ROWS = 5


async def home(request: web.Request) -> web.Response:
    caller = require_login(request)
    session = db(request)
    now = datetime.now(UTC)
    calendar = calendar_for(settings(request))
    context: dict[str, Any] = {
        "role_template": f"home/{caller.role.value}.html",
        "mine": None,
        "queue": None,
        "countdown_text": countdown_text,
    }
    if caller.role in (Role.PARTY, Role.AGENT):
        mine = await queues.party_disputes(
            session, caller, 1, HOME_ROWS, now=now, calendar=calendar
        )
        context |= {"mine": mine, "recent": []}
        return render(request, "home.html", context)
    if has_permission(caller.role, Permission.WORK_QUEUE):
        context["queue"] = await queues.role_queue(
            session, caller, 1, HOME_ROWS, now=now, calendar=calendar
        )
    # newest first by id: the walk back from the newest row stops at the fifth visible one
    recent = (
        await session.scalars(
            select(Dispute)
            .where(access.visible_disputes(caller))
            .order_by(Dispute.id.desc())
            .limit(HOME_ROWS)
        )
    ).all()
    context["recent"] = recent
    return render(request, "home.html", context)


def setup(app: web.Application) -> None:
    app.router.add_get("/", home, name="home")
