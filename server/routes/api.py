"""The JSON API, /api/v1.  Every handler checks role and dispute through server.auth.access."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from server import audit
from server.auth import access, codes, login
from server.context import CHANNEL, CSRF_TOKEN, client, db, require_login, settings
from server.domain.errors import N_, Invalid
from server.domain.roles import Permission, Role
from server.openapi import documented
from server.pagination import page_args
from server.routes.common import login_message, note_login, path_id, start_session
from server.services import audit_view, disputes, invitations, roster
from server.services.users import NewUser, create_user, list_for_admin, user_json

M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PasswordLogin(_Body):
    account: str
    password: str


class TotpLogin(_Body):
    ticket: str
    code: str


class CodeRequest(_Body):
    account: str


class CodeLogin(_Body):
    account: str
    code: str


class Code(_Body):
    code: str


class InvitationIn(_Body):
    user_id: int


class UserIn(_Body):
    role: Role
    name: str
    phone: str | None = None
    username: str | None = None
    email: str | None = None
    password: str | None = None


async def body(request: web.Request, model: type[M]) -> M:
    try:
        raw = await request.json()
    except ValueError:
        raise Invalid(N_("The request body is not valid JSON.")) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "missing":
            raise Invalid(N_("This field is required: %(field)s."), field=field) from None
        raise Invalid(N_("This field is not valid: %(field)s."), field=field) from None


def _login_response(request: web.Request, result: login.LoginResult, method: str) -> web.Response:
    note_login(request, method, result)
    if result.totp_ticket and result.status == 200 and not result.ok:
        return web.json_response({"totp_required": True, "ticket": result.totp_ticket})
    if not result.ok or result.token is None or result.user is None:
        return web.json_response(
            {"error": {"code": "login_failed", "message": login_message(result)}},
            status=result.status,
        )
    response = web.json_response({"user": user_json(result.user)})
    start_session(response, request, result.token)
    return response


@documented("The CSRF token to send as X-CSRF-Token on every change")
async def csrf(request: web.Request) -> web.Response:
    return web.json_response({"csrf_token": request[CSRF_TOKEN]})


@documented("Log in with a username or phone and a password (staff)", body=PasswordLogin)
async def login_password(request: web.Request) -> web.Response:
    data = await body(request, PasswordLogin)
    result = await login.with_password(
        db(request), settings(request), data.account, data.password, client(request)
    )
    return _login_response(request, result, "password")


@documented("Second step of a login: the authenticator code", body=TotpLogin)
async def login_totp(request: web.Request) -> web.Response:
    data = await body(request, TotpLogin)
    result = await login.with_totp(
        db(request), settings(request), data.ticket, data.code, client(request)
    )
    return _login_response(request, result, "totp")


@documented("Send a one-time login code to a party's phone or email", body=CodeRequest, status=202)
async def code_send(request: web.Request) -> web.Response:
    data = await body(request, CodeRequest)
    await login.send_code(
        db(request),
        settings(request),
        request.app[CHANNEL],
        data.account,
        client(request),
        codes.CodePurpose.LOGIN,
    )
    return web.json_response({"sent": True}, status=202)


@documented("Log in with a one-time code (parties and agents)", body=CodeLogin)
async def login_code(request: web.Request) -> web.Response:
    data = await body(request, CodeLogin)
    result = await login.with_code(
        db(request), settings(request), data.account, data.code, client(request)
    )
    return _login_response(request, result, "code")


@documented("End this session")
async def logout(request: web.Request) -> web.Response:
    caller = require_login(request)
    await login.logout(db(request), caller)
    response = web.json_response({"logged_out": True})
    response.del_cookie("yz_session", path="/")
    return response


@documented("Who is logged in")
async def me(request: web.Request) -> web.Response:
    caller = require_login(request)
    return web.json_response(
        {
            "id": caller.user_id,
            "name": caller.name,
            "role": caller.role.value,
            "court_id": caller.court_id,
            "login_method": caller.method,
            "reverified_at": caller.reverified_at.isoformat() if caller.reverified_at else None,
        }
    )


@documented("Send a fresh code for a sensitive step", status=202)
async def reverify_send(request: web.Request) -> web.Response:
    caller = require_login(request)
    await login.send_reverification(db(request), settings(request), request.app[CHANNEL], caller)
    return web.json_response({"sent": True}, status=202)


@documented("Confirm identity with the fresh code", body=Code)
async def reverify(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, Code)
    result = await login.reverify(db(request), settings(request), caller, data.code)
    note_login(request, "reverify", result)
    if not result.ok:
        return web.json_response(
            {"error": {"code": "reverify_failed", "message": login_message(result)}},
            status=result.status,
        )
    return web.json_response({"reverified": True})


@documented(
    "The disputes the caller may see, paged",
    query={"page": "page number, from 1", "per_page": "at most 100", "status": "only this status"},
)
async def dispute_list(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    result = await disputes.list_visible(
        db(request), caller, page, per_page, request.query.get("status")
    )
    return web.json_response(
        {"items": [disputes.summary(d) for d in result.items], **result.meta()}
    )


@documented("One dispute's file")
async def dispute_detail(request: web.Request) -> web.Response:
    caller = require_login(request)
    file = await disputes.dispute_file(db(request), caller, path_id(request))
    return web.json_response(disputes.file_json(file))


@documented("Send a party or agent a signed link into the dispute", body=InvitationIn, status=201)
async def invitation_create(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, InvitationIn)
    config = settings(request)
    issued = await invitations.invite(
        db(request),
        caller,
        request.app[CHANNEL],
        dispute_id=path_id(request),
        user_id=data.user_id,
        secret=config.secret(),
        base_url=config.public_url or f"{request.scheme}://{request.host}",
        valid_days=config.invitation_days,
    )
    return web.json_response(
        {"user_id": issued.user_id, "url": issued.url, "sent_to": issued.sent_to}, status=201
    )


@documented(
    "Accounts of the court (admins)",
    query={"page": "page number, from 1", "per_page": "at most 100"},
)
async def user_list(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.MANAGE_USERS)
    page, per_page = page_args(request.query)
    result = await list_for_admin(db(request), caller.court_id, page, per_page)
    return web.json_response({"items": [user_json(u) for u in result.items], **result.meta()})


@documented("Create an account (admins)", body=UserIn, status=201)
async def user_create(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.MANAGE_USERS)
    data = await body(request, UserIn)
    user = await create_user(
        db(request),
        NewUser(
            role=data.role,
            name=data.name,
            phone=data.phone,
            username=data.username,
            email=data.email,
            password=data.password,
            court_id=caller.court_id,
        ),
        caller.actor(),
    )
    return web.json_response(user_json(user), status=201)


@documented(
    "Search the mediator roster",
    query={
        "case_type": "dispute type the mediator takes",
        "speciality": "speciality",
        "language": "language code",
        "page": "page",
        "per_page": "per page",
    },
)
async def roster_search(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.VIEW_ROSTER)
    page, per_page = page_args(request.query)
    q = request.query
    result = await roster.search(
        db(request),
        roster.RosterFilter(
            court_id=caller.court_id,
            case_type=q.get("case_type"),
            speciality=q.get("speciality"),
            language=q.get("language"),
        ),
        page,
        per_page,
    )
    return web.json_response(
        {"items": [roster.entry_json(r) for r in result.items], **result.meta()}
    )


@documented(
    "The audit log, newest first (admins)",
    query={"page": "page number, from 1", "per_page": "at most 100"},
)
async def audit_list(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.VIEW_AUDIT)
    page, per_page = page_args(request.query, default_per_page=50)
    result = await audit_view.recent(db(request), page, per_page)
    return web.json_response(
        {"items": [audit_view.event_json(e) for e in result.items], **result.meta()}
    )


@documented("Check the audit log's hash chain (admins)")
async def audit_verify(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.VIEW_AUDIT)
    report = await audit.verify(db(request))
    return web.json_response(
        {
            "ok": report.ok,
            "rows": report.rows,
            "first_broken_seq": report.first_broken_seq,
            "problem": report.problem,
        }
    )


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/csrf", csrf, name="api_csrf")
    r.add_post("/api/v1/auth/login", login_password, name="api_login")
    r.add_post("/api/v1/auth/totp", login_totp, name="api_login_totp")
    r.add_post("/api/v1/auth/code", code_send, name="api_code")
    r.add_post("/api/v1/auth/code/verify", login_code, name="api_code_verify")
    r.add_post("/api/v1/auth/logout", logout, name="api_logout")
    r.add_get("/api/v1/me", me, name="api_me")
    r.add_post("/api/v1/me/reverify/send", reverify_send, name="api_reverify_send")
    r.add_post("/api/v1/me/reverify", reverify, name="api_reverify")
    r.add_get("/api/v1/disputes", dispute_list, name="api_disputes")
    r.add_get("/api/v1/disputes/{id}", dispute_detail, name="api_dispute")
    r.add_post("/api/v1/disputes/{id}/invitations", invitation_create, name="api_invitations")
    r.add_get("/api/v1/users", user_list, name="api_users")
    r.add_post("/api/v1/users", user_create)
    r.add_get("/api/v1/roster", roster_search, name="api_roster")
    r.add_get("/api/v1/audit", audit_list, name="api_audit")
    r.add_get("/api/v1/audit/verify", audit_verify, name="api_audit_verify")
