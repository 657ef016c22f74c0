"""Wiring the job runner into the app: started after the database and the object store,
stopped (its running jobs handed back to the queue) before they close."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from server.config import ConfigError
from server.context import DATABASE, SETTINGS, SPOOL, STORE
from server.jobs.deliver import SERVICE_DELIVERY, deliver
from server.jobs.runner import JobRunner, RunnerPolicy
from server.jobs.speech import SharedEngine
from server.jobs.transcribe import TRANSCRIBE_STATEMENT, StatementTranscriber
from server.services.recording_compose import RECORDING_COMPOSE, compose
from server.services.recording_retention import RECORDING_PURGE, ensure_purge_scheduled, purge
from server.services.transcript_exports import TRANSCRIPT_EXPORT, export

RUNNER = web.AppKey("job_runner", JobRunner)
SPEECH = web.AppKey("job_speech", SharedEngine)


async def run_jobs(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    try:
        policy = RunnerPolicy.from_settings(settings)
    except ValueError:
        raise ConfigError(
            "YIZHAN_JOB_STALE_SECONDS: must be at least twice YIZHAN_JOB_HEARTBEAT_SECONDS"
        ) from None
    runner = JobRunner(
        app[DATABASE], settings=settings, store=app[STORE], spool=app[SPOOL], policy=policy
    )
    speech = SharedEngine(settings)
    runner.register(TRANSCRIBE_STATEMENT, StatementTranscriber(speech))
    runner.register(TRANSCRIPT_EXPORT, export)
    runner.register(RECORDING_PURGE, purge)
    runner.register(RECORDING_COMPOSE, compose)
    runner.register(SERVICE_DELIVERY, deliver)
    async with app[DATABASE].transaction() as db:
        due = datetime.now(UTC) + timedelta(hours=settings.recording_purge_hours)
        await ensure_purge_scheduled(db, settings, due=due)
    app[RUNNER], app[SPEECH] = runner, speech
    runner.start()
    yield
    await runner.stop()
    await speech.close()
