"""Request pipeline: context (locale, CSRF cookie, headers, logs, metrics) → errors →
one database transaction per request (caller, CSRF check, commit or roll back)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from server.audit import Actor
from server.auth import sessions
from server.auth.tokens import new_token, same
from server.context import (
    CSRF_COOKIE,
    CSRF_TOKEN,
    DATABASE,
    DB_SESSION,
    LANG_COOKIE,
    LOCALE,
    METRICS,
    PRINCIPAL,
    REQUEST_ID,
    RESPONSE_DELAY,
    SESSION_COOKIE,
    client_ip,
    is_api,
    principal,
    set_cookie,
    settings,
)
from server.domain.errors import (
    N_,
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    InternalError,
    Invalid,
    NotFound,
    ReverificationRequired,
    TooManyAttempts,
    Unauthenticated,
    Unavailable,
)
from server.i18n import DEFAULT_LOCALE, current_locale, gettext, normalise_locale
from server.security_events import record_denial
from server.templating import render

log = logging.getLogger("yizhan.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_DATABASE = ("/static/", "/healthz", "/readyz", "/metrics", "/socket.io/")

STATUS = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    ReverificationRequired: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooManyAttempts: 429,
    InternalError: 500,
    Unavailable: 503,
}

HTTP_MESSAGES = {
    400: N_("The request could not be understood."),
    403: N_("You may not do this."),
    404: N_("The page you asked for does not exist."),
    405: N_("This action is not allowed here."),
    413: N_("The request is too large (at most %(limit)s KB)."),
    500: N_("Something went wrong on our side. The error has been logged; please try again."),
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    request[REQUEST_ID] = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
    locale = normalise_locale(request.cookies.get(LANG_COOKIE)) or DEFAULT_LOCALE
    request[LOCALE] = locale
    csrf = request.cookies.get(CSRF_COOKIE) or ""
    request[CSRF_TOKEN] = csrf or new_token()
    token = current_locale.set(locale)
    try:
        response = await handler(request)
    finally:
        current_locale.reset(token)
    if not csrf and not request.path.startswith(NO_DATABASE):
        set_cookie(response, request, CSRF_COOKIE, request[CSRF_TOKEN], same_site="Strict")
    _security_headers(request, response)
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    _observe(request, response, time.perf_counter() - started)
    return response


def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault(
        "Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)"
    )
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if settings(request).cookie_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if principal(request) is not None or request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")


def _route_name(request: web.Request) -> str:
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


def _observe(request: web.Request, response: web.StreamResponse, seconds: float) -> None:
    route = _route_name(request)
    metrics = request.app[METRICS]
    metrics.requests.labels(request.method, route, str(response.status)).inc()
    metrics.latency.labels(route).observe(seconds)
    caller = principal(request)
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status,
        extra={
            "request_id": request[REQUEST_ID],
            "status": response.status,
            "route": route,
            "ms": round(seconds * 1000, 1),
            "user_id": caller.user_id if caller else None,
            "ip": client_ip(request),
        },
    )


def error_response(
    request: web.Request,
    status: int,
    message: str,
    *,
    code: str = "error",
    field: str | None = None,
) -> web.StreamResponse:
    if is_api(request) or "application/json" in request.headers.get("Accept", ""):
        body: dict[str, object] = {"code": code, "message": message}
        if field:
            body["field"] = field
        return web.json_response({"error": body}, status=status)
    return render(request, "error.html", {"status": status, "message": message}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Unauthenticated as exc:
        if not is_api(request) and request.method in SAFE_METHODS:
            target = quote(str(request.rel_url), safe="")
            return web.Response(status=303, headers={"Location": f"/login?next={target}"})
        return error_response(
            request, 401, gettext(exc.message, **exc.localised_params(gettext)), code=exc.code
        )
    except DomainError as exc:
        return error_response(
            request,
            status_of(exc),
            gettext(exc.message, **exc.localised_params(gettext)),
            code=exc.code,
            field=getattr(exc, "field", None),
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            return web.Response(status=exc.status, headers=exc.headers)
        if exc.status == 413:
            limit = settings(request).max_body_bytes // 1024
            message = gettext(HTTP_MESSAGES[413], limit=limit)
        else:
            message = gettext(HTTP_MESSAGES.get(exc.status, HTTP_MESSAGES[400]))
        return error_response(request, exc.status, message, code=f"http_{exc.status}")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error", extra={"request_id": request.get(REQUEST_ID)})
        return error_response(request, 500, gettext(HTTP_MESSAGES[500]), code="internal")


def _same_origin(request: web.Request, origin: str) -> bool:
    allowed = set(settings(request).allowed_origins)
    public = settings(request).public_url.rstrip("/")
    if public:
        allowed.add(str(URL(public).origin()))
    own = f"{request.scheme}://{request.host}"
    return origin == own or origin in allowed


async def _check_csrf(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and not _same_origin(request, origin):
        raise Forbidden(N_("This request came from another site and was refused.")).audited(
            "csrf.rejected", origin=origin
        )
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        sent = str(form.get("_csrf", ""))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not sent or not same(cookie, sent):
        raise Forbidden(
            N_(
                "The form has expired or was not sent from this site. Reload the page and try again."
            )
        ).audited("csrf.rejected")


async def _audit_security(request: web.Request, error: DomainError) -> None:
    caller = principal(request)
    actor = caller.actor() if caller else Actor(role="anonymous", ip=client_ip(request))
    await record_denial(request.app[DATABASE], actor, error, f"{request.method} {request.path}")


@web.middleware
async def transaction_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One unit of work per request: commit what the handler did, or nothing at all."""
    if request.path.startswith(NO_DATABASE):
        return await handler(request)
    # a handler that streams a long body writes in its own short transaction afterwards
    streams = getattr(request.match_info.handler, "streams_body", False)
    write = request.method not in SAFE_METHODS and not streams
    database = request.app[DATABASE]
    try:
        async with database.session(write=write) as session:
            request[DB_SESSION] = session
            async with session.begin():
                request[PRINCIPAL] = await sessions.resolve(
                    session, request.cookies.get(SESSION_COOKIE), ip=client_ip(request)
                )
                if request.method not in SAFE_METHODS:
                    await _check_csrf(request)
                response = await handler(request)
    except DomainError as exc:
        if exc.security:
            await _audit_security(request, exc)
        raise
    # a failed login is answered slowly, after its transaction has released the database
    delay = float(request.get(RESPONSE_DELAY, 0.0))
    if delay > 0:
        await asyncio.sleep(delay)
    return response
