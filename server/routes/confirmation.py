"""Routes of judicial confirmation (司法确认): the judges' queue, the application's page,
the parties' joint application and the judge's steps (take, ask for evidence, schedule
an online hearing, decide), as page forms and as the JSON API.

Each handler parses its input and calls one function of ``services.confirmation``. A page
form comes back to the application's page with the result or the reason it was refused;
a decision without a fresh one-time code goes to /reverify first and back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.auth.principal import Principal
from server.context import CHANNEL, OUTBOX, SPOOL, db, require_login, settings
from server.domain.disputes import status_label
from server.domain.errors import N_, Conflict, Forbidden, Invalid, ReverificationRequired
from server.i18n import gettext
from server.jobs.setup import RUNNER
from server.openapi import documented
from server.pagination import page_args
from server.routes.api import body
from server.routes.common import Flash, court_zone, in_zone, invitation_links, path_id, redirect
from server.routes.workflow import SESSION_WORDS
from server.services import confirmation as service
from server.services import workflow
from server.services.sessions import Links
from server.templating import render

TAGS = ("judicial confirmation",)
FLASH = Flash("yizhan.confirmation-page.v1")  # signed notices of the page forms

ACTIONS = {
    "apply": N_("Apply for judicial confirmation"),
    "take": N_("Take the application"),
    "evidence": N_("Ask the parties for evidence"),
    "hearing": N_("Schedule an online hearing"),
    "decide": N_("Decide on the application"),
}
DONE = N_("Done: %(action)s.")


# --- input ----------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EvidenceIn(_Body):
    text: str = Field(max_length=service.MAX_TEXT, description="what the parties must provide")


class HearingIn(_Body):
    starts_at: datetime = Field(description="with an offset; without one, the court's time")


class DecisionIn(_Body):
    decision: Literal["confirmed", "rejected"]
    reasons: str = Field(
        default="", max_length=service.MAX_TEXT, description="required for a rejection"
    )


def _zone(request: web.Request) -> ZoneInfo:
    return court_zone(request)


def _in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    return in_zone(moment, zone)


def _links(request: web.Request) -> Links:
    return invitation_links(request)


def _issuing(request: web.Request) -> service.Issuing:
    return service.Issuing(
        spool=request.app[SPOOL], settings=settings(request), runner=request.app[RUNNER]
    )


# --- output ---------------------------------------------------------------------------------


class ApplicantOut(BaseModel):
    party_id: int
    party: str
    applied_by: str
    role: str = Field(description="party, or agent (with special authority)")
    at: datetime


class DocumentOut(BaseModel):
    id: int
    kind: str
    title: str
    sha256: str
    size: int
    url: str


class SessionOut(BaseModel):
    id: int
    kind: str
    status: str
    scheduled_start: datetime
    room: str
    transcript: str
    recording: str


class ServiceOut(BaseModel):
    party_id: int
    name: str
    served: bool
    service_id: int | None
    state: str = Field(description="pending, complete, failed; '' when none was made")
    text: str = Field(description="translated: the state, or why the party was not served")


class ConfirmationOut(BaseModel):
    dispute_id: int
    number: str
    court: str
    status: str
    status_label: str
    state: str = Field(description="applying, applied, evidence_requested, hearing, ...; or ''")
    state_label: str
    signed: bool
    confirmation_due: datetime | None
    applied_at: datetime | None
    applicants: list[ApplicantOut]
    waiting_for: list[str]
    judge: str
    mode: str
    evidence_request: str
    evidence_requested_at: datetime | None
    hearing: SessionOut | None
    agreement: DocumentOut | None
    documents: list[DocumentOut]
    sessions: list[SessionOut]
    decided_at: datetime | None
    reasons: str
    ruling: DocumentOut | None
    ruling_sha256: str
    services: list[ServiceOut]
    may_apply: bool
    may_handle: bool


class QueueItemOut(BaseModel):
    dispute_id: int
    number: str
    state: str
    state_label: str
    applied_at: datetime | None
    judge: str
    url: str


class QueueOut(BaseModel):
    items: list[QueueItemOut]
    page: int
    per_page: int
    total: int
    pages: int


def _document_out(item: service.FileDocument | None) -> DocumentOut | None:
    if item is None:
        return None
    d = item.document
    return DocumentOut(
        id=d.id,
        kind=d.kind,
        title=d.title,
        sha256=item.sha256,
        size=item.size,
        url=f"/api/v1/documents/{d.id}/content",
    )


def _session_out(s: Any) -> SessionOut:
    return SessionOut(
        id=s.id,
        kind=s.kind,
        status=s.status,
        scheduled_start=s.scheduled_start,
        room=f"/sessions/{s.id}/room",
        transcript=f"/sessions/{s.id}/transcript",
        recording=f"/sessions/{s.id}/recording",
    )


def _state_label(state: str) -> str:
    return gettext(service.STATE_LABELS[state]) if state in service.STATE_LABELS else ""


def file_json(file: service.ApplicationFile) -> dict[str, Any]:
    c = file.confirmation
    names = {p.id: p.name for p in file.parties}
    out = ConfirmationOut(
        dispute_id=file.dispute.id,
        number=file.dispute.number,
        court=file.court,
        status=file.dispute.status,
        status_label=gettext(status_label(file.dispute.status)),
        state=file.state,
        state_label=_state_label(file.state),
        signed=file.signed,
        confirmation_due=file.confirmation_due,
        applied_at=c.applied_at if c else None,
        applicants=[
            ApplicantOut(
                party_id=a.party_id,
                party=names.get(a.party_id, ""),
                applied_by=a.name,
                role=a.role,
                at=a.at,
            )
            for a in file.applicants
        ],
        waiting_for=[p.name for p in file.waiting_for],
        judge=file.judge_name,
        mode=c.mode if c else "",
        evidence_request=c.evidence_request if c else "",
        evidence_requested_at=c.evidence_requested_at if c else None,
        hearing=_session_out(file.hearing) if file.hearing else None,
        agreement=_document_out(file.agreement_document),
        documents=[d for d in (_document_out(f) for f in file.documents) if d is not None],
        sessions=[_session_out(s) for s in file.sessions],
        decided_at=c.decided_at if c else None,
        reasons=c.reasons if c else "",
        ruling=_document_out(file.ruling),
        ruling_sha256=c.ruling_sha256 if c else "",
        services=[
            ServiceOut(
                party_id=n.party_id,
                name=n.name,
                served=n.served,
                service_id=n.service_id,
                state=n.state,
                text=gettext(n.text),
            )
            for n in file.services
        ],
        may_apply=file.may_apply,
        may_handle=file.may_handle,
    )
    return out.model_dump(mode="json")


async def _file_response(request: web.Request, caller: Principal, dispute_id: int) -> web.Response:
    file = await service.application_file(db(request), caller, dispute_id)
    return web.json_response(file_json(file))


# --- carrying out an action --------------------------------------------------------------------


Perform = Callable[[web.Request, Principal, int, Mapping[str, Any]], Awaitable[None]]


def _validated(model: type[BaseModel], values: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "missing":
            raise Invalid(N_("This field is required: %(field)s."), field=name) from None
        raise Invalid(N_("This field is not valid: %(field)s."), field=name) from None


async def _apply(
    request: web.Request, caller: Principal, dispute_id: int, _: Mapping[str, Any]
) -> None:
    calendar = workflow.calendar_for(settings(request))
    await service.apply(db(request), caller, dispute_id, calendar=calendar)


async def _take(
    request: web.Request, caller: Principal, dispute_id: int, _: Mapping[str, Any]
) -> None:
    await service.take(db(request), caller, dispute_id)


async def _evidence(
    request: web.Request, caller: Principal, dispute_id: int, values: Mapping[str, Any]
) -> None:
    data: EvidenceIn = _validated(EvidenceIn, values)
    await service.request_evidence(db(request), caller, request.app[CHANNEL], dispute_id, data.text)


async def _hearing(
    request: web.Request, caller: Principal, dispute_id: int, values: Mapping[str, Any]
) -> None:
    data: HearingIn = _validated(HearingIn, values)
    await service.schedule_hearing(
        db(request),
        caller,
        request.app[CHANNEL],
        dispute_id,
        _in_zone(data.starts_at, _zone(request)),
        links=_links(request),
    )


async def _decide(
    request: web.Request, caller: Principal, dispute_id: int, values: Mapping[str, Any]
) -> None:
    data: DecisionIn = _validated(DecisionIn, values)
    await service.decide(
        db(request),
        caller,
        dispute_id,
        data.decision,
        data.reasons,
        issuing=_issuing(request),
        calendar=workflow.calendar_for(settings(request)),
        reverify_minutes=settings(request).reverify_minutes,
    )
    request.app[OUTBOX].wake()


PERFORM: dict[str, Perform] = {
    "apply": _apply,
    "take": _take,
    "evidence": _evidence,
    "hearing": _hearing,
    "decide": _decide,
}


# --- JSON API ---------------------------------------------------------------------------------


async def _api(request: web.Request, action: str, model: type[BaseModel] | None) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    values: Mapping[str, Any] = {}
    if model is not None:
        values = (await body(request, model)).model_dump()
    await PERFORM[action](request, caller, dispute_id, values)
    return await _file_response(request, caller, dispute_id)


@documented(
    "The application for judicial confirmation of a dispute", response=ConfirmationOut, tags=TAGS
)
async def api_file(request: web.Request) -> web.Response:
    caller = require_login(request)
    return await _file_response(request, caller, path_id(request))


@documented(
    "Join the joint application (a party, or an agent with special authority)",
    response=ConfirmationOut,
    tags=TAGS,
)
async def api_apply(request: web.Request) -> web.Response:
    return await _api(request, "apply", None)


@documented("Take the application (a judge of the court)", response=ConfirmationOut, tags=TAGS)
async def api_take(request: web.Request) -> web.Response:
    return await _api(request, "take", None)


@documented(
    "Ask the parties for evidence (the judge)", body=EvidenceIn, response=ConfirmationOut, tags=TAGS
)
async def api_evidence(request: web.Request) -> web.Response:
    return await _api(request, "evidence", EvidenceIn)


@documented(
    "Schedule an online hearing on the application (the judge)",
    body=HearingIn,
    response=ConfirmationOut,
    tags=TAGS,
)
async def api_hearing(request: web.Request) -> web.Response:
    return await _api(request, "hearing", HearingIn)


@documented(
    "Confirm the agreement or reject the application (the judge, after a fresh one-time code)",
    body=DecisionIn,
    response=ConfirmationOut,
    tags=TAGS,
)
async def api_decide(request: web.Request) -> web.Response:
    return await _api(request, "decide", DecisionIn)


async def _queue(request: web.Request) -> Any:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    return await service.queue(db(request), caller, page, per_page)


@documented(
    "Applications waiting for a judge of the caller's court, the oldest first",
    response=QueueOut,
    query={"page": "page number, from 1", "per_page": "at most 100"},
    tags=TAGS,
)
async def api_queue(request: web.Request) -> web.Response:
    found = await _queue(request)
    out = QueueOut(
        items=[
            QueueItemOut(
                dispute_id=item.dispute.id,
                number=item.dispute.number,
                state=item.confirmation.state,
                state_label=_state_label(item.confirmation.state),
                applied_at=item.confirmation.applied_at,
                judge=item.judge_name,
                url=f"/disputes/{item.dispute.id}/confirmation",
            )
            for item in found.items
        ],
        **found.meta(),
    )
    return web.json_response(out.model_dump(mode="json"))


# --- pages ------------------------------------------------------------------------------------


def _notice(request: web.Request) -> tuple[str, str]:
    flashed = FLASH.error(request)
    if flashed is not None:
        return "error", flashed["e"]
    done = request.query.get("done", "")
    if done in ACTIONS:
        return "done", gettext(DONE, action=gettext(ACTIONS[done]))
    return "", ""


async def queue_page(request: web.Request) -> web.Response:
    return render(
        request,
        "confirmation_queue.html",
        {"page": await _queue(request), "state_labels": service.STATE_LABELS},
    )


async def file_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    file = await service.application_file(db(request), caller, path_id(request))
    return render(
        request,
        "confirmation.html",
        {
            "file": file,
            "notice": _notice(request),
            "state_labels": service.STATE_LABELS,
            "party_names": {p.id: p.name for p in file.parties},
            "session_words": SESSION_WORDS,
        },
    )


async def page_action(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    action = request.match_info["action"]
    if action not in PERFORM:
        raise Invalid(N_("There is no such action."), field="action")
    data = await request.post()
    values = {k: str(v).strip() for k, v in data.items() if k != "_csrf" and isinstance(v, str)}
    back = f"/disputes/{dispute_id}/confirmation"
    try:
        # a savepoint: a refused action leaves nothing behind, and the page says why
        async with db(request).begin_nested():
            await PERFORM[action](request, caller, dispute_id, values)
    except ReverificationRequired:
        return redirect(f"/reverify?next={quote(back + '#decide', safe='')}")
    except (Invalid, Conflict, Forbidden) as exc:
        if exc.security:
            raise
        message = gettext(exc.message, **exc.localised_params(gettext))
        token = FLASH.dumps(request, {"e": message, "a": action})
        return redirect(f"{back}?{urlencode({'error': token})}")
    return redirect(f"{back}?{urlencode({'done': action})}")


def setup(app: web.Application) -> None:
    """Add this module's routes."""
    r = app.router
    base = "/api/v1/disputes/{id}/confirmation"
    r.add_get("/confirmations", queue_page, name="confirmations")
    r.add_get("/disputes/{id}/confirmation", file_page, name="confirmation")
    r.add_post("/disputes/{id}/confirmation/{action}", page_action, name="confirmation_action")
    r.add_get("/api/v1/confirmations", api_queue, name="api_confirmations")
    r.add_get(base, api_file, name="api_confirmation")
    r.add_post(f"{base}/apply", api_apply, name="api_confirmation_apply")
    r.add_post(f"{base}/take", api_take, name="api_confirmation_take")
    r.add_post(f"{base}/evidence-request", api_evidence, name="api_confirmation_evidence")
    r.add_post(f"{base}/hearing", api_hearing, name="api_confirmation_hearing")
    r.add_post(f"{base}/decision", api_decide, name="api_confirmation_decision")
