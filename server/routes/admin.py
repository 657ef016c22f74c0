"""Court admin pages: users, audit log; and the demo outbox."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from server import audit
from server.auth import access
from server.context import SETTINGS, db, principal, require_login
from server.db.models import OutboxMessage
from server.domain.errors import N_, DomainError, NotFound
from server.domain.roles import Permission, Role
from server.i18n import gettext
from server.pagination import page_args, paginate
from server.routes.common import form, redirect
from server.services import audit_view
from server.services.users import NewUser, create_user, list_for_admin
from server.templating import render


async def _users_page(
    request: web.Request,
    *,
    error: str = "",
    status: int = 200,
    values: dict[str, str] | None = None,
) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.MANAGE_USERS)
    page, per_page = page_args(request.query)
    result = await list_for_admin(db(request), caller.court_id, page, per_page)
    return render(
        request,
        "admin_users.html",
        {
            "page": result,
            "roles": list(Role),
            "error": error,
            "values": dict.fromkeys(("role", "name", "username", "phone", "email"), "")
            | (values or {}),
        },
        status=status,
    )


async def users_get(request: web.Request) -> web.Response:
    return await _users_page(request)


async def users_post(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.MANAGE_USERS)
    data = await form(request)
    try:
        role = Role(data.get("role", ""))
    except ValueError:
        return await _users_page(request, error=gettext("Choose a role."), status=400, values=data)
    new = NewUser(
        role=role,
        name=data.get("name", ""),
        phone=data.get("phone") or None,
        username=data.get("username") or None,
        email=data.get("email") or None,
        password=data.get("password") or None,
        court_id=caller.court_id,
    )
    try:
        # a savepoint, so that a rejected form leaves nothing behind and can be shown again
        async with db(request).begin_nested():
            await create_user(db(request), new, caller.actor())
    except DomainError as exc:
        return await _users_page(
            request,
            error=gettext(exc.message, **exc.localised_params(gettext)),
            status=400,
            values=data,
        )
    return redirect("/admin/users")


async def audit_get(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.VIEW_AUDIT)
    page, per_page = page_args(request.query, default_per_page=50)
    report = await audit.verify(db(request)) if request.query.get("verify") else None
    result = await audit_view.recent(db(request), page, per_page)
    return render(request, "admin_audit.html", {"page": result, "report": report})


async def outbox_get(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if settings.notify_channel.value != "outbox":
        raise NotFound(N_("The page you asked for does not exist."))
    if not settings.demo:
        caller = principal(request)
        if caller is None:
            require_login(request)
        assert caller is not None
        access.require(caller, Permission.VIEW_OUTBOX)
    page, per_page = page_args(request.query)
    result = await paginate(
        db(request), select(OutboxMessage).order_by(OutboxMessage.id.desc()), page, per_page
    )
    return render(request, "outbox.html", {"page": result, "demo": settings.demo})


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/users", users_get, name="admin_users")
    app.router.add_post("/admin/users", users_post)
    app.router.add_get("/admin/audit", audit_get, name="admin_audit")
    app.router.add_get("/outbox", outbox_get, name="outbox")
