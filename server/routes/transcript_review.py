"""The JSON API of the parties' review of a session's transcript (笔录核对): its state,
the clerk opening and freezing it, the parties confirming (after a fresh one-time code)
or objecting (补正), and the check of a frozen transcript against its hash."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from server.context import client, db, require_login, settings
from server.i18n import gettext
from server.openapi import documented
from server.routes.api import body
from server.routes.common import path_id
from server.services import transcript_review as service
from server.services.transcript_review import Answer, ReviewState, Verification

TAGS = ("transcript review",)


class AnswerOut(BaseModel):
    id: int
    user_id: int
    name: str
    seat: str = Field(description="translated")
    decision: str = Field(description="confirmed, objected, refused or absent")
    decision_label: str
    sha256: str = Field(description="the version answered")
    current: bool = Field(description="of the text as it stands (or as frozen)")
    objection: str
    line_id: int | None
    verified_by: str = Field(description="one_time_code, login_session, or empty")
    note: str
    recorded_by: str = Field(description="the clerk who recorded a refusal or an absence")
    at: str


class PartyOut(BaseModel):
    user_id: int
    name: str
    seat: str
    answer: AnswerOut | None = Field(description="their answer to the current version")


class VerificationOut(BaseModel):
    sha256: str
    recomputed: str
    text_matches: bool
    lines_match: bool
    ok: bool


class ReviewOut(BaseModel):
    session_id: int
    state: str = Field(description="none, open or frozen")
    over: bool = Field(description="the session has ended")
    sha256: str = Field(description="the text's SHA-256 now, or as it was frozen")
    lines: int
    opened_at: str | None
    opened_by: str
    frozen_at: str | None
    frozen_by: str
    may_open: bool
    may_freeze: bool
    may_answer: bool
    answered: bool
    changed_since_answer: bool
    parties: list[PartyOut] = Field(description="every party (staff) or only the caller")
    missing: list[PartyOut]
    objections: list[AnswerOut]
    mine: list[AnswerOut]
    verification: VerificationOut | None


class Confirmation(BaseModel):
    sha256: str = Field(max_length=64, description="the version the party read")


class Objection(BaseModel):
    sha256: str = Field(max_length=64, description="the version the party read")
    text: str = Field(max_length=10_000, description=f"1 to {service.MAX_OBJECTION} characters")
    line_id: int | None = Field(default=None, description="the line objected to, if one")


class MissingParty(BaseModel):
    user_id: int
    reason: Literal["refused", "absent"] = Field(description="refused to sign, or absent")
    note: str = Field(default="", max_length=service.MAX_NOTE)


class Freeze(BaseModel):
    sha256: str = Field(max_length=64, description="the version the clerk read")
    missing: list[MissingParty] = Field(
        default_factory=list, description="a reason for each party who has not answered"
    )


def answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "id": answer.id,
        "user_id": answer.user_id,
        "name": answer.name,
        "seat": gettext(answer.seat) if answer.seat else "",
        "decision": answer.decision,
        "decision_label": gettext(answer.decision_label),
        "sha256": answer.sha256,
        "current": answer.current,
        "objection": answer.objection,
        "line_id": answer.line_id,
        "verified_by": answer.verified_by,
        "note": answer.note,
        "recorded_by": answer.recorded_by,
        "at": answer.at.isoformat(),
    }


def verification_json(checked: Verification) -> dict[str, Any]:
    return {
        "sha256": checked.sha256,
        "recomputed": checked.recomputed,
        "text_matches": checked.text_matches,
        "lines_match": checked.lines_match,
        "ok": checked.ok,
    }


def review_json(review: ReviewState) -> dict[str, Any]:
    def party(signer: service.Signer, answer: Answer | None) -> dict[str, Any]:
        return {
            "user_id": signer.user_id,
            "name": signer.name,
            "seat": gettext(signer.seat),
            "answer": answer_json(answer) if answer else None,
        }

    return {
        "session_id": review.session_id,
        "state": review.state,
        "over": review.over,
        "sha256": review.sha256,
        "lines": review.lines,
        "opened_at": review.opened_at.isoformat() if review.opened_at else None,
        "opened_by": review.opened_by,
        "frozen_at": review.frozen_at.isoformat() if review.frozen_at else None,
        "frozen_by": review.frozen_by,
        "may_open": review.may_open,
        "may_freeze": review.may_freeze,
        "may_answer": review.may_answer,
        "answered": review.answered,
        "changed_since_answer": review.changed_since_answer,
        "parties": [party(status.signer, status.answer) for status in review.parties],
        "missing": [party(signer, None) for signer in review.missing],
        "objections": [answer_json(answer) for answer in review.objections],
        "mine": [answer_json(answer) for answer in review.mine],
        "verification": verification_json(review.verification) if review.verification else None,
    }


async def _state(request: web.Request, session_id: int) -> web.Response:
    caller = require_login(request)
    return web.json_response(review_json(await service.state(db(request), caller, session_id)))


@documented("The parties' review of a session's transcript", response=ReviewOut, tags=TAGS)
async def review_state(request: web.Request) -> web.Response:
    return await _state(request, path_id(request, "session_id"))


@documented(
    "Open the parties' review (the clerk, once the session is over)",
    response=ReviewOut,
    status=201,
    tags=TAGS,
)
async def review_open(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    await service.open_review(db(request), caller, session_id)
    response = await _state(request, session_id)
    response.set_status(201)
    return response


@documented(
    "Confirm the transcript as read (needs a fresh one-time code)",
    body=Confirmation,
    response=ReviewOut,
    tags=TAGS,
)
async def review_confirm(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    data = await body(request, Confirmation)
    await service.confirm(
        db(request),
        caller,
        session_id,
        data.sha256,
        client(request),
        reverify_minutes=settings(request).reverify_minutes,
    )
    return await _state(request, session_id)


@documented("Object to the transcript (补正)", body=Objection, response=ReviewOut, tags=TAGS)
async def review_object(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    data = await body(request, Objection)
    await service.object_to(
        db(request),
        caller,
        session_id,
        data.sha256,
        data.text,
        client(request),
        line_id=data.line_id,
        reverify_minutes=settings(request).reverify_minutes,
    )
    return await _state(request, session_id)


@documented(
    "Freeze the transcript with its hash (the clerk)", body=Freeze, response=ReviewOut, tags=TAGS
)
async def review_freeze(request: web.Request) -> web.Response:
    caller = require_login(request)
    session_id = path_id(request, "session_id")
    data = await body(request, Freeze)
    missing = {
        item.user_id: service.Missing(reason=item.reason, note=item.note) for item in data.missing
    }
    await service.freeze(db(request), caller, session_id, data.sha256, missing)
    return await _state(request, session_id)


@documented(
    "Check a frozen transcript against its hash and the lines as they stand",
    response=VerificationOut,
    tags=TAGS,
)
async def review_verify(request: web.Request) -> web.Response:
    caller = require_login(request)
    checked = await service.verify(db(request), caller, path_id(request, "session_id"))
    return web.json_response(verification_json(checked))


def setup(app: web.Application) -> None:
    r = app.router
    base = "/api/v1/sessions/{session_id}/transcript/review"
    r.add_get(base, review_state, name="api_transcript_review")
    r.add_post(f"{base}/open", review_open, name="api_transcript_review_open")
    r.add_post(f"{base}/confirm", review_confirm, name="api_transcript_review_confirm")
    r.add_post(f"{base}/object", review_object, name="api_transcript_review_object")
    r.add_post(f"{base}/freeze", review_freeze, name="api_transcript_review_freeze")
    r.add_get(f"{base}/verify", review_verify, name="api_transcript_review_verify")
