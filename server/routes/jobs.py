"""Background jobs through the API: state, progress and stage (translated), the result,
and why a job failed (a message for everyone, the details for the court's staff)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from server.context import db, require_login
from server.db.models import Job
from server.domain.errors import N_
from server.i18n import gettext
from server.jobs import queue
from server.jobs.errors import GENERIC_FAILURE
from server.openapi import documented
from server.routes.common import path_id
from server.services import jobs

WAITING = N_("Waiting to start")
STARTING = N_("Starting")
STATES = {
    queue.QUEUED: N_("Queued"),
    queue.RUNNING: N_("Running"),
    queue.DONE: N_("Done"),
    queue.FAILED: N_("Failed"),
    queue.CANCELLED: N_("Cancelled"),
}


class JobOut(BaseModel):
    id: int
    kind: str
    state: str = Field(description="queued, running, done, failed or cancelled")
    state_label: str = Field(description="the state in the caller's language")
    progress: float = Field(description="0..1, never goes backwards")
    stage: str = Field(description="what the job does now, in the caller's language")
    error: str = Field(description="why it failed, for everyone; empty unless failed")
    error_detail: str | None = Field(
        default=None, description="the technical reason, for the court's staff only"
    )
    result: dict[str, Any]
    attempts: int
    dispute_id: int | None
    session_id: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None


def job_json(job: Job, *, details: bool) -> dict[str, Any]:
    failed = job.state == queue.FAILED
    if job.stage:
        stage = gettext(job.stage)
    elif job.state == queue.QUEUED:
        stage = gettext(WAITING)
    elif job.state == queue.RUNNING:
        stage = gettext(STARTING)
    else:
        stage = ""
    body: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "state_label": gettext(STATES.get(job.state, job.state)),
        "progress": round(job.progress, 4),
        "stage": stage,
        "error": gettext(job.error_message or GENERIC_FAILURE) if failed else "",
        "result": queue.loads(job.result) if job.state == queue.DONE else {},
        "attempts": job.attempts,
        "dispute_id": job.dispute_id,
        "session_id": job.session_id,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if details:
        body["error_detail"] = job.error
    return body


@documented("A background job: state, progress, stage and result", response=JobOut)
async def job(request: web.Request) -> web.Response:
    caller = require_login(request)
    found = await jobs.readable(db(request), caller, path_id(request))
    return web.json_response(job_json(found, details=jobs.sees_details(caller)))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/jobs/{id}", job, name="api_job")
