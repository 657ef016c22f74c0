"""The background-job runner on SQLite and PostgreSQL: each job is claimed once even by
two runners on one database; a failing handler fails its job (audited, the details for
staff only); a retryable failure is tried again; a job left running by a dead worker is
resumed by the next runner; progress never goes backwards and is visible through
GET /api/v1/jobs/{id}, to the people on the job's dispute and nobody else."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.audit import SYSTEM, Actor
from server.config import Settings
from server.context import DATABASE
from server.db.base import utcnow
from server.db.engine import Database
from server.db.models import AuditEvent, Job, User
from server.jobs import JobContext, JobRunner, RetryableError, RunnerPolicy
from server.jobs.setup import RUNNER
from storage.factory import open_store
from storage.spool import Spool
from tests.support import Clients

pytestmark = pytest.mark.timeout(120)

ZHANG, WANG = "13800000001", "13800000003"
FAST = RunnerPolicy(
    workers=2,
    heartbeat_seconds=0.2,
    stale_seconds=30.0,
    progress_seconds=0.05,
    poll_seconds=0.1,
    first_retry_delay=0.05,
    max_retry_delay=0.1,
)
Result = Mapping[str, Any]


def new_runner(settings: Settings, name: str, policy: RunnerPolicy = FAST) -> JobRunner:
    """A runner with its own connection pool, as a second process would have."""
    return JobRunner(
        Database(settings.database_url),
        settings=settings,
        store=open_store(settings.storage_url),
        spool=Spool(settings.data_dir / "spool"),
        policy=policy,
        name=name,
    )


@pytest.fixture
async def runners(settings: Settings) -> AsyncIterator[list[JobRunner]]:
    made = [new_runner(settings, "runner-a"), new_runner(settings, "runner-b")]
    try:
        yield made
    finally:
        for runner in made:
            await runner.stop()
            await runner.database.dispose()


async def queue_jobs(runner: JobRunner, kind: str, count: int, **options: Any) -> list[int]:
    async with runner.database.transaction() as db:
        jobs = [await runner.enqueue(db, kind, {"n": i}, **options) for i in range(count)]
        return [job.id for job in jobs]


async def job_row(database: Database, job_id: int) -> Job:
    async with database.transaction(write=False) as db:
        job = await db.get(Job, job_id)
        assert job is not None
        return job


async def until(
    check: Callable[[], Awaitable[bool]], seconds: float = 30.0, what: str = "the jobs"
) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"{what} did not finish in time"
        await asyncio.sleep(0.05)


async def states(database: Database, ids: list[int]) -> list[str]:
    async with database.transaction(write=False) as db:
        rows = await db.execute(select(Job.id, Job.state).where(Job.id.in_(ids)))
        found = dict(rows.tuples().all())
    return [found[i] for i in ids]


async def audited(database: Database, action: str, **where: Any) -> list[AuditEvent]:
    async with database.transaction(write=False) as db:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return [
            row for row in rows if all(getattr(row, key) == value for key, value in where.items())
        ]


async def test_two_runners_on_one_database_run_each_job_exactly_once(
    runners: list[JobRunner],
) -> None:
    ran: list[tuple[str, int]] = []

    def handler_of(runner: JobRunner) -> Callable[[JobContext], Awaitable[Result]]:
        async def handler(ctx: JobContext) -> Result:
            ran.append((runner.worker, ctx.id))
            await asyncio.sleep(0.01)
            return {"by": runner.worker}

        return handler

    for runner in runners:
        runner.register("count", handler_of(runner))
    ids = await queue_jobs(runners[0], "count", 24, dispute_id=1)
    for runner in runners:
        runner.start()

    async def all_done() -> bool:
        return await states(runners[0].database, ids) == ["done"] * len(ids)

    await until(all_done)
    assert sorted(job_id for _, job_id in ran) == ids  # every job, and each one once
    assert max(Counter(job_id for _, job_id in ran).values()) == 1
    assert len(await audited(runners[0].database, "job.done")) == len(ids)
    assert len(await audited(runners[0].database, "job.queued", dispute_id=1)) == len(ids)


async def test_a_job_left_running_by_a_dead_worker_is_resumed_by_the_next_runner(
    runners: list[JobRunner],
) -> None:
    database = runners[0].database
    async with database.transaction() as db:
        orphan = Job(
            kind="resumable", state="running", params='{"step": 2}', worker="gone:1:dead",
            attempts=1, heartbeat_at=utcnow() - timedelta(hours=1), dispute_id=1,
            progress=0.4, stage="Halfway",
        )  # fmt: skip
        exhausted = Job(
            kind="resumable", state="running", params="{}", worker="gone:1:dead",
            attempts=3, heartbeat_at=utcnow() - timedelta(hours=1), dispute_id=1,
        )  # fmt: skip
        alive = Job(
            kind="resumable", state="running", params="{}", worker="busy:2:alive",
            attempts=1, heartbeat_at=utcnow(), dispute_id=1,
        )  # fmt: skip
        db.add_all([orphan, exhausted, alive])
    seen: list[tuple[int, float, dict[str, Any]]] = []

    async def resume(ctx: JobContext) -> Result:
        seen.append((ctx.attempt, ctx.fraction, ctx.params))
        return {"resumed": True}

    runner = runners[0]
    runner.register("resumable", resume)
    runner.start()

    async def settled() -> bool:
        return (await states(database, [orphan.id, exhausted.id]))[0] == "done"

    await until(settled)
    assert seen == [(2, 0.4, {"step": 2})]  # the second attempt, its progress kept
    assert (await job_row(database, exhausted.id)).state == "failed"
    assert (await job_row(database, alive.id)).state == "running"  # its worker lives
    assert [e.object_id for e in await audited(database, "job.resumed")] == [str(orphan.id)]
    assert str(exhausted.id) in [e.object_id for e in await audited(database, "job.failed")]


async def test_a_retryable_failure_is_tried_again_until_its_attempts_are_used_up(
    runners: list[JobRunner],
) -> None:
    runner = runners[0]

    async def flaky(ctx: JobContext) -> Result:
        if ctx.attempt == 1:
            raise RetryableError("the store is down for a moment", delay=0)
        return {"attempt": ctx.attempt}

    async def hopeless(ctx: JobContext) -> Result:
        raise RetryableError("the store is still down")

    runner.register("flaky", flaky)
    runner.register("hopeless", hopeless)
    [flaky_id] = await queue_jobs(runner, "flaky", 1, dispute_id=1)
    [hopeless_id] = await queue_jobs(runner, "hopeless", 1, dispute_id=1)
    runner.start()

    async def settled() -> bool:
        return set(await states(runner.database, [flaky_id, hopeless_id])) <= {"done", "failed"}

    await until(settled)
    flaky_job = await job_row(runner.database, flaky_id)
    assert (flaky_job.state, flaky_job.attempts, flaky_job.result) == (
        "done",
        2,
        '{"attempt": 2}',
    )
    hopeless_job = await job_row(runner.database, hopeless_id)
    assert (hopeless_job.state, hopeless_job.attempts) == ("failed", FAST.max_attempts)
    assert "still down" in hopeless_job.error
    retries = await audited(runner.database, "job.retry")
    assert [e.object_id for e in retries].count(str(hopeless_id)) == FAST.max_attempts - 1
    assert str(flaky_id) in [e.object_id for e in retries]


# --- through the app and the API --------------------------------------------------------


async def user_actor(app: web.Application, phone: str) -> Actor:
    async with app[DATABASE].transaction(write=False) as db:
        user = await db.scalar(select(User).where(User.phone == phone))
        assert user is not None
        return Actor(id=user.id, role=user.role.value, name=user.name)


async def queue_in_app(app: web.Application, kind: str, created_by: Actor = SYSTEM) -> int:
    async with app[DATABASE].transaction() as db:
        job = await app[RUNNER].enqueue(db, kind, {}, dispute_id=1, created_by=created_by)
        return job.id


async def english(client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    await client.get("/lang/en?next=/", allow_redirects=False)
    return client


async def read_job(client: TestClient[Any, Any], job_id: int) -> tuple[int, Any]:
    response = await client.get(f"/api/v1/jobs/{job_id}")
    return response.status, await response.json()


async def test_a_failing_handler_fails_the_job_and_only_staff_see_why(clients: Clients) -> None:
    app = clients.server.app

    async def explode(ctx: JobContext) -> Result:
        raise ValueError("the disk caught fire")

    app[RUNNER].register("explode", explode)
    job_id = await queue_in_app(app, "explode", await user_actor(app, ZHANG))

    async def failed() -> bool:
        return (await job_row(app[DATABASE], job_id)).state == "failed"

    await until(failed)
    zhang = await english(await clients.party(ZHANG))
    status, body = await read_job(zhang, job_id)
    assert status == 200
    assert body["state"] == "failed" and body["error"].startswith("This task failed")
    assert "error_detail" not in body and "fire" not in str(body)
    clerk = await clients.staff("shujiyuan")  # the clerk of the dispute
    status, body = await read_job(clerk, job_id)
    assert status == 200 and "the disk caught fire" in body["error_detail"]
    [event] = await audited(app[DATABASE], "job.failed", object_id=str(job_id))
    assert event.dispute_id == 1 and "the disk caught fire" in event.details["error"]


async def test_progress_only_goes_forward_and_people_of_other_disputes_get_a_404(
    clients: Clients,
) -> None:
    app = clients.server.app
    gates = [asyncio.Event(), asyncio.Event()]

    async def steps(ctx: JobContext) -> Result:
        ctx.progress(0.25, "Fetching the recording")
        await gates[0].wait()
        ctx.progress(0.1)  # late news of an earlier step: ignored
        ctx.progress(0.6, "Transcribing the recording")
        await gates[1].wait()
        return {"steps": 2}

    app[RUNNER].register("steps", steps)
    job_id = await queue_in_app(app, "steps", await user_actor(app, ZHANG))
    zhang = await english(await clients.party(ZHANG))
    seen: list[tuple[float, str]] = []

    async def reached(fraction: float, then: asyncio.Event | None) -> None:
        async def check() -> bool:
            _, body = await read_job(zhang, job_id)
            seen.append((body["progress"], body["stage"]))
            return bool(body["progress"] >= fraction)

        await until(check, what=f"progress {fraction}")
        if then is not None:
            then.set()

    await reached(0.25, gates[0])
    await reached(0.6, gates[1])
    await reached(1.0, None)
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions)
    assert (0.25, "Fetching the recording") in seen and (0.6, "Transcribing the recording") in seen
    _, body = await read_job(zhang, job_id)
    assert (body["state"], body["result"], body["error"]) == ("done", {"steps": 2}, "")

    wang = await clients.party(WANG)  # a party of the other demo dispute
    status, body = await read_job(wang, job_id)
    assert status == 404 and body["error"]["code"] == "not_found"
    denials = await audited(app[DATABASE], "access.denied")
    assert any(e.details.get("job_id") == job_id for e in denials)
    status, _ = await read_job(wang, 999_999)
    assert status == 404


async def test_a_runner_that_stops_hands_its_running_job_back(settings: Settings) -> None:
    runner = new_runner(settings, "stopping")
    started = asyncio.Event()

    async def forever(ctx: JobContext) -> Result:
        started.set()
        await asyncio.Event().wait()
        return {}

    runner.register("forever", forever)
    try:
        [job_id] = await queue_jobs(runner, "forever", 1)
        runner.start()
        await asyncio.wait_for(started.wait(), 10)
        await runner.stop()
        job = await job_row(runner.database, job_id)
        assert (job.state, job.worker, job.attempts) == ("queued", "", 0)
    finally:
        await runner.stop()
        await runner.database.dispose()


async def test_the_job_and_statement_endpoints_are_in_the_openapi_document(
    clients: Clients,
) -> None:
    anonymous = await clients.new()
    document = await (await anonymous.get("/api/v1/openapi.json")).json()
    job = document["paths"]["/api/v1/jobs/{id}"]["get"]
    assert job["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/JobOut"
    )
    upload = document["paths"]["/api/v1/sessions/{session_id}/statements"]["post"]
    assert "202" in upload["responses"] and "JobOut" in document["components"]["schemas"]
