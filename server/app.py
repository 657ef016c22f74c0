"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import i18n, metrics, sockets
from server.config import Settings
from server.context import CHANNEL, CSRF_TOKEN, DATABASE, LOCALE, METRICS, SETTINGS, principal
from server.db.engine import Database
from server.db.migrate import ensure_migrated
from server.domain.disputes import role_label, status_label, type_label
from server.middlewares import context_middleware, error_middleware, transaction_middleware
from server.navigation import navigation
from server.notify import OutboxChannel
from server.routes import account, admin, api, auth, disputes, health, home
from web import STATIC_DIR

__all__ = ["init_app"]


async def _database(app: web.Application) -> AsyncIterator[None]:
    database = Database(app[SETTINGS].database_url)
    try:
        await ensure_migrated(database)
    except BaseException:
        await database.dispose()
        raise
    app[DATABASE] = database
    yield
    await database.dispose()


async def _template_context(request: web.Request) -> dict[str, object]:
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


def _templates(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        context_processors=[_template_context],
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
        localtime=localtime, type_label=type_label, status_label=status_label, role_label=role_label
    )
    env.globals["static"] = static


def init_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[context_middleware, error_middleware, transaction_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics.create()
    app[CHANNEL] = OutboxChannel()
    app.cleanup_ctx.append(_database)
    for module in (health, auth, home, disputes, account, admin, api):
        module.setup(app)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    _templates(app)
    sockets.attach(app)
    return app
