"""What the request pipeline and the audit chain cost, as ratios to baselines.

    .venv/bin/python -m bench.request_pipeline [--requests 400] [--rounds 5]

1. HTTP: a bare aiohttp handler (baseline) against /healthz (our middlewares, no
   database) and /api/v1/me (middlewares + one read transaction + session lookup),
   all served by one process and driven by one keep-alive client on loopback.
2. Audit: appending N chained audit rows (lock, read the previous hash, hash, insert)
   against inserting N rows of the same size without the chain, on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer
from sqlalchemy import insert

from server import audit
from server.app import init_app
from server.audit import Actor, AuditEntry
from server.config import load_settings
from server.db import migrate
from server.db.engine import Database
from server.db.models import OutboxMessage
from server.demo import DEMO_PASSWORD, seed


async def _timed(work: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def http_ratios(data_dir: Path, requests: int, rounds: int) -> dict[str, float]:
    settings = load_settings(
        {
            "YIZHAN_DATA_DIR": str(data_dir),
            "YIZHAN_LOG_LEVEL": "WARNING",
            "YIZHAN_LOG_FORMAT": "text",
        }
    )
    db = Database(settings.database_url)
    await migrate.upgrade(db)
    async with db.transaction() as session:
        await seed(session)
    await db.dispose()

    async def bare(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    bare_app = web.Application()
    bare_app.router.add_get("/", bare)
    servers = [
        TestServer(bare_app, host="127.0.0.1"),
        TestServer(init_app(settings), host="127.0.0.1"),
    ]
    for server in servers:
        await server.start_server()
    base, app = servers
    try:
        # unsafe: keep cookies for an IP-address host (127.0.0.1)
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as client:
            token = (await (await client.get(app.make_url("/api/v1/csrf"))).json())["csrf_token"]
            login = await client.post(
                app.make_url("/api/v1/auth/login"),
                json={"account": "tiaojie", "password": DEMO_PASSWORD},
                headers={"X-CSRF-Token": token},
            )
            assert login.status == 200

            def loop(url: str) -> Callable[[], Awaitable[None]]:
                async def run() -> None:
                    for _ in range(requests):
                        async with client.get(url) as response:
                            await response.read()
                            assert response.status == 200

                return run

            cases = {
                "bare": loop(str(base.make_url("/"))),
                "healthz": loop(str(app.make_url("/healthz"))),
                "me": loop(str(app.make_url("/api/v1/me"))),
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            for work in cases.values():  # warm-up
                await work()
            for _ in range(rounds):  # interleaved so that noise hits every case alike
                for name, work in cases.items():
                    times[name].append(await _timed(work))
    finally:
        for server in servers:
            await server.close()
    median = {name: statistics.median(values) for name, values in times.items()}
    return {
        "per-request µs, bare": median["bare"] / requests * 1e6,
        "healthz / bare": median["healthz"] / median["bare"],
        "api/me / bare": median["me"] / median["bare"],
    }


async def audit_ratio(data_dir: Path, rows: int, rounds: int) -> dict[str, float]:
    db = Database(f"sqlite+aiosqlite:///{data_dir / 'audit.db'}")
    await migrate.upgrade(db)

    async def chained() -> None:
        async with db.transaction() as session:
            for i in range(rows):
                await audit.append(
                    session,
                    AuditEntry("bench.event", Actor(id=1, role="clerk"), "x", i, details={"n": i}),
                )

    async def plain() -> None:
        async with db.transaction() as session:
            for i in range(rows):
                await session.execute(
                    insert(OutboxMessage).values(
                        channel="bench",
                        destination="x",
                        subject="bench.event",
                        body=f'{{"n": {i}}}',
                    )
                )

    chained_times, plain_times = [], []
    for _ in range(rounds):
        plain_times.append(await _timed(plain))
        chained_times.append(await _timed(chained))
    async with db.transaction(write=False) as session:
        report = await audit.verify(session)
    await db.dispose()
    assert report.ok and report.rows == rows * rounds
    return {
        "audit append / plain insert": statistics.median(chained_times)
        / statistics.median(plain_times)
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = await http_ratios(Path(tmp) / "http", args.requests, args.rounds)
        results |= await audit_ratio(Path(tmp), args.rows, args.rounds)
    for name, value in results.items():
        print(f"{name:<32} {value:8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
