"""Liveness, readiness and metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.context import DATABASE, METRICS
from server.db.engine import DatabaseUnavailable
from server.db.migrate import NotMigrated, ensure_migrated


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    database = request.app[DATABASE]
    try:
        await database.ping()
        await ensure_migrated(database)
    except (DatabaseUnavailable, NotMigrated) as exc:
        return web.json_response({"status": "unavailable", "database": str(exc)}, status=503)
    return web.json_response({"status": "ready", "database": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")
