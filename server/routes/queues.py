"""Routes of the dispute workflow: each staff role's work queue, the court's overview,
the mediator roster with current loads, and the mediators suggested for a dispute."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import access
from server.auth.principal import Principal
from server.context import db, require_login, settings
from server.db.models import Dispute
from server.domain import commands as cmd
from server.domain.disputes import DisputeType, status_label, type_label
from server.domain.errors import N_, Forbidden, Invalid
from server.domain.ids import parse_id
from server.domain.roles import Permission, has_permission
from server.i18n import gettext
from server.openapi import documented
from server.pagination import page_args
from server.services import queues, roster, workflow
from server.templating import render

# who may ask for suggestions: whoever may assign a mediator
SUGGESTION_ROLES = workflow.SENDERS[cmd.AssignMediator]
ROSTER_PER_PAGE = 20


def _now() -> datetime:
    return datetime.now(UTC)


def _linker(path: str, query: Mapping[str, str]) -> Callable[..., str]:
    """``link(page=2)``: this page's address with its filters kept and some changed."""

    def link(**changes: object) -> str:
        params = {key: value for key, value in query.items() if value}
        for key, value in changes.items():
            if value is None or value == "":
                params.pop(key, None)
            else:
                params[key] = str(value)
        return f"{path}?{urlencode(params)}" if params else path

    return link


async def _queue(request: web.Request, caller: Principal) -> queues.Queue:
    page, per_page = page_args(request.query)
    return await queues.role_queue(
        db(request),
        caller,
        page,
        per_page,
        now=_now(),
        calendar=workflow.calendar_for(settings(request)),
        status=request.query.get("status"),
    )


def countdown_text(due: queues.Due) -> str:
    """How long is left, in the caller's language: "3 working days left", "Overdue"."""
    c = due.countdown
    if c.overdue:
        if c.remaining_working_days < 0:
            return gettext(N_("Overdue by %(num)s working days"), num=-c.remaining_working_days)
        return gettext(N_("Overdue"))
    if c.remaining_days == 0:
        return gettext(N_("Due today"))
    return gettext(N_("%(num)s working days left"), num=c.remaining_working_days)


# pages -----------------------------------------------------------------------------------


async def queue_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    queue = await _queue(request, caller)
    return render(
        request,
        "queue.html",
        {
            "queue": queue,
            "link": _linker("/queue", request.query),
            "may_suggest": caller.role in SUGGESTION_ROLES,
            "countdown_text": countdown_text,
        },
    )


def _roster_filter(caller: Principal, query: Mapping[str, str]) -> roster.RosterFilter:
    active = query.get("active", "yes")
    organisation = query.get("organisation", "")
    organisation_id = parse_id(organisation, "organisation") if organisation else None
    return roster.RosterFilter(
        court_id=caller.court_id,
        case_type=query.get("case_type") or None,
        speciality=(query.get("speciality") or "").strip() or None,
        language=(query.get("language") or "").strip() or None,
        active_only=active == "yes",
        inactive_only=active == "no",
        organisation_id=organisation_id,
        name=(query.get("q") or "").strip() or None,
    )


async def _dispute_to_suggest_for(
    session: AsyncSession, caller: Principal, raw_id: str | None
) -> Dispute:
    if not raw_id:
        raise Invalid(N_("This field is required: %(field)s."), field="dispute_id")
    dispute_id = parse_id(raw_id, "dispute_id")
    if caller.role not in SUGGESTION_ROLES:
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", dispute_id=dispute_id, command=cmd.AssignMediator.key()
        )
    return await access.dispute_for(session, caller, dispute_id)


async def roster_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.VIEW_ROSTER)
    session = db(request)
    page, per_page = page_args(request.query, default_per_page=ROSTER_PER_PAGE)
    flt = _roster_filter(caller, request.query)
    dispute = None
    suggested: list[roster.Suggestion] = []
    if request.query.get("dispute_id"):
        dispute = await _dispute_to_suggest_for(session, caller, request.query["dispute_id"])
        suggested = await roster.suggestions(session, dispute)
    return render(
        request,
        "roster.html",
        {
            "page": await roster.search_with_load(session, flt, page, per_page),
            "organisations": await roster.organisations(session, caller.court_id),
            "case_types": list(DisputeType),
            "values": {
                "q": request.query.get("q", ""),
                "organisation": request.query.get("organisation", ""),
                "case_type": request.query.get("case_type", ""),
                "speciality": request.query.get("speciality", ""),
                "language": request.query.get("language", ""),
                "active": request.query.get("active", "yes"),
            },
            "link": _linker("/roster", request.query),
            "dispute": dispute,
            "suggested": suggested,
            "may_manage": has_permission(caller.role, Permission.MANAGE_ROSTER),
        },
    )


# JSON ------------------------------------------------------------------------------------


class DueOut(BaseModel):
    kind: str
    label: str
    due: datetime
    remaining_working_days: int
    remaining_days: int
    overdue: bool


class QueueItemOut(BaseModel):
    id: int
    number: str
    type: str
    status: str
    status_label: str
    complexity: str | None
    claim_amount: str | None
    created_at: datetime
    next_due_at: datetime | None
    overdue: bool
    deadlines: list[DueOut]


class QueueOut(BaseModel):
    role: str
    status: str | None
    counts: dict[str, int]
    overdue: int
    overdue_only: bool
    items: list[QueueItemOut]
    page: int
    per_page: int
    total: int
    pages: int


class SuggestionOut(BaseModel):
    rank: int
    user_id: int
    mediator_id: int
    name: str
    organisation: str
    case_type_match: bool
    matched_specialities: list[str]
    load: int
    max_active_cases: int
    reasons: list[str]


class SuggestionsOut(BaseModel):
    dispute_id: int
    items: list[SuggestionOut]


def _item_out(item: queues.QueueItem) -> QueueItemOut:
    d = item.dispute
    return QueueItemOut(
        id=d.id,
        number=d.number,
        type=d.dispute_type,
        status=d.status,
        status_label=gettext(status_label(d.status)),
        complexity=d.complexity,
        claim_amount=str(d.claim_amount) if d.claim_amount is not None else None,
        created_at=d.created_at,
        next_due_at=d.next_due_at,
        overdue=item.overdue,
        deadlines=[
            DueOut(
                kind=due.kind.value,
                label=gettext(due.label),
                due=due.countdown.due,
                remaining_working_days=due.countdown.remaining_working_days,
                remaining_days=due.countdown.remaining_days,
                overdue=due.countdown.overdue,
            )
            for due in item.deadlines
        ],
    )


@documented(
    "The caller's work queue, paged, the next deadline first (court admin: the overdue list)",
    response=QueueOut,
    query={
        "page": "page number, from 1",
        "per_page": "at most 100",
        "status": "only this status of the queue",
    },
    tags=("queue",),
)
async def queue_json(request: web.Request) -> web.Response:
    caller = require_login(request)
    queue = await _queue(request, caller)
    out = QueueOut(
        role=queue.role.value,
        status=queue.status.value if queue.status else None,
        counts=queue.counts,
        overdue=queue.overdue,
        overdue_only=queue.overdue_only,
        items=[_item_out(item) for item in queue.page.items],
        **queue.page.meta(),
    )
    return web.json_response(out.model_dump(mode="json"))


@documented(
    "Mediators suggested for a dispute, best first, with the reasons (triage officer, admin)",
    response=SuggestionsOut,
    query={"dispute_id": "the dispute to find a mediator for"},
    tags=("roster",),
)
async def suggestions_json(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.VIEW_ROSTER)
    session = db(request)
    dispute = await _dispute_to_suggest_for(session, caller, request.query.get("dispute_id"))
    kind = gettext(type_label(dispute.dispute_type))
    found = await roster.suggestions(session, dispute)
    out = SuggestionsOut(
        dispute_id=dispute.id,
        items=[
            SuggestionOut(
                rank=rank,
                user_id=s.entry.user.id,
                mediator_id=s.entry.mediator.id,
                name=s.entry.user.name,
                organisation=s.entry.organisation.name,
                case_type_match=s.case_type_match,
                matched_specialities=list(s.matched_specialities),
                load=s.entry.load,
                max_active_cases=s.entry.capacity,
                reasons=[gettext(message, **params) for message, params in s.reasons(kind)],
            )
            for rank, s in enumerate(found, start=1)
        ],
    )
    return web.json_response(out.model_dump(mode="json"))


def setup(app: web.Application) -> None:
    """Add this module's routes."""
    r = app.router
    r.add_get("/queue", queue_page, name="queue")
    r.add_get("/roster", roster_page, name="roster")
    r.add_get("/api/v1/queue", queue_json, name="api_queue")
    r.add_get("/api/v1/roster/suggestions", suggestions_json, name="api_roster_suggestions")
