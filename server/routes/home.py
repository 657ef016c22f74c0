"""The home page of each role."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from server.auth import access
from server.context import db, require_login
from server.db.models import Dispute
from server.templating import render


async def home(request: web.Request) -> web.Response:
    caller = require_login(request)
    session = db(request)
    rows = await session.execute(
        select(Dispute.status, func.count())
        .where(access.visible_disputes(caller))
        .group_by(Dispute.status)
    )
    counts: dict[str, int] = {status: count for status, count in rows.tuples()}
    recent = (
        await session.scalars(
            select(Dispute)
            .where(access.visible_disputes(caller))
            .order_by(Dispute.created_at.desc(), Dispute.id.desc())
            .limit(5)
        )
    ).all()
    return render(
        request,
        "home.html",
        {
            "role_template": f"home/{caller.role.value}.html",
            "counts": counts,
            "recent": recent,
            "total": sum(counts.values()),
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/", home, name="home")
