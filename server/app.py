"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server import metrics, openapi, sockets, templating
from server.config import Settings
from server.context import CHANNEL, DATABASE, METRICS, OUTBOX, SETTINGS, SPOOL, STORE
from server.db.engine import Database
from server.db.migrate import ensure_migrated
from server.jobs import setup as jobs_setup
from server.middlewares import context_middleware, error_middleware, transaction_middleware
from server.notify import OutboxChannel
from server.rooms import setup as rooms_setup
from server.routes import (
    account,
    admin,
    agreements,
    api,
    applications,
    auth,
    confirmation,
    disputes,
    documents,
    fast_track,
    health,
    home,
    jobs,
    queues,
    recording_hold,
    recordings,
    rooms,
    roster_admin,
    signing,
    statements,
    transcript_review,
    transcripts,
    workflow,
)
from server.routes import e_service as e_service_routes
from server.uploads import RetryPolicy, UploadOutbox
from storage.factory import open_store
from storage.spool import Spool
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


async def _storage(app: web.Application) -> AsyncIterator[None]:
    """The object store, the local spool and the upload outbox worker."""
    settings = app[SETTINGS]
    store = open_store(
        settings.storage_url,
        lock_mode=settings.storage_lock_mode,
        retention_days=settings.storage_retention_days,
    )
    spool = Spool(settings.data_dir / "spool")
    outbox = UploadOutbox(
        app[DATABASE], store, spool, RetryPolicy(max_delay=settings.upload_retry_max_seconds)
    )
    app[STORE], app[SPOOL], app[OUTBOX] = store, spool, outbox
    outbox.start()
    yield
    await outbox.stop()


def init_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[context_middleware, error_middleware, transaction_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics.create()
    app[CHANNEL] = OutboxChannel(log_bodies=settings.demo)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(jobs_setup.run_jobs)
    for module in (
        health, auth, home, applications, disputes, workflow, queues, roster_admin, documents,
        account, admin, api, rooms, transcripts, transcript_review, jobs, statements,
        recordings, recording_hold, agreements, signing, confirmation, fast_track
    ):  # fmt: skip
        module.setup(app)
    e_service_routes.setup(app)
    openapi.setup(app)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    templating.setup(app)
    rooms_setup.attach(app, sockets.attach(app))
    return app
