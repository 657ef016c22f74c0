"""The court admin keeps the mediator roster: pages under /admin/roster and the JSON
API under /api/v1/roster/organisations and /api/v1/roster/mediators."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ConfigDict

from server.auth import access
from server.auth.principal import Principal
from server.context import db, require_login
from server.domain.disputes import DisputeType
from server.domain.errors import N_, DomainError, Forbidden, Invalid
from server.domain.ids import parse_id
from server.domain.roles import Permission
from server.i18n import gettext
from server.openapi import documented
from server.pagination import page_args
from server.routes.api import body
from server.routes.common import path_id, redirect
from server.services import roster, roster_admin
from server.services.roster_admin import (
    MediatorChange,
    MediatorProfile,
    NewMediatorAccount,
    OrganisationChange,
)
from server.templating import render

PER_PAGE = 20


def _court(request: web.Request) -> tuple[Principal, int]:
    """The caller, who must keep the roster, and their court."""
    caller = require_login(request)
    access.require(caller, Permission.MANAGE_ROSTER)
    if caller.court_id is None:
        raise Forbidden(N_("Your account belongs to no court."))
    return caller, caller.court_id


def _active_choice(value: str | None, default: str) -> bool | None:
    """``yes``/``no``/``all`` from a query string, as a filter on ``active``."""
    choice = value or default
    if choice not in ("yes", "no", "all"):
        raise Invalid(N_("This field is not valid: %(field)s."), field="active")
    return {"yes": True, "no": False, "all": None}[choice]


def _mediator_filter(court_id: int, query: Mapping[str, str]) -> roster.RosterFilter:
    active = _active_choice(query.get("active"), "all")
    organisation = query.get("organisation", "")
    case_type = query.get("case_type") or None
    if case_type is not None:
        roster_admin.clean_case_types([case_type])
    return roster.RosterFilter(
        court_id=court_id,
        active_only=active is True,
        inactive_only=active is False,
        organisation_id=parse_id(organisation, "organisation") if organisation else None,
        case_type=case_type,
        name=(query.get("q") or "").strip() or None,
    )


def _linker(path: str, query: Mapping[str, str]) -> Callable[..., str]:
    def link(**changes: object) -> str:
        params = {key: value for key, value in query.items() if value and key != "saved"}
        for key, value in changes.items():
            if value is None or value == "":
                params.pop(key, None)
            else:
                params[key] = str(value)
        return f"{path}?{urlencode(params)}" if params else path

    return link


def _message(exc: DomainError) -> str:
    return gettext(exc.message, **exc.localised_params(gettext))


def _optional_id(value: str | None, field: str) -> int | None:
    return parse_id(value, field) if value else None


# pages -----------------------------------------------------------------------------------

ORGANISATION_FIELDS = ("name", "kind")
MEDIATOR_FIELDS = (
    "user_id",
    "name",
    "username",
    "phone",
    "email",
    "organisation_id",
    "specialities",
    "languages",
    "max_active_cases",
)


async def _roster_page(
    request: web.Request,
    *,
    error: str = "",
    error_form: str = "",
    status: int = 200,
    values: Mapping[str, str] | None = None,
    case_types: list[str] | None = None,
) -> web.Response:
    _, court_id = _court(request)
    session = db(request)
    query = request.query
    page, per_page = page_args(query, default_per_page=PER_PAGE)
    org_page, org_per_page = page_args(
        {"page": query.get("org_page", "1"), "per_page": query.get("org_per_page", PER_PAGE)}
    )
    organisations = await roster_admin.list_organisations(session, court_id, org_page, org_per_page)
    mediators = await roster_admin.list_mediators(
        session, _mediator_filter(court_id, query), page, per_page
    )
    active_organisations = [o for o in await roster.organisations(session, court_id) if o.active]
    defaults = dict.fromkeys((*ORGANISATION_FIELDS, *MEDIATOR_FIELDS), "") | {
        "kind": "people",
        "languages": "zh",
        "max_active_cases": str(roster_admin.DEFAULT_MAX_CASES),
    }
    return render(
        request,
        "admin_roster.html",
        {
            "organisations": organisations,
            "mediators": mediators,
            "active_organisations": active_organisations,
            "candidates": await roster_admin.candidates(session, court_id),
            "kinds": roster_admin.ORGANISATION_KINDS,
            "case_types": list(DisputeType),
            "chosen_case_types": case_types or [],
            "error": error,
            "error_form": error_form,
            "saved": bool(query.get("saved")),
            "values": defaults | dict(values or {}),
            "filters": {
                "q": query.get("q", ""),
                "active": query.get("active", "all"),
                "organisation": query.get("organisation", ""),
            },
            "link": _linker("/admin/roster", query),
        },
        status=status,
    )


async def roster_get(request: web.Request) -> web.Response:
    return await _roster_page(request)


async def _apply_roster_form(
    request: web.Request, caller: Principal, court_id: int, data: MultiDictProxy[Any]
) -> str:
    """Carry out one of the page's forms; the address to go to afterwards."""
    session = db(request)
    kind = str(data.get("form", ""))
    text = {key: str(value).strip() for key, value in data.items() if isinstance(value, str)}
    if kind == "organisation":
        await roster_admin.create_organisation(
            session, court_id, text.get("name", ""), text.get("kind", ""), caller.actor()
        )
        return "/admin/roster?saved=1"
    if kind == "organisation_update":
        await roster_admin.update_organisation(
            session,
            court_id,
            parse_id(text.get("id", ""), "id"),
            OrganisationChange(
                name=text.get("name"), kind=text.get("kind"), active=bool(text.get("active"))
            ),
            caller.actor(),
        )
        return "/admin/roster?saved=1"
    if kind == "mediator":
        user_id = _optional_id(text.get("user_id"), "user_id")
        account = None
        if user_id is None:
            account = NewMediatorAccount(
                name=text.get("name", ""),
                username=text.get("username") or None,
                phone=text.get("phone") or None,
                email=text.get("email") or None,
                password=text.get("password") or None,
            )
        entry = await roster_admin.add_mediator(
            session,
            court_id,
            MediatorProfile(
                organisation_id=parse_id(text.get("organisation_id", ""), "organisation_id")
                if text.get("organisation_id")
                else 0,
                specialities=roster_admin.split_list(text.get("specialities")),
                case_types=[str(v) for v in data.getall("case_types", [])],
                languages=roster_admin.split_list(text.get("languages")),
                max_active_cases=text.get("max_active_cases", ""),
            ),
            caller.actor(),
            user_id=user_id,
            account=account,
        )
        return f"/admin/roster/mediators/{entry.mediator.id}?saved=1"
    raise Invalid(N_("This field is not valid: %(field)s."), field="form")


async def roster_post(request: web.Request) -> web.Response:
    caller, court_id = _court(request)
    data = await request.post()
    try:
        # a savepoint, so that a refused form leaves nothing behind and can be shown again
        async with db(request).begin_nested():
            target = await _apply_roster_form(request, caller, court_id, data)
    except DomainError as exc:
        form_name = str(data.get("form", ""))
        kept = {
            key: str(value)
            for key, value in data.items()
            if isinstance(value, str) and key not in ("password", "_csrf")
        }
        return await _roster_page(
            request,
            error=_message(exc),
            error_form=form_name,
            status=400,
            values=kept if form_name != "organisation_update" else None,
            case_types=[str(v) for v in data.getall("case_types", [])],
        )
    return redirect(target)


async def _mediator_page(
    request: web.Request,
    mediator_id: int,
    *,
    error: str = "",
    status: int = 200,
    values: Mapping[str, Any] | None = None,
) -> web.Response:
    _, court_id = _court(request)
    session = db(request)
    entry = await roster_admin.mediator_for(session, court_id, mediator_id)
    mediator = entry.mediator
    current: dict[str, Any] = {
        "organisation_id": str(mediator.organisation_id),
        "specialities": "、".join(mediator.specialities or []),
        "case_types": list(mediator.case_types or []),
        "languages": ", ".join(mediator.languages or []),
        "max_active_cases": str(mediator.max_active_cases),
        "active": mediator.active,
    }
    organisations = [
        o
        for o in await roster.organisations(session, court_id)
        if o.active or o.id == mediator.organisation_id
    ]
    return render(
        request,
        "admin_mediator.html",
        {
            "entry": entry,
            "organisations": organisations,
            "case_types": list(DisputeType),
            "values": current | dict(values or {}),
            "error": error,
            "saved": bool(request.query.get("saved")),
        },
        status=status,
    )


async def mediator_get(request: web.Request) -> web.Response:
    _court(request)
    return await _mediator_page(request, path_id(request))


def _form_change(data: MultiDictProxy[Any]) -> MediatorChange:
    organisation = str(data.get("organisation_id", "")).strip()
    return MediatorChange(
        organisation_id=parse_id(organisation, "organisation_id") if organisation else None,
        specialities=roster_admin.split_list(str(data.get("specialities", ""))),
        case_types=[str(v) for v in data.getall("case_types", [])],
        languages=roster_admin.split_list(str(data.get("languages", ""))),
        max_active_cases=str(data.get("max_active_cases", "")),
        active=bool(data.get("active")),
    )


async def mediator_post(request: web.Request) -> web.Response:
    caller, court_id = _court(request)
    mediator_id = path_id(request)
    data = await request.post()
    try:
        async with db(request).begin_nested():
            await roster_admin.update_mediator(
                db(request), court_id, mediator_id, _form_change(data), caller.actor()
            )
    except DomainError as exc:
        return await _mediator_page(
            request,
            mediator_id,
            error=_message(exc),
            status=400,
            values={
                "organisation_id": str(data.get("organisation_id", "")),
                "specialities": str(data.get("specialities", "")),
                "case_types": [str(v) for v in data.getall("case_types", [])],
                "languages": str(data.get("languages", "")),
                "max_active_cases": str(data.get("max_active_cases", "")),
                "active": bool(data.get("active")),
            },
        )
    return redirect(f"/admin/roster/mediators/{mediator_id}?saved=1")


# JSON ------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrganisationIn(_Body):
    name: str
    kind: str = "people"


class OrganisationPatch(_Body):
    name: str | None = None
    kind: str | None = None
    active: bool | None = None


class OrganisationOut(BaseModel):
    id: int
    name: str
    kind: str
    kind_label: str
    active: bool
    mediators: int | None = None


class OrganisationsOut(BaseModel):
    items: list[OrganisationOut]
    page: int
    per_page: int
    total: int
    pages: int


class AccountIn(_Body):
    name: str
    username: str | None = None
    phone: str | None = None
    email: str | None = None
    password: str | None = None


class MediatorIn(_Body):
    user_id: int | None = None
    account: AccountIn | None = None
    organisation_id: int
    specialities: list[str] = []
    case_types: list[str] = []
    languages: list[str] = ["zh"]
    max_active_cases: int = roster_admin.DEFAULT_MAX_CASES


class MediatorPatch(_Body):
    organisation_id: int | None = None
    specialities: list[str] | None = None
    case_types: list[str] | None = None
    languages: list[str] | None = None
    max_active_cases: int | None = None
    active: bool | None = None


class MediatorOut(BaseModel):
    id: int
    user_id: int
    name: str
    username: str | None
    account_active: bool
    organisation_id: int
    organisation: str
    specialities: list[str]
    case_types: list[str]
    languages: list[str]
    max_active_cases: int
    active: bool
    load: int


class MediatorsOut(BaseModel):
    items: list[MediatorOut]
    page: int
    per_page: int
    total: int
    pages: int


def _organisation_out(organisation: Any, mediators: int | None = None) -> OrganisationOut:
    return OrganisationOut(
        **roster_admin.organisation_json(organisation, mediators),
        kind_label=gettext(roster_admin.kind_label(organisation.kind)),
    )


def _mediator_out(entry: roster.RosterEntry) -> MediatorOut:
    return MediatorOut.model_validate(roster_admin.mediator_json(entry))


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


@documented(
    "Mediation organisations of the court, by name, paged (admins)",
    response=OrganisationsOut,
    query={
        "active": "yes, no or all (the default)",
        "page": "page number, from 1",
        "per_page": "at most 100",
    },
    tags=("roster",),
)
async def organisations_json(request: web.Request) -> web.Response:
    _, court_id = _court(request)
    page, per_page = page_args(request.query, default_per_page=PER_PAGE)
    found = await roster_admin.list_organisations(
        db(request),
        court_id,
        page,
        per_page,
        active=_active_choice(request.query.get("active"), "all"),
    )
    return _json(
        OrganisationsOut(
            items=[_organisation_out(o, int(n or 0)) for o, n in found.items], **found.meta()
        )
    )


@documented(
    "Add a mediation organisation to the roster (admins)",
    body=OrganisationIn,
    response=OrganisationOut,
    status=201,
    tags=("roster",),
)
async def organisation_create_json(request: web.Request) -> web.Response:
    caller, court_id = _court(request)
    data = await body(request, OrganisationIn)
    organisation = await roster_admin.create_organisation(
        db(request), court_id, data.name, data.kind, caller.actor()
    )
    return _json(_organisation_out(organisation, 0), status=201)


@documented(
    "Rename, re-classify, deactivate or reactivate a mediation organisation (admins)",
    body=OrganisationPatch,
    response=OrganisationOut,
    tags=("roster",),
)
async def organisation_update_json(request: web.Request) -> web.Response:
    caller, court_id = _court(request)
    organisation_id = path_id(request)
    data = await body(request, OrganisationPatch)
    organisation = await roster_admin.update_organisation(
        db(request),
        court_id,
        organisation_id,
        OrganisationChange(name=data.name, kind=data.kind, active=data.active),
        caller.actor(),
    )
    return _json(_organisation_out(organisation))


@documented(
    "The court's mediators, inactive ones included, with their loads, paged (admins)",
    response=MediatorsOut,
    query={
        "q": "part of the mediator's name",
        "organisation": "organisation id",
        "case_type": "dispute type the mediator takes",
        "active": "yes, no or all (the default)",
        "page": "page number, from 1",
        "per_page": "at most 100",
    },
    tags=("roster",),
)
async def mediators_json(request: web.Request) -> web.Response:
    _, court_id = _court(request)
    page, per_page = page_args(request.query, default_per_page=PER_PAGE)
    found = await roster_admin.list_mediators(
        db(request), _mediator_filter(court_id, request.query), page, per_page
    )
    return _json(MediatorsOut(items=[_mediator_out(e) for e in found.items], **found.meta()))


@documented("One mediator of the court's roster (admins)", response=MediatorOut, tags=("roster",))
async def mediator_json(request: web.Request) -> web.Response:
    _, court_id = _court(request)
    entry = await roster_admin.mediator_for(db(request), court_id, path_id(request))
    return _json(_mediator_out(entry))


@documented(
    "Put a mediator on the roster: an existing mediator account (user_id) or a new one "
    "(account) (admins)",
    body=MediatorIn,
    response=MediatorOut,
    status=201,
    tags=("roster",),
)
async def mediator_create_json(request: web.Request) -> web.Response:
    caller, court_id = _court(request)
    data = await body(request, MediatorIn)
    account = NewMediatorAccount(**data.account.model_dump()) if data.account is not None else None
    entry = await roster_admin.add_mediator(
        db(request),
        court_id,
        MediatorProfile(
            organisation_id=data.organisation_id,
            specialities=data.specialities,
            case_types=data.case_types,
            languages=data.languages,
            max_active_cases=data.max_active_cases,
        ),
        caller.actor(),
        user_id=data.user_id,
        account=account,
    )
    return _json(_mediator_out(entry), status=201)


@documented(
    "Change a mediator's organisation, specialities, case types, languages, maximum active "
    "cases or active flag (admins); deactivating keeps their current disputes",
    body=MediatorPatch,
    response=MediatorOut,
    tags=("roster",),
)
async def mediator_update_json(request: web.Request) -> web.Response:
    caller, court_id = _court(request)
    mediator_id = path_id(request)
    data = await body(request, MediatorPatch)
    entry = await roster_admin.update_mediator(
        db(request),
        court_id,
        mediator_id,
        MediatorChange(
            organisation_id=data.organisation_id,
            specialities=data.specialities,
            case_types=data.case_types,
            languages=data.languages,
            max_active_cases=data.max_active_cases,
            active=data.active,
        ),
        caller.actor(),
    )
    return _json(_mediator_out(entry))


def setup(app: web.Application) -> None:
    """Add this module's routes."""
    r = app.router
    r.add_get("/admin/roster", roster_get, name="admin_roster")
    r.add_post("/admin/roster", roster_post)
    r.add_get("/admin/roster/mediators/{id}", mediator_get, name="admin_mediator")
    r.add_post("/admin/roster/mediators/{id}", mediator_post)
    r.add_get("/api/v1/roster/organisations", organisations_json, name="api_roster_organisations")
    r.add_post("/api/v1/roster/organisations", organisation_create_json)
    r.add_patch(
        "/api/v1/roster/organisations/{id}",
        organisation_update_json,
        name="api_roster_organisation",
    )
    r.add_get("/api/v1/roster/mediators", mediators_json, name="api_roster_mediators")
    r.add_post("/api/v1/roster/mediators", mediator_create_json)
    r.add_get("/api/v1/roster/mediators/{id}", mediator_json, name="api_roster_mediator")
    r.add_patch("/api/v1/roster/mediators/{id}", mediator_update_json)
