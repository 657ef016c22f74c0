"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server import metrics, sockets, templating
from server.config import Settings
from server.context import CHANNEL, DATABASE, METRICS, SETTINGS
from server.db.engine import Database
from server.db.migrate import ensure_migrated
from server.middlewares import context_middleware, error_middleware, transaction_middleware
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


def init_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[context_middleware, error_middleware, transaction_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics.create()
    app[CHANNEL] = OutboxChannel(log_bodies=settings.demo)
    app.cleanup_ctx.append(_database)
    for module in (health, auth, home, disputes, account, admin, api):
        module.setup(app)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    templating.setup(app)
    sockets.attach(app)
    return app
