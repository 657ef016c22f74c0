"""Routes of the dispute workflow: online applications (网上申请调解).

JSON API under /api/v1/applications and the pages a party, an agent or a clerk
fills in.  Handlers parse the input, call ``server.services.applications`` and
map its errors: the API through the error middleware, the pages by showing the
form again with each message next to its field and what the user typed kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from server.auth.principal import Principal
from server.context import db, require_login, settings
from server.domain.calendar import WorkingCalendar
from server.domain.disputes import TYPE_LABELS, DisputeStatus
from server.domain.errors import N_, Conflict, DomainError, Invalid
from server.domain.roles import Role
from server.i18n import gettext
from server.pagination import page_args
from server.routes.api import body
from server.routes.common import form, path_id, redirect
from server.services import applications as apps
from server.services import disputes, documents
from server.services.workflow import calendar_for
from server.templating import render

SAVED = N_("The draft has been saved.")
UNCHANGED = N_("Nothing has changed since the draft was last saved.")
PARTY_FIELDS = ("name", "kind", "id_number", "phone", "service_address")
AGENT_FIELDS = ("name", "phone", "authority")
SIDES = ("respondents", "third_parties")
LISTED = re.compile(r"^(respondents|third_parties)\.(\d{1,3})\.")
TOP_LEVEL = frozenset(
    {
        "dispute_type",
        "claim_amount",
        "summary",
        "requests",
        "online_mediation_consent",
        "electronic_service_consent",
    }
)


def _calendar(request: web.Request) -> WorkingCalendar:
    return calendar_for(settings(request))


# the JSON API ------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PartyBody(_Body):
    name: str = ""
    kind: str = apps.NATURAL
    id_number: str = ""
    phone: str = ""
    service_address: str = ""


class AgentBody(_Body):
    name: str = ""
    phone: str = ""
    authority: str = "general"


class ApplicationBody(_Body):
    """A save: only the fields sent change; null clears a field."""

    dispute_type: str | None = None
    claim_amount: Decimal | None = None
    summary: str | None = None
    requests: str | None = None
    applicant: PartyBody | None = None
    respondents: list[PartyBody] | None = None
    third_parties: list[PartyBody] | None = None
    agent: AgentBody | None = None


class NewApplicationBody(ApplicationBody):
    court: str | None = None  # the court's code; needed only where there are several


class SubmitBody(_Body):
    online_mediation_consent: bool
    electronic_service_consent: bool


def _api_draft(data: ApplicationBody) -> apps.DraftIn:
    given = data.model_fields_set

    def text(name: str) -> str | None:
        value: str | None = getattr(data, name)
        return value if value is not None else ("" if name in given else None)

    def parties(items: list[PartyBody] | None, name: str) -> tuple[apps.PartyIn, ...] | None:
        if items is None:
            return () if name in given else None
        return tuple(apps.PartyIn(**item.model_dump()) for item in items)

    amount: str | Decimal | None = data.claim_amount
    if amount is None and "claim_amount" in given:
        amount = ""
    applicant = None
    if data.applicant is not None:
        applicant = apps.PartyIn(**data.applicant.model_dump())
    elif "applicant" in given:
        applicant = apps.PartyIn()
    agent = None
    if data.agent is not None:
        agent = apps.AgentIn(**data.agent.model_dump())
    elif "agent" in given:
        agent = apps.AgentIn()
    return apps.DraftIn(
        dispute_type=text("dispute_type"),
        claim_amount=amount,
        summary=text("summary"),
        requests=text("requests"),
        applicant=applicant,
        respondents=parties(data.respondents, "respondents"),
        third_parties=parties(data.third_parties, "third_parties"),
        agent=agent,
    )


async def api_create(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, NewApplicationBody)
    draft = await apps.create_draft(
        db(request), caller, _api_draft(data), court=data.court, calendar=_calendar(request)
    )
    return web.json_response(apps.application_json(draft), status=201)


async def api_list(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    result = await apps.list_mine(
        db(request), caller, page, per_page, request.query.get("status", "draft")
    )
    return web.json_response(
        {"items": [disputes.summary(d) for d in result.items], **result.meta()}
    )


async def api_get(request: web.Request) -> web.Response:
    caller = require_login(request)
    draft = await apps.get_draft(db(request), caller, path_id(request))
    return web.json_response(apps.application_json(draft))


async def api_save(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    data = await body(request, ApplicationBody)
    draft = await apps.save_draft(
        db(request), caller, dispute_id, _api_draft(data), calendar=_calendar(request)
    )
    return web.json_response(apps.application_json(draft))


async def api_submit(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    data = await body(request, SubmitBody)
    done = await apps.submit(
        db(request),
        caller,
        dispute_id,
        apps.ConsentsIn(data.online_mediation_consent, data.electronic_service_consent),
        calendar=_calendar(request),
    )
    return web.json_response(apps.submitted_json(done))


# pages ---------------------------------------------------------------------------------


def _party_values(party: apps.PartyIn) -> dict[str, str]:
    return {name: str(getattr(party, name)) for name in PARTY_FIELDS}


def _stored_values(app: apps.Application) -> dict[str, Any]:
    agent = app.agent or apps.AgentIn()
    return {
        "court": "",
        "dispute_type": app.dispute_type,
        "claim_amount": "" if app.claim_amount is None else str(app.claim_amount),
        "summary": app.summary,
        "requests": app.requests,
        "applicant": _party_values(app.applicant),
        "respondents": [_party_values(p) for p in app.respondents],
        "third_parties": [_party_values(p) for p in app.third_parties],
        "agent": {name: str(getattr(agent, name)) for name in AGENT_FIELDS},
        "online_mediation_consent": False,
        "electronic_service_consent": False,
    }


def _form_values(raw: Mapping[str, str]) -> dict[str, Any]:
    """What the user typed, as the form shows it again; empty party blocks dropped."""

    def party(prefix: str) -> dict[str, str]:
        values = {name: raw.get(f"{prefix}.{name}", "") for name in PARTY_FIELDS}
        values["kind"] = values["kind"] or apps.NATURAL
        return values

    listed: dict[str, list[dict[str, str]]] = {}
    for side in SIDES:
        indices = sorted(
            {
                int(found.group(2))
                for key in raw
                if (found := LISTED.match(key)) and found.group(1) == side
            }
        )
        entries = [party(f"{side}.{i}") for i in indices]
        listed[side] = [e for e in entries if not apps.PartyIn(**e).is_blank()]
    agent = {name: raw.get(f"agent.{name}", "") for name in AGENT_FIELDS}
    agent["authority"] = agent["authority"] or "general"
    return {
        "court": raw.get("court", ""),
        "dispute_type": raw.get("dispute_type", ""),
        "claim_amount": raw.get("claim_amount", ""),
        "summary": raw.get("summary", ""),
        "requests": raw.get("requests", ""),
        "applicant": party("applicant"),
        "respondents": listed["respondents"],
        "third_parties": listed["third_parties"],
        "agent": agent,
        "online_mediation_consent": raw.get("online_mediation_consent") == "yes",
        "electronic_service_consent": raw.get("electronic_service_consent") == "yes",
    }


def _form_draft(values: Mapping[str, Any]) -> apps.DraftIn:
    return apps.DraftIn(
        dispute_type=values["dispute_type"],
        claim_amount=values["claim_amount"],
        summary=values["summary"],
        requests=values["requests"],
        applicant=apps.PartyIn(**values["applicant"]),
        respondents=tuple(apps.PartyIn(**p) for p in values["respondents"]),
        third_parties=tuple(apps.PartyIn(**p) for p in values["third_parties"]),
        agent=apps.AgentIn(**values["agent"]),
    )


def _consents(values: Mapping[str, Any]) -> apps.ConsentsIn:
    return apps.ConsentsIn(
        online_mediation=bool(values["online_mediation_consent"]),
        electronic_service=bool(values["electronic_service_consent"]),
    )


def _errors(exc: DomainError) -> dict[str, str]:
    """Each message by the field it belongs to ("" for the form as a whole)."""
    if isinstance(exc, apps.ApplicationInvalid):
        return {e.field: gettext(e.message, **e.params) for e in exc.errors}
    message = gettext(exc.message, **exc.localised_params(gettext))
    return {getattr(exc, "field", None) or "": message}


def _status(exc: DomainError) -> int:
    return 409 if isinstance(exc, Conflict) else 400


def _shown(name: str, values: Mapping[str, Any], with_court: bool) -> bool:
    """Whether the form has an input this error can stand next to."""
    if name in TOP_LEVEL or (name == "court" and with_court):
        return True
    prefix, _, rest = name.partition(".")
    if prefix == "applicant":
        return rest in PARTY_FIELDS
    if prefix == "agent":
        return rest in AGENT_FIELDS
    if prefix in SIDES:
        index, _, field = rest.partition(".")
        return index.isdigit() and int(index) <= len(values[prefix]) and field in PARTY_FIELDS
    return False


async def _page(
    request: web.Request,
    caller: Principal,
    *,
    draft: apps.Draft | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> web.Response:
    session = db(request)
    errors = errors or {}
    courts = [] if draft is not None or caller.role is Role.CLERK else await apps.courts(session)
    with_court = len(courts) > 1
    documents_list = (
        await documents.list_documents(session, caller, draft.dispute.id) if draft else []
    )
    mine = await apps.list_mine(session, caller, 1, 10)
    shown = {
        **values,
        # one empty block more, to name another party without script
        "respondents": [*values["respondents"], dict.fromkeys(PARTY_FIELDS, "")],
        "third_parties": [*values["third_parties"], dict.fromkeys(PARTY_FIELDS, "")],
    }
    return render(
        request,
        "application_form.html",
        {
            "draft": draft,
            "values": shown,
            "errors": errors,
            "top_errors": [m for f, m in errors.items() if not _shown(f, values, with_court)],
            "notice": notice,
            "courts": courts if with_court else [],
            "types": list(TYPE_LABELS.items()),
            "kinds": [(apps.NATURAL, N_("Natural person")), (apps.LEGAL, N_("Legal person"))],
            "authorities": [
                ("general", N_("General authority")),
                ("special", N_("Special authority")),
            ],
            "walk_in": caller.role is Role.CLERK,
            "third_open": bool(values["third_parties"])
            or any(name.startswith("third_parties") for name in errors),
            "action": f"/applications/{draft.dispute.id}" if draft else "/applications",
            "documents": documents_list,
            "drafts": [d for d in mine.items if draft is None or d.id != draft.dispute.id],
            "drafts_total": mine.total,
            "evidence_max_mb": settings(request).evidence_max_mb,
        },
        status=status,
    )


async def new_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    first = await apps.blank(db(request), caller)
    return await _page(request, caller, draft=None, values=_stored_values(first))


async def _submit_page(
    request: web.Request, caller: Principal, dispute_id: int, values: dict[str, Any]
) -> web.Response:
    session = db(request)
    try:
        async with session.begin_nested():
            await apps.submit(
                session, caller, dispute_id, _consents(values), calendar=_calendar(request)
            )
    except (Invalid, Conflict) as exc:
        # the draft stays saved; the form says what is still missing
        draft = await apps.get_draft(session, caller, dispute_id)
        return await _page(
            request, caller, draft=draft, values=values, errors=_errors(exc), status=_status(exc)
        )
    return redirect(f"/disputes/{dispute_id}")


async def create_post(request: web.Request) -> web.Response:
    caller = require_login(request)
    raw = await form(request)
    values = _form_values(raw)
    session = db(request)
    try:
        # a savepoint, so that a refused form leaves nothing behind and is shown again
        async with session.begin_nested():
            draft = await apps.create_draft(
                session,
                caller,
                _form_draft(values),
                court=raw.get("court") or None,
                calendar=_calendar(request),
            )
    except (Invalid, Conflict) as exc:
        return await _page(
            request, caller, draft=None, values=values, errors=_errors(exc), status=_status(exc)
        )
    if raw.get("action") == "submit":
        return await _submit_page(request, caller, draft.dispute.id, values)
    return redirect(f"/applications/{draft.dispute.id}/edit?saved=1")


async def edit_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    draft = await apps.get_draft(db(request), caller, path_id(request))
    if draft.dispute.status != DisputeStatus.DRAFT.value:
        return redirect(f"/disputes/{draft.dispute.id}")
    saved = request.query.get("saved")
    notice = gettext(SAVED) if saved == "1" else gettext(UNCHANGED) if saved == "0" else ""
    return await _page(
        request, caller, draft=draft, values=_stored_values(draft.application), notice=notice
    )


async def edit_post(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    raw = await form(request)
    values = _form_values(raw)
    session = db(request)
    try:
        async with session.begin_nested():
            draft = await apps.save_draft(
                session,
                caller,
                dispute_id,
                _form_draft(values),
                calendar=_calendar(request),
                allow_unchanged=True,
            )
    except (Invalid, Conflict) as exc:
        current = await apps.get_draft(session, caller, dispute_id)
        return await _page(
            request, caller, draft=current, values=values, errors=_errors(exc), status=_status(exc)
        )
    if raw.get("action") == "submit":
        return await _submit_page(request, caller, dispute_id, values)
    return redirect(f"/applications/{dispute_id}/edit?saved={1 if draft.changed else 0}")


async def list_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    result = await apps.list_mine(db(request), caller, page, per_page)
    return render(request, "application_list.html", {"page": result})


def setup(app: web.Application) -> None:
    """Add this module's routes."""
    r = app.router
    r.add_post("/api/v1/applications", api_create, name="api_applications")
    r.add_get("/api/v1/applications", api_list)
    r.add_get("/api/v1/applications/{id}", api_get, name="api_application")
    r.add_put("/api/v1/applications/{id}", api_save)
    r.add_post("/api/v1/applications/{id}/submit", api_submit, name="api_application_submit")
    r.add_get("/applications", list_page, name="applications")
    r.add_post("/applications", create_post)
    r.add_get("/applications/new", new_page, name="application_new")
    r.add_get("/applications/{id}/edit", edit_page, name="application_edit")
    r.add_post("/applications/{id}", edit_post, name="application_save")
