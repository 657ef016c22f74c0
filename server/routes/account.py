"""The caller's account: profile, authenticator (TOTP) enrolment for judges and admins."""

from __future__ import annotations

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from server import audit
from server.audit import AuditEntry
from server.auth import totp
from server.auth.passwords import verify_password
from server.context import db, require_login, settings
from server.db.models import User
from server.domain.errors import N_, Forbidden
from server.i18n import gettext
from server.routes.common import form, redirect
from server.templating import render

SETUP_SALT = "yizhan.totp-setup.v1"
SETUP_SECONDS = 900


def _serializer(request: web.Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings(request).secret(), salt=SETUP_SALT)


async def _me(request: web.Request) -> User:
    caller = require_login(request)
    user = await db(request).get(User, caller.user_id)
    assert user is not None
    return user


async def account_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    user = await _me(request)
    context: dict[str, object] = {"user": user, "error": error, "setup": None}
    if user.role.may_use_totp and not user.totp_secret:
        secret = totp.new_secret()
        context["setup"] = {
            "secret": secret,
            "uri": totp.provisioning_uri(secret, user.username or user.phone or str(user.id)),
            "ticket": _serializer(request).dumps({"u": user.id, "s": secret}),
        }
    return render(request, "account.html", context, status=status)


async def account_get(request: web.Request) -> web.Response:
    return await account_page(request)


async def totp_enable(request: web.Request) -> web.Response:
    user = await _me(request)
    if not user.role.may_use_totp:
        raise Forbidden(N_("Your role may not do this."))
    data = await form(request)
    try:
        ticket = _serializer(request).loads(data.get("ticket", ""), max_age=SETUP_SECONDS)
    except BadSignature:
        return await account_page(
            request, error=gettext("The set-up has expired. Start again."), status=400
        )
    if ticket.get("u") != user.id or not totp.verify(ticket["s"], data.get("code", "")):
        return await account_page(
            request, error=gettext("The authenticator code is wrong."), status=400
        )
    user.totp_secret = ticket["s"]
    caller = require_login(request)
    await audit.append(db(request), AuditEntry("totp.enabled", caller.actor(), "user", user.id))
    return redirect("/account")


async def totp_disable(request: web.Request) -> web.Response:
    user = await _me(request)
    data = await form(request)
    if not user.totp_secret or not verify_password(user.password_hash, data.get("password", "")):
        return await account_page(request, error=gettext("Wrong account or password."), status=400)
    user.totp_secret = None
    caller = require_login(request)
    await audit.append(db(request), AuditEntry("totp.disabled", caller.actor(), "user", user.id))
    return redirect("/account")


def setup(app: web.Application) -> None:
    app.router.add_get("/account", account_get, name="account")
    app.router.add_post("/account/totp", totp_enable, name="totp_enable")
    app.router.add_post("/account/totp/disable", totp_disable, name="totp_disable")
