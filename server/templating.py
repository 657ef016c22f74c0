"""Jinja2 set-up and the one ``render`` every page and error page goes through."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import i18n
from server.context import CSRF_TOKEN, LOCALE, SETTINGS, principal
from server.domain.disputes import role_label, status_label, type_label
from server.domain.documents import kind_label
from server.navigation import navigation


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    zone = ZoneInfo(app[SETTINGS].timezone)

    def localtime(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else "—"

    def static(filename: str) -> str:
        return str(app.router["static"].url_for(filename=filename))

    env.filters.update(
        localtime=localtime,
        type_label=type_label,
        status_label=status_label,
        role_label=role_label,
        kind_label=kind_label,
    )
    env.globals["static"] = static


def _base_context(request: web.Request) -> dict[str, Any]:
    caller = principal(request)
    return {
        "principal": caller,
        "csrf_token": request.get(CSRF_TOKEN, ""),
        "locale": request.get(LOCALE, i18n.DEFAULT_LOCALE),
        "locales": i18n.LOCALE_NAMES,
        "nav": navigation(caller),
        "current_path": request.path,
        "outbox_enabled": request.app[SETTINGS].notify_channel.value == "outbox",
    }


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, request, {**_base_context(request), **(context or {})}, status=status
    )
