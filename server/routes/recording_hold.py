"""The legal hold on a session's recording (JSON API): the judge, the clerk or the court's
administrator places it, with a reason, or lifts it. A held recording is never purged."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from server.context import db, require_login
from server.db.models import Recording
from server.openapi import documented
from server.routes.api import body
from server.routes.common import path_id
from server.services import recording_retention as retention

TAGS = ("recordings",)


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    hold: StrictBool = Field(description="true places the hold, false lifts it")
    reason: str = Field(
        default="",
        max_length=retention.MAX_REASON,
        description="why (required to place a hold)",
    )


class HoldOut(BaseModel):
    id: int
    session_id: int
    dispute_id: int
    state: str = Field(description="recording, paused, stopped or purged")
    started_at: str
    ended_at: str | None
    hold: bool
    reason: str = Field(description="the reason of the hold in force, or empty")
    purged_at: str | None


def hold_json(recording: Recording) -> dict[str, Any]:
    return {
        "id": recording.id,
        "session_id": recording.session_id,
        "dispute_id": recording.dispute_id,
        "state": recording.state,
        "started_at": recording.started_at.isoformat(),
        "ended_at": recording.ended_at.isoformat() if recording.ended_at else None,
        "hold": recording.legal_hold,
        "reason": recording.hold_reason,
        "purged_at": recording.purged_at.isoformat() if recording.purged_at else None,
    }


@documented(
    "Place or lift the legal hold on a session's recording",
    body=HoldIn,
    response=HoldOut,
    tags=TAGS,
)
async def recording_hold(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request)
    data = await body(request, HoldIn)
    recording = await retention.set_hold(db(request), caller, session_id, data.hold, data.reason)
    return web.json_response(hold_json(recording))


def setup(app: web.Application) -> None:
    app.router.add_post(
        "/api/v1/sessions/{id}/recording/hold", recording_hold, name="api_recording_hold"
    )
