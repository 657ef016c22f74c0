"""Login pages: password (+TOTP) for staff, code for parties, invitations, logout, language."""

from __future__ import annotations

from aiohttp import web

from server.auth import codes, login
from server.auth.invitations import Invitation
from server.context import (
    CHANNEL,
    LANG_COOKIE,
    SESSION_COOKIE,
    TOTP_TICKET_COOKIE,
    client,
    db,
    principal,
    require_login,
    set_cookie,
    settings,
)
from server.i18n import gettext, normalise_locale
from server.routes.common import form, login_message, note_login, redirect, safe_next, start_session
from server.templating import render


def _login_page(
    request: web.Request,
    *,
    error: str = "",
    status: int = 200,
    tab: str = "staff",
    account: str = "",
) -> web.Response:
    return render(
        request,
        "login.html",
        {
            "error": error,
            "tab": tab,
            "account": account,
            "next": safe_next(request.query.get("next")),
        },
        status=status,
    )


async def login_get(request: web.Request) -> web.Response:
    if principal(request) is not None:
        return redirect(safe_next(request.query.get("next")))
    return _login_page(request)


async def login_post(request: web.Request) -> web.Response:
    data = await form(request)
    account = data.get("account", "")
    result = await login.with_password(
        db(request), settings(request), account, data.get("password", ""), client(request)
    )
    note_login(request, "password", result)
    target = safe_next(data.get("next"))
    if result.totp_ticket and result.status == 200:
        response = redirect(f"/login/totp?next={target}")
        set_cookie(
            response,
            request,
            TOTP_TICKET_COOKIE,
            result.totp_ticket,
            max_age=login.TOTP_TICKET_SECONDS,
        )
        return response
    if not result.ok or result.token is None:
        return _login_page(
            request, error=login_message(result), status=result.status, account=account
        )
    response = redirect(target)
    start_session(response, request, result.token)
    return response


async def totp_get(request: web.Request) -> web.Response:
    if not request.cookies.get(TOTP_TICKET_COOKIE):
        return redirect("/login")
    return render(
        request, "login_totp.html", {"error": "", "next": safe_next(request.query.get("next"))}
    )


async def totp_post(request: web.Request) -> web.Response:
    data = await form(request)
    ticket = request.cookies.get(TOTP_TICKET_COOKIE, "")
    result = await login.with_totp(
        db(request), settings(request), ticket, data.get("code", ""), client(request)
    )
    note_login(request, "totp", result)
    if not result.ok or result.token is None:
        if result.status == 401 and not result.totp_ticket:
            return _login_page(request, error=login_message(result), status=401)
        return render(
            request,
            "login_totp.html",
            {"error": login_message(result), "next": safe_next(data.get("next"))},
            status=result.status,
        )
    response = redirect(safe_next(data.get("next")))
    response.del_cookie(TOTP_TICKET_COOKIE, path="/")
    start_session(response, request, result.token)
    return response


async def code_send(request: web.Request) -> web.Response:
    data = await form(request)
    account = data.get("account", "")
    if not account:
        return _login_page(
            request, error=gettext("Enter your phone number or email."), status=400, tab="party"
        )
    await login.send_code(
        db(request),
        settings(request),
        request.app[CHANNEL],
        account,
        client(request),
        codes.CodePurpose.LOGIN,
    )
    return render(
        request,
        "login_code.html",
        {"account": account, "error": "", "next": safe_next(data.get("next"))},
    )


async def code_verify(request: web.Request) -> web.Response:
    data = await form(request)
    account = data.get("account", "")
    result = await login.with_code(
        db(request), settings(request), account, data.get("code", ""), client(request)
    )
    note_login(request, "code", result)
    if not result.ok or result.token is None:
        return render(
            request,
            "login_code.html",
            {
                "account": account,
                "error": login_message(result),
                "next": safe_next(data.get("next")),
            },
            status=result.status,
        )
    response = redirect(safe_next(data.get("next")))
    start_session(response, request, result.token)
    return response


def _invitation_target(invitation: Invitation) -> str:
    return f"/disputes/{invitation.dispute_id}" if invitation.dispute_id else "/"


async def invitation(request: web.Request) -> web.Response:
    result, invite = await login.with_invitation(
        db(request), settings(request), request.match_info["token"], client(request)
    )
    note_login(request, "invitation", result)
    if not result.ok or result.token is None:
        return _login_page(request, error=login_message(result), status=result.status, tab="party")
    response = redirect(_invitation_target(invite))
    start_session(response, request, result.token)
    return response


async def logout(request: web.Request) -> web.Response:
    caller = principal(request)
    if caller is not None:
        await login.logout(db(request), caller)
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def language(request: web.Request) -> web.Response:
    locale = normalise_locale(request.match_info["locale"]) or "zh_CN"
    response = redirect(safe_next(request.query.get("next")))
    set_cookie(response, request, LANG_COOKIE, locale, max_age=365 * 86400)
    return response


async def reverify_get(request: web.Request) -> web.Response:
    require_login(request)
    return render(
        request,
        "reverify.html",
        {"error": "", "sent": False, "next": safe_next(request.query.get("next"))},
    )


async def reverify_send(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await form(request)
    await login.send_reverification(db(request), settings(request), request.app[CHANNEL], caller)
    return render(
        request, "reverify.html", {"error": "", "sent": True, "next": safe_next(data.get("next"))}
    )


async def reverify_post(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await form(request)
    result = await login.reverify(db(request), settings(request), caller, data.get("code", ""))
    note_login(request, "reverify", result)
    if not result.ok:
        return render(
            request,
            "reverify.html",
            {"error": login_message(result), "sent": True, "next": safe_next(data.get("next"))},
            status=result.status,
        )
    return redirect(safe_next(data.get("next")))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/login", login_get, name="login")
    r.add_post("/login", login_post)
    r.add_get("/login/totp", totp_get, name="login_totp")
    r.add_post("/login/totp", totp_post)
    r.add_post("/login/code", code_send, name="login_code")
    r.add_post("/login/code/verify", code_verify, name="login_code_verify")
    r.add_get("/invite/{token}", invitation, name="invitation")
    r.add_post("/logout", logout, name="logout")
    r.add_get("/lang/{locale}", language, name="language")
    r.add_get("/reverify", reverify_get, name="reverify")
    r.add_post("/reverify/send", reverify_send, name="reverify_send")
    r.add_post("/reverify", reverify_post)
