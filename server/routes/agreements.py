"""Mediation agreements: the drafting page of a dispute (/disputes/{id}/agreement), its JSON
API under /api/v1/disputes/{id}/agreement (state, start, save, re-fill, put up for signing,
a version's PDF), and the court admin's agreement templates (/admin/agreement-templates and
/api/v1/admin/agreement-templates)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.context import SPOOL, STORE, db, require_login, settings
from server.db.models import AgreementVersion
from server.domain.disputes import type_label
from server.domain.errors import N_
from server.domain.ids import parse_id
from server.i18n import gettext
from server.openapi import documented
from server.routes.api import body
from server.routes.common import path_id
from server.routes.documents import check_in_store
from server.services import agreement_templates as templates
from server.services import agreements, documents
from server.services.agreements import AgreementState, Terms
from server.services.workflow import calendar_for
from server.templating import render

TAGS = ("agreements",)
STATE_LABELS = {
    "drafting": N_("Being drafted"),
    "signing": N_("Out for signing"),
    "signed": N_("Signed by everyone"),
    "refused": N_("A signer refused to sign"),
}
COSTS_CHOICES = (
    ("", N_("Not stated")),
    ("applicant", N_("The applicant")),
    ("respondent", N_("The respondent")),
    ("shared", N_("Both sides, in equal shares")),
    ("waived", N_("No costs are charged")),
)
ADMIN_TAGS = ("agreement templates",)


# JSON shapes ------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SaveIn(_Body):
    text: str = Field(max_length=agreements.MAX_TEXT * 2, description="the agreement's text")
    terms: Terms = Field(default_factory=Terms, description="the structured terms")
    note: str = Field(default="", max_length=1000, description="what changed")
    base_version: int = Field(description="the version the text was edited from")


class RefillIn(_Body):
    base_version: int = Field(description="the version shown when re-filling was asked for")
    terms: Terms | None = Field(
        default=None, description="the terms to fill in; the current version's if left out"
    )
    note: str = Field(default="", max_length=1000)


class SigningIn(_Body):
    base_version: int | None = Field(default=None, description="the version the mediator read")


class VersionSummaryOut(BaseModel):
    version: int
    sha256: str = Field(description="of the canonical JSON of {text, terms}")
    note: str
    author: str
    created_at: str
    pdf_sha256: str = Field(description="of the PDF put up for signing; empty for a draft")
    pdf_url: str


class VersionOut(VersionSummaryOut):
    text: str
    terms: dict[str, Any]


class SigningOut(BaseModel):
    version: int
    pdf_sha256: str
    pdf_url: str
    sign_url: str


class AgreementOut(BaseModel):
    dispute_id: int
    state: str = Field(description="none, drafting, signing, signed or refused")
    number: str | None
    current_version: int
    signing_version: int | None
    current: VersionOut | None
    versions: list[VersionSummaryOut] = Field(description="newest first; staff only")
    signing: SigningOut | None
    may_edit: bool
    may_start: bool


class TemplateIn(_Body):
    body: str = Field(max_length=templates.MAX_BODY * 2, description="Jinja2 (sandboxed)")
    base_version: int | None = Field(
        default=None, description="the court's version edited (0: the platform's)"
    )


class PreviewIn(_Body):
    body: str = Field(max_length=templates.MAX_BODY * 2)


class PreviewOut(BaseModel):
    title: str
    text: str


class TemplateOut(BaseModel):
    dispute_type: str
    type_label: str
    source: str = Field(description="platform (the default) or court (the court's own)")
    title: str
    version: int = Field(description="the court's version; 0 for the platform's")
    sha256: str
    updated_at: str | None
    updated_by: str


class TemplateDetailOut(TemplateOut):
    body: str
    default_body: str


class TemplatesOut(BaseModel):
    items: list[TemplateOut]


def _pdf_url(dispute_id: int, version: int) -> str:
    return f"/api/v1/disputes/{dispute_id}/agreement/versions/{version}/pdf"


def _summary(dispute_id: int, version: AgreementVersion, author: str) -> dict[str, Any]:
    return {
        "version": version.version,
        "sha256": version.sha256,
        "note": version.note,
        "author": author,
        "created_at": version.created_at.isoformat(),
        "pdf_sha256": version.pdf_sha256,
        "pdf_url": _pdf_url(dispute_id, version.version),
    }


def _version_json(dispute_id: int, version: AgreementVersion, author: str) -> dict[str, Any]:
    return {
        **_summary(dispute_id, version, author),
        "text": version.text,
        "terms": agreements.terms_of(version),
    }


def state_json(found: AgreementState) -> dict[str, Any]:
    dispute_id = found.dispute.id
    agreement = found.agreement
    signing = found.signing
    return {
        "dispute_id": dispute_id,
        "state": agreement.state if agreement else "none",
        "number": agreement.number if agreement else None,
        "current_version": agreement.current_version if agreement else 0,
        "signing_version": agreement.signing_version if agreement else None,
        "current": (
            _version_json(dispute_id, found.current, found.authors.get(found.current.version, ""))
            if found.current is not None
            else None
        ),
        "versions": [_summary(dispute_id, info.version, info.author) for info in found.versions],
        "signing": (
            {
                "version": signing.version,
                "pdf_sha256": signing.pdf_sha256,
                "pdf_url": _pdf_url(dispute_id, signing.version),
                "sign_url": f"/disputes/{dispute_id}/agreement/sign",
            }
            if signing is not None
            else None
        ),
        "may_edit": found.may_edit,
        "may_start": found.may_start,
    }


async def _state_response(request: web.Request, dispute_id: int, status: int = 200) -> web.Response:
    found = await agreements.state(db(request), require_login(request), dispute_id)
    return web.json_response(state_json(found), status=status)


# the drafting page --------------------------------------------------------------------------------


async def agreement_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    session = db(request)
    found = await agreements.state(session, caller, dispute_id)
    shown = found.current
    asked = request.query.get("version")
    if asked:
        _, shown = await agreements.readable_version(
            session, caller, dispute_id, parse_id(asked, "version")
        )
    return render(
        request,
        "agreement.html",
        {
            "dispute": found.dispute,
            "found": found,
            "data": state_json(found),
            "shown": shown,
            "shown_terms": agreements.terms_of(shown) if shown is not None else {},
            "shown_author": found.authors.get(shown.version, "") if shown is not None else "",
            "editing": found.may_edit and shown is not None and not asked,
            "parties": found.parties,
            "costs_choices": COSTS_CHOICES,
            "state_labels": STATE_LABELS,
        },
    )


# the API ------------------------------------------------------------------------------------------


@documented(
    "A dispute's agreement: its state, current text and versions", response=AgreementOut, tags=TAGS
)
async def agreement_get(request: web.Request) -> web.Response:
    return await _state_response(request, path_id(request))


@documented(
    "Start the agreement from the court's template (the dispute's mediator)",
    response=AgreementOut,
    status=201,
    tags=TAGS,
)
async def agreement_start(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    await agreements.start(db(request), caller, dispute_id)
    return await _state_response(request, dispute_id, status=201)


@documented(
    "Save a new version of the text and terms; 409 if someone saved since base_version",
    body=SaveIn,
    response=AgreementOut,
    tags=TAGS,
)
async def agreement_save(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    data = await body(request, SaveIn)
    await agreements.save(
        db(request),
        caller,
        dispute_id,
        data.text,
        data.terms.model_dump(),
        data.note,
        data.base_version,
    )
    return await _state_response(request, dispute_id)


@documented(
    "Fill the template again with the terms, as a new version (the mediator asks for it)",
    body=RefillIn,
    response=AgreementOut,
    tags=TAGS,
)
async def agreement_refill(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    data = await body(request, RefillIn)
    await agreements.refill(
        db(request),
        caller,
        dispute_id,
        data.base_version,
        data.terms.model_dump() if data.terms is not None else None,
        data.note,
    )
    return await _state_response(request, dispute_id)


@documented(
    "Put the current version up for signing: its PDF is kept with its SHA-256",
    body=SigningIn,
    response=AgreementOut,
    tags=TAGS,
)
async def agreement_signing(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    data = await body(request, SigningIn)
    await agreements.put_up_for_signing(
        db(request),
        request.app[SPOOL],
        caller,
        dispute_id,
        base_version=data.base_version,
        calendar=calendar_for(settings(request)),
    )
    return await _state_response(request, dispute_id)


@documented(
    "One version of a dispute's agreement: its text, terms and hashes",
    response=VersionOut,
    tags=TAGS,
)
async def agreement_version(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    session = db(request)
    _, version = await agreements.readable_version(
        session, caller, dispute_id, path_id(request, "version")
    )
    found = await agreements.state(session, caller, dispute_id)
    return web.json_response(
        _version_json(dispute_id, version, found.authors.get(version.version, ""))
    )


async def agreement_pdf(request: web.Request) -> web.StreamResponse:
    """A version's PDF: made now for a draft, the kept one once put up for signing."""
    caller = require_login(request)
    dispute_id = path_id(request)
    found = await agreements.version_pdf(
        db(request), caller, dispute_id, path_id(request, "version")
    )
    name = "".join(c for c in found.agreement.number if c not in '\\/:*?"<>|')
    headers = {
        "Content-Disposition": (
            f"inline; filename*=UTF-8''{quote(f'{name} v{found.version.version}.pdf')}"
        )
    }
    if found.data is not None:
        return web.Response(body=found.data, content_type="application/pdf", headers=headers)
    stored = found.stored
    assert stored is not None
    await check_in_store(request, stored, dispute_id)
    response = web.StreamResponse(headers=headers)
    response.content_type = "application/pdf"
    response.content_length = stored.size
    response.headers["ETag"] = f'"{stored.sha256}"'
    response.headers["X-Content-SHA256"] = stored.sha256
    await response.prepare(request)
    async for chunk in documents.open_bytes(request.app[STORE], request.app[SPOOL], stored, None):
        await response.write(chunk)
    await response.write_eof()
    return response


# the court admin's templates ----------------------------------------------------------------------


def _template_json(found: templates.Resolved) -> dict[str, Any]:
    return {
        "dispute_type": found.dispute_type,
        "type_label": gettext(type_label(found.dispute_type)),
        "source": found.source,
        "title": found.title,
        "version": found.version,
        "sha256": found.sha256,
        "updated_at": found.updated_at.isoformat() if found.updated_at else None,
        "updated_by": found.updated_by,
    }


def _template_detail(found: templates.Resolved) -> dict[str, Any]:
    return {
        **_template_json(found),
        "body": found.body,
        "default_body": templates.default_for(found.dispute_type).body,
    }


async def templates_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    session = db(request)
    listed = await templates.list_templates(session, caller)
    chosen = request.query.get("type", "")
    editing = await templates.template_for(session, caller, chosen) if chosen else None
    return render(
        request,
        "agreement_templates_admin.html",
        {
            "templates": listed,
            "editing": editing,
            "default_body": templates.default_for(chosen).body if editing else "",
        },
    )


@documented(
    "Every dispute type with the agreement template in force for the court (admins)",
    response=TemplatesOut,
    tags=ADMIN_TAGS,
)
async def templates_list(request: web.Request) -> web.Response:
    listed = await templates.list_templates(db(request), require_login(request))
    return web.json_response({"items": [_template_json(found) for found in listed]})


def _dispute_type(request: web.Request) -> str:
    return templates.dispute_type_of(request.match_info.get("dispute_type", "")).value


@documented(
    "The agreement template in force for a dispute type, and the platform's (admins)",
    response=TemplateDetailOut,
    tags=ADMIN_TAGS,
)
async def template_get(request: web.Request) -> web.Response:
    found = await templates.template_for(
        db(request), require_login(request), _dispute_type(request)
    )
    return web.json_response(_template_detail(found))


@documented(
    "Save the court's own template for a dispute type; refused, naming the line, if it does "
    "not fill the sample data (admins)",
    body=TemplateIn,
    response=TemplateDetailOut,
    tags=ADMIN_TAGS,
)
async def template_put(request: web.Request) -> web.Response:
    caller = require_login(request)
    kind = _dispute_type(request)
    data = await body(request, TemplateIn)
    found = await templates.save_template(db(request), caller, kind, data.body, data.base_version)
    return web.json_response(_template_detail(found))


@documented(
    "Go back to the platform's template for a dispute type (admins)",
    response=TemplateDetailOut,
    tags=ADMIN_TAGS,
)
async def template_delete(request: web.Request) -> web.Response:
    caller = require_login(request)
    found = await templates.revert_template(db(request), caller, _dispute_type(request))
    return web.json_response(_template_detail(found))


@documented(
    "A template filled with sample data, without saving it (admins)",
    body=PreviewIn,
    response=PreviewOut,
    tags=ADMIN_TAGS,
)
async def template_preview(request: web.Request) -> web.Response:
    caller = require_login(request)
    _dispute_type(request)
    data = await body(request, PreviewIn)
    filled = templates.preview(caller, data.body)
    return web.json_response({"title": filled.title, "text": filled.text})


def setup(app: web.Application) -> None:
    """Add this module's routes."""
    r = app.router
    r.add_get("/disputes/{id}/agreement", agreement_page, name="agreement")
    base = "/api/v1/disputes/{id}/agreement"
    r.add_get(base, agreement_get, name="api_agreement")
    r.add_post(base, agreement_start)
    r.add_put(base, agreement_save)
    r.add_post(f"{base}/refill", agreement_refill, name="api_agreement_refill")
    r.add_post(f"{base}/signing", agreement_signing, name="api_agreement_signing")
    r.add_get(f"{base}/versions/{{version}}", agreement_version, name="api_agreement_version")
    r.add_get(f"{base}/versions/{{version}}/pdf", agreement_pdf, name="api_agreement_pdf")
    r.add_get("/admin/agreement-templates", templates_page, name="admin_agreement_templates")
    admin = "/api/v1/admin/agreement-templates"
    r.add_get(admin, templates_list, name="api_agreement_templates")
    r.add_get(f"{admin}/{{dispute_type}}", template_get, name="api_agreement_template")
    r.add_put(f"{admin}/{{dispute_type}}", template_put)
    r.add_delete(f"{admin}/{{dispute_type}}", template_delete)
    r.add_post(
        f"{admin}/{{dispute_type}}/preview", template_preview, name="api_agreement_template_preview"
    )
