"""Work queues with 10,000 disputes: page times as ratios to a trivial page, and the
query plans behind them.

    .venv/bin/python -m bench.disputes [--disputes 10000] [--small 1000] [--requests 30] [--rounds 5]

(as a module: run as a script, bench/storage.py would shadow the storage package)

For each size (``--small``, then ``--disputes``) the demo court is seeded into a fresh
SQLite database in a temporary folder and the disputes are bulk-inserted, spread evenly
over every status after the draft, over 24 mediators and over due dates from 15 days
overdue to 45 days ahead (each with a workflow state whose deadlines match its
``next_due_at``).  One process serves the app; one keep-alive client per account times,
interleaved over several rounds:

- /healthz (the trivial page: middlewares, no database),
- /queue as the mediator 郑调解 (their queue, with countdowns),
- /queue as the court admin (counts by status and the overdue list),
- /queue as the triage officer (the biggest queue here: a sixth of all disputes),
- /disputes as the court admin and as the mediator (the general paged list),

and prints the median time per request of each over /healthz, for both sizes side by
side: a page that is paged and indexed costs about the same at both.  Then the plan of
every statement on the disputes table that those pages ran (EXPLAIN QUERY PLAN on
SQLite: ``SEARCH ... USING INDEX`` is an index lookup, a bare ``SCAN disputes`` a full
table scan; the app never runs ANALYZE there, so these are the default estimates).

With YIZHAN_BENCH_POSTGRES_URL set (e.g. postgresql://postgres@127.0.0.1:5432/postgres)
the same runs on scratch PostgreSQL databases created on that server (ANALYZEd after the
load, as autovacuum would) and dropped after; a ``Seq Scan on disputes`` is a full scan.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import make_url

from server.app import init_app
from server.config import load_settings
from server.context import DATABASE
from server.db import migrate, workflow_codec
from server.db.engine import Database
from server.db.models import (
    Court,
    Dispute,
    DisputeParty,
    DisputeStaff,
    MediationOrganisation,
    Mediator,
    User,
)
from server.demo import DEMO_COURT_CODE, DEMO_PASSWORD, seed
from server.domain.disputes import (
    Assignment,
    AssignmentStatus,
    Complexity,
    DisputeState,
    DisputeStatus,
    DisputeType,
    RespondentConsent,
    running_deadlines,
)
from server.domain.roles import DisputeRole, Role

S = DisputeStatus
EXTRA_MEDIATORS = 21  # with the demo court's three: 24
CHUNK = 1000
WITH_MEDIATOR = frozenset(
    {
        S.MEDIATOR_ASSIGNED,
        S.MEDIATING,
        S.AGREEMENT_REACHED,
        S.AGREEMENT_SIGNED,
        S.CONFIRMATION,
        S.CONFIRMED,
        S.CONFIRMATION_REJECTED,
        S.FAILED,
    }
)


def _state(
    status: DisputeStatus, mediator: int | None, due: datetime, now: datetime
) -> DisputeState:
    """A workflow state in ``status`` whose running deadlines fall on ``due``."""
    base = DisputeState(
        status=status,
        submitted_at=now - timedelta(days=20),
        auto_complexity=Complexity.SIMPLE,
        triage_score=10,
        triage_suitable=True,
    )
    if status in (S.SUBMITTED, S.TRIAGED):
        return replace(base, assignment_due=due)
    if status is S.AWAITING_MEDIATOR:
        return replace(
            base,
            complexity=Complexity.SIMPLE,
            assignment_due=due,
            joint_choice_due=due + timedelta(days=1),
            respondent_consent=RespondentConsent.PENDING,
            respondent_contact_due=due + timedelta(days=2),
        )
    if mediator is None:
        return replace(base, complexity=Complexity.SIMPLE)
    proposed = Assignment(mediator, False, now - timedelta(days=15), due)
    if status is S.MEDIATOR_ASSIGNED:
        return replace(
            base,
            complexity=Complexity.SIMPLE,
            assignment=proposed,
            respondent_consent=RespondentConsent.GIVEN,
        )
    accepted = replace(
        proposed, status=AssignmentStatus.ACCEPTED, accepted_at=now - timedelta(days=14)
    )
    state = replace(
        base,
        complexity=Complexity.SIMPLE,
        assignment=accepted,
        respondent_consent=RespondentConsent.GIVEN,
        period_started_at=now - timedelta(days=14),
        period_days=30,
        period_ends_at=due,
    )
    if status is S.AGREEMENT_SIGNED:
        return replace(state, status=status, signed_at=now, confirmation_due=due)
    return state


async def load(db: Database, disputes: int, seed_value: int = 7) -> dict[str, int]:
    """The demo court plus ``disputes`` disputes, bulk-inserted."""
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    await migrate.upgrade(db)
    async with db.transaction() as session:
        await seed(session)
    async with db.transaction() as session:
        court_id = await session.scalar(select(Court.id).where(Court.code == DEMO_COURT_CODE))
        assert court_id is not None
        organisation = await session.scalar(
            select(MediationOrganisation.id).where(MediationOrganisation.court_id == court_id)
        )
        assert organisation is not None
        for i in range(EXTRA_MEDIATORS):
            user = User(role=Role.MEDIATOR, name=f"调解员{i:02d}", court_id=court_id)
            session.add(user)
            await session.flush()
            session.add(
                Mediator(
                    user_id=user.id,
                    organisation_id=organisation,
                    specialities=["民间借贷"] if i % 2 else ["买卖合同"],
                    case_types=["loan", "sale"],
                    languages=["zh"],
                )
            )
        mediators = list(
            (await session.scalars(select(Mediator.user_id).order_by(Mediator.id))).all()
        )
        staff = {
            name: await session.scalar(select(User.id).where(User.username == name))
            for name in ("shujiyuan", "faguan")
        }
    statuses = [s for s in DisputeStatus if s is not S.DRAFT]
    kinds = list(DisputeType)
    year = now.year
    rows: list[dict[str, Any]] = []
    for n in range(disputes):
        status = statuses[n % len(statuses)]
        mediator = rng.choice(mediators) if status in WITH_MEDIATOR else None
        due = now + timedelta(days=rng.uniform(-15, 45))
        state = _state(status, mediator, due, now)
        deadlines = running_deadlines(state)
        rows.append(
            {
                "court_id": court_id,
                "number": f"（{year}）演0101诉前调{n + 1000}号",
                "dispute_type": kinds[n % len(kinds)].value,
                "status": status.value,
                "claim_amount": Decimal(rng.randrange(1000, 500000)),
                "summary": "批量生成的纠纷",
                "requests": "请求调解",
                "complexity": Complexity.SIMPLE.value,
                "workflow": workflow_codec.dump(state),
                "mediator_user_id": mediator,
                "next_due_at": deadlines[0].due if deadlines else None,
                "created_at": now - timedelta(days=rng.uniform(0, 365)),
                "updated_at": now,
            }
        )
    async with db.transaction() as session:
        before = int(await session.scalar(select(func.max(Dispute.id))) or 0)
        for start in range(0, len(rows), CHUNK):
            await session.execute(insert(Dispute), rows[start : start + CHUNK])
        created = list(
            (
                await session.execute(
                    select(Dispute.id, Dispute.status, Dispute.mediator_user_id).where(
                        Dispute.id > before
                    )
                )
            ).tuples()
        )
        parties: list[dict[str, Any]] = []
        members: list[dict[str, Any]] = []
        for dispute_id, stored, mediator in created:
            parties.append(
                {
                    "dispute_id": dispute_id,
                    "side": DisputeRole.APPLICANT,
                    "name": "申请人",
                    "kind": "natural",
                }
            )
            if mediator is not None and stored in (s.value for s in WITH_MEDIATOR):
                members.append(
                    {"dispute_id": dispute_id, "user_id": mediator, "role": DisputeRole.MEDIATOR}
                )
            if stored in (S.FILING_PENDING.value, S.FAILED.value) and dispute_id % 3 == 0:
                members.append(
                    {
                        "dispute_id": dispute_id,
                        "user_id": staff["shujiyuan"],
                        "role": DisputeRole.CLERK,
                    }
                )
            if stored in (S.CONFIRMATION.value, S.FILED.value) and dispute_id % 3 == 0:
                members.append(
                    {
                        "dispute_id": dispute_id,
                        "user_id": staff["faguan"],
                        "role": DisputeRole.JUDGE,
                    }
                )
        for start in range(0, len(parties), CHUNK):
            await session.execute(insert(DisputeParty), parties[start : start + CHUNK])
        for start in range(0, len(members), CHUNK):
            await session.execute(insert(DisputeStaff), members[start : start + CHUNK])
    if not db.is_sqlite:
        # PostgreSQL's autovacuum would do this soon after a bulk load; the app never
        # runs ANALYZE on SQLite, so the SQLite plans are those of its default estimates
        async with db.write_engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
    return {"disputes": len(created), "mediators": len(mediators)}


async def _timed(work: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


# (name, account, path): the pages timed, the first being the trivial baseline
CASES = (
    ("healthz", "admin", "/healthz"),
    ("mediator /queue", "tiaojie", "/queue"),
    ("admin /queue (overview)", "admin", "/queue"),
    ("triage /queue", "fenliu", "/queue"),
    ("admin /disputes", "admin", "/disputes"),
    ("mediator /disputes", "tiaojie", "/disputes"),
)
# the pages whose statements on the disputes table are explained
EXPLAINED = (
    ("tiaojie", "/queue"),
    ("admin", "/queue"),
    ("fenliu", "/queue"),
    ("admin", "/disputes"),
    ("tiaojie", "/disputes"),
)


async def run(
    database_url: str, data_dir: Path, disputes: int, requests: int, rounds: int, *, plans: bool
) -> dict[str, float]:
    """Load, serve and time; returns each case's median seconds per request."""
    settings = load_settings(
        {
            "YIZHAN_DATA_DIR": str(data_dir),
            "YIZHAN_DATABASE_URL": database_url,
            "YIZHAN_LOG_LEVEL": "WARNING",
            "YIZHAN_LOG_FORMAT": "text",
        }
    )
    db = Database(settings.database_url)
    started = time.perf_counter()
    try:
        loaded = await load(db, disputes)
    finally:
        await db.dispose()
    backend = make_url(settings.database_url).get_backend_name()
    print(
        f"\n== {backend}: {loaded['disputes']} disputes, {loaded['mediators']} mediators "
        f"(loaded in {time.perf_counter() - started:.1f} s)"
    )

    app = init_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    statements: list[tuple[str, Any]] = []
    capture = False

    def note(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if capture and "FROM disputes" in statement:
            statements.append((statement, parameters))

    engines = {app[DATABASE].read_engine, app[DATABASE].write_engine}
    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", note)
    browsers: dict[str, ClientSession] = {}
    try:
        for account in sorted({account for _, account, _ in CASES}):
            client = ClientSession(cookie_jar=CookieJar(unsafe=True))
            browsers[account] = client
            token = (await (await client.get(server.make_url("/api/v1/csrf"))).json())["csrf_token"]
            login = await client.post(
                server.make_url("/api/v1/auth/login"),
                json={"account": account, "password": DEMO_PASSWORD},
                headers={"X-CSRF-Token": token},
            )
            assert login.status == 200, await login.text()
        for account in ("tiaojie", "fenliu", "admin"):
            body = await (await browsers[account].get(server.make_url("/api/v1/queue"))).json()
            what = "overdue listed" if body["overdue_only"] else "in the queue"
            print(
                f"  {account:>8} /api/v1/queue: {body['total']} {what}, "
                f"{len(body['items'])} on page 1, {body['overdue']} overdue"
            )

        def loop(account: str, path: str) -> Callable[[], Awaitable[None]]:
            url = str(server.make_url(path))

            async def go() -> None:
                for _ in range(requests):
                    async with browsers[account].get(url) as response:
                        await response.read()
                        assert response.status == 200, path

            return go

        cases = {name: loop(account, path) for name, account, path in CASES}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for work in cases.values():  # warm-up
            await work()
        for _ in range(rounds):  # interleaved so that noise hits every case alike
            for name, work in cases.items():
                times[name].append(await _timed(work))

        if plans:
            capture = True
            for account, path in EXPLAINED:
                statements.clear()
                async with browsers[account].get(server.make_url(path)) as response:
                    await response.read()
                print(f"\n  query plans of {path} as {account}:")
                if backend == "sqlite":
                    explain(settings.database_url, statements)
                else:
                    await explain_postgres(settings.database_url, statements)
            capture = False
    finally:
        for client in browsers.values():
            await client.close()
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", note)
        await server.close()
    return {name: statistics.median(values) / requests for name, values in times.items()}


def explain(database_url: str, statements: list[tuple[str, Any]]) -> None:
    """EXPLAIN QUERY PLAN of each statement; a bare SCAN of disputes is a full scan."""
    path = make_url(database_url).database
    assert path
    conn = sqlite3.connect(path)
    try:
        for statement, parameters in statements:
            plan = conn.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            head = " ".join(statement.split())[:100]
            details = [detail for *_, detail in plan]
            full = any(d.startswith("SCAN disputes") and "INDEX" not in d for d in details)
            walk = any(d.startswith("SCAN disputes USING") for d in details)
            verdict = "FULL SCAN" if full else ("index walk" if walk else "indexed")
            print(f"  {verdict:<10} | {head}...")
            for detail in details:
                if "disputes" in detail or "B-TREE" in detail:
                    print(f"               {detail}")
    finally:
        conn.close()


async def explain_postgres(database_url: str, statements: list[tuple[str, Any]]) -> None:
    """EXPLAIN of each statement; a Seq Scan on disputes is a full scan."""
    dsn = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        for statement, parameters in statements:
            plan = await conn.fetch(f"EXPLAIN (COSTS OFF) {statement}", *parameters)
            details = [row[0].strip().lstrip("-> ").strip() for row in plan]
            full = any(d.startswith("Seq Scan on disputes") for d in details)
            print(
                f"  {'FULL SCAN' if full else 'indexed':<10} | {' '.join(statement.split())[:100]}..."
            )
            for detail in details:
                if "disputes" in detail or detail.startswith(("Sort", "Incremental Sort")):
                    print(f"               {detail}")
    finally:
        await conn.close()


def report(sizes: list[int], results: list[dict[str, float]]) -> None:
    header = "".join(f"{n:>16,}" for n in sizes)
    print(f"\n  {'page / healthz (median per request)':<36}{header}")
    for name, _, _ in CASES[1:]:
        cells = "".join(f"{r[name] / r['healthz']:>8.1f} ({r[name] * 1e3:4.1f}ms)" for r in results)
        print(f"  {name:<36}{cells}")
    cells = "".join(f"{r['healthz'] * 1e3:>14.2f}ms" for r in results)
    print(f"  {'healthz itself':<36}{cells}")


async def sizes_on(
    url_for: Callable[[int], Awaitable[str]],
    cleanup: Callable[[str], Awaitable[None]],
    base: Path,
    sizes: list[int],
    requests: int,
    rounds: int,
) -> None:
    results = []
    for n in sizes:
        url = await url_for(n)
        try:
            results.append(
                await run(url, base / f"d{n}", n, requests, rounds, plans=n == max(sizes))
            )
        finally:
            await cleanup(url)
    report(sizes, results)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--disputes", type=int, default=10_000)
    parser.add_argument(
        "--small", type=int, default=1_000, help="the same at this size, for comparison (0: skip)"
    )
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [n for n in (args.small, args.disputes) if n > 0]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)

        async def sqlite_url(n: int) -> str:
            return f"sqlite+aiosqlite:///{base / f'bench-{n}.db'}"

        async def nothing(url: str) -> None:
            return None

        await sizes_on(sqlite_url, nothing, base, sizes, args.requests, args.rounds)
        pg = os.environ.get("YIZHAN_BENCH_POSTGRES_URL")
        if pg:
            admin_dsn = make_url(pg).set(drivername="postgresql")
            dsn = admin_dsn.render_as_string(hide_password=False)

            async def pg_url(n: int) -> str:
                name = f"yz_bench_{uuid.uuid4().hex[:10]}"
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute(f'CREATE DATABASE "{name}"')
                finally:
                    await conn.close()
                target = make_url(pg).set(drivername="postgresql+asyncpg", database=name)
                return target.render_as_string(hide_password=False)

            async def drop(url: str) -> None:
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute(
                        f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'
                    )
                finally:
                    await conn.close()

            await sizes_on(pg_url, drop, base, sizes, args.requests, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
