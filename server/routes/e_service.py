"""Routes of electronic service (电子送达): the recipient's inbox (the list, an item, its
document, acknowledging receipt), the clerk's page of a dispute's services (serve a
document, retry a failed delivery, a new certificate), the court's failed services, and
the JSON API of the same.

Each handler parses its input and calls ``services.e_service`` (or the certificate
module).  Opening an item and downloading through it write the trace in a short
transaction of their own, as the document download does; a refused page form comes
back to the page with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.context import DATABASE, LOCALE, OUTBOX, SPOOL, STORE, db, require_login, settings
from server.db.models import Service
from server.domain.errors import N_, Conflict, DomainError, Forbidden, Invalid
from server.eservice.channels import CHANNEL_LABELS, mask_address
from server.i18n import gettext
from server.jobs.setup import RUNNER
from server.openapi import documented
from server.pagination import page_args
from server.routes.api import body
from server.routes.common import Flash, path_id, redirect, safe_next
from server.routes.documents import check_in_store
from server.routes.multipart import streams_body
from server.routes.workflow import FLASH as PAGE_NOTICES
from server.services import documents, e_service, service_certificate, service_consent
from server.services.e_service import Trace
from server.templating import render

TAGS = ("electronic service",)
FLASH = Flash("yizhan.e-service-page.v1")  # signed notices of the page forms

DONE = {
    "served": N_("The document is being served. Each delivery's progress shows below."),
    "retried": N_("The delivery will be tried again now."),
    "certificate": N_("A new service certificate was made."),
}


# --- input and output --------------------------------------------------------------------


class ServeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_id: int = Field(description="a document of the dispute")
    party_ids: list[int] | None = Field(
        default=None, max_length=100, description="recipients; all parties when left out"
    )


class DeliveryOut(BaseModel):
    id: int
    channel: str = Field(description="inbox, email or sms")
    channel_label: str
    address: str = Field(description="email address or phone number; empty for the inbox")
    state: str = Field(description="queued, sent, reached, failed (will retry) or gave_up")
    state_label: str
    attempts: int
    next_attempt_at: str | None
    last_error: str
    sent_at: str | None
    reached_at: str | None
    opened_at: str | None
    downloaded_at: str | None
    acknowledged_at: str | None


class StepOut(BaseModel):
    at: str
    action: str
    channel: str
    attempt: int | None
    error: str
    actor: str


class ServiceOut(BaseModel):
    id: int
    dispute_id: int
    dispute_number: str
    document_id: int
    document_title: str
    document_sha256: str
    recipient_user_id: int | None
    recipient_party_id: int | None
    recipient_name: str
    consent: str = Field(description="consent, or application_email")
    consent_id: int | None
    state: str = Field(description="pending, complete or failed")
    state_label: str
    effective_channel: str = Field(description="the channel that reached first (Art. 31)")
    effective_at: str | None
    created_at: str
    certificate_document_id: int | None
    deliveries: list[DeliveryOut]
    history: list[StepOut]


class ServicesOut(BaseModel):
    items: list[ServiceOut]


class ServicePageOut(BaseModel):
    items: list[ServiceOut]
    page: int
    per_page: int
    total: int
    pages: int


class CertificateOut(BaseModel):
    service_id: int
    document_id: int
    sha256: str
    made: bool = Field(description="made by this request")
    url: str = Field(description="the download address")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def service_json(found: Trace) -> dict[str, Any]:
    s = found.service
    return {
        "id": s.id,
        "dispute_id": s.dispute_id,
        "dispute_number": found.dispute.number,
        "document_id": s.document_id,
        "document_title": found.document.title,
        "document_sha256": found.stored.sha256,
        "recipient_user_id": s.recipient_user_id,
        "recipient_party_id": s.recipient_party_id,
        "recipient_name": s.recipient_name,
        "consent": found.basis,
        "consent_id": s.consent_id,
        "state": s.state,
        "state_label": gettext(e_service.STATE_LABELS.get(s.state, s.state)),
        "effective_channel": s.effective_channel,
        "effective_at": _iso(s.effective_at),
        "created_at": s.created_at.isoformat(),
        "certificate_document_id": s.certificate_document_id,
        "deliveries": [
            {
                "id": d.id,
                "channel": d.channel,
                "channel_label": gettext(CHANNEL_LABELS.get(d.channel, d.channel)),
                "address": d.address,
                "state": d.state,
                "state_label": gettext(e_service.DELIVERY_LABELS.get(d.state, d.state)),
                "attempts": d.attempts,
                "next_attempt_at": _iso(d.next_attempt_at)
                if d.state == e_service.RETRYING
                else None,
                "last_error": d.last_error,
                "sent_at": _iso(d.sent_at),
                "reached_at": _iso(d.reached_at),
                "opened_at": _iso(d.opened_at),
                "downloaded_at": _iso(d.downloaded_at),
                "acknowledged_at": _iso(d.acknowledged_at),
            }
            for d in found.deliveries
        ],
        "history": [
            {
                "at": step.at.isoformat(),
                "action": step.action,
                "channel": step.channel,
                "attempt": step.attempt,
                "error": step.error,
                "actor": step.actor,
            }
            for step in found.history
        ],
    }


def _page_json(found: Any) -> dict[str, Any]:
    return {"items": [service_json(t) for t in found.items], **found.meta()}


# --- API ----------------------------------------------------------------------------------


@documented(
    "Serve a document of the dispute electronically (the clerk, the judge or the mediator)",
    body=ServeIn,
    response=ServicesOut,
    status=201,
    tags=TAGS,
)
async def api_serve(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    data = await body(request, ServeIn)
    made = await e_service.serve(
        db(request),
        caller,
        dispute_id,
        data.document_id,
        data.party_ids,
        runner=request.app[RUNNER],
    )
    found = await e_service.traces(db(request), made, history=True)
    return web.json_response({"items": [service_json(t) for t in found]}, status=201)


@documented("The dispute's services, failed ones first", response=ServicesOut, tags=TAGS)
async def api_dispute_services(request: web.Request) -> web.Response:
    caller = require_login(request)
    found = await e_service.dispute_services(db(request), caller, path_id(request))
    return web.json_response({"items": [service_json(t) for t in found]})


async def _opened_trace(request: web.Request, caller: Principal, service_id: int) -> Trace:
    """The service's trace; its recipient opening it is recorded (the first time)."""
    service = await db(request).get(Service, service_id)
    if service is None or service.recipient_user_id != caller.user_id:
        return await e_service.trace(db(request), caller, service_id)
    async with request.app[DATABASE].transaction() as session:
        await e_service.open_item(session, caller, service_id)
        return await e_service.trace(session, caller, service_id)


@documented(
    "One service with its trace (staff of the dispute, or its recipient, whose reading "
    "counts as opening it)",
    response=ServiceOut,
    tags=TAGS,
)
async def api_service(request: web.Request) -> web.Response:
    caller = require_login(request)
    found = await _opened_trace(request, caller, path_id(request))
    return web.json_response(service_json(found))


@documented("Acknowledge receipt (the recipient)", response=ServiceOut, tags=TAGS)
async def api_acknowledge(request: web.Request) -> web.Response:
    caller = require_login(request)
    service_id = path_id(request)
    await e_service.acknowledge(db(request), caller, service_id)
    return web.json_response(service_json(await e_service.trace(db(request), caller, service_id)))


@documented("Try a failed delivery again now", response=ServiceOut, tags=TAGS)
async def api_retry(request: web.Request) -> web.Response:
    caller = require_login(request)
    delivery = await e_service.retry_delivery(
        db(request), caller, path_id(request), runner=request.app[RUNNER]
    )
    found = await e_service.trace(db(request), caller, delivery.service_id)
    return web.json_response(service_json(found))


@documented(
    "Documents served on the caller, newest first",
    response=ServicePageOut,
    query={"page": "from 1", "per_page": "at most 100"},
    tags=TAGS,
)
async def api_inbox(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    return web.json_response(_page_json(await e_service.inbox(db(request), caller, page, per_page)))


@documented(
    "The court's services that failed or have a failed delivery (clerks, court admins)",
    response=ServicePageOut,
    query={"page": "from 1", "per_page": "at most 100"},
    tags=TAGS,
)
async def api_failed(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    found = await e_service.failed_in_court(db(request), caller, page, per_page)
    return web.json_response(_page_json(found))


async def _new_certificate(
    request: web.Request, caller: Principal, service_id: int
) -> tuple[int, str]:
    document, stored = await service_certificate.make_certificate(
        request.app[DATABASE],
        request.app[SPOOL],
        service_id,
        settings=settings(request),
        actor=caller.actor(),
        principal=caller,
        locale=request[LOCALE],
    )
    request.app[OUTBOX].wake()
    return document.id, stored.sha256


def _certificate_json(service_id: int, document_id: int, sha256: str, made: bool) -> web.Response:
    return web.json_response(
        {
            "service_id": service_id,
            "document_id": document_id,
            "sha256": sha256,
            "made": made,
            "url": f"/api/v1/documents/{document_id}/content",
        },
        status=201 if made else 200,
    )


@documented(
    "The service's newest certificate (电子送达凭证); one is made if there is none yet",
    response=CertificateOut,
    tags=TAGS,
)
async def api_certificate(request: web.Request) -> web.Response:
    caller = require_login(request)
    service_id = path_id(request)
    found = await e_service.trace(db(request), caller, service_id)
    newest = found.service.certificate_document_id
    if newest is not None:
        readable = await documents.readable(db(request), caller, newest)
        return _certificate_json(service_id, newest, readable.stored.sha256, False)
    document_id, sha256 = await _new_certificate(request, caller, service_id)
    return _certificate_json(service_id, document_id, sha256, True)


def _staff(caller: Principal) -> None:
    if caller.role not in e_service.VIEWERS:
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", permission="service.certificate"
        )


@streams_body  # the request's own transaction only reads: the certificate writes its own
@documented(
    "Make a new version of the service certificate (staff)",
    response=CertificateOut,
    status=201,
    tags=TAGS,
)
async def api_new_certificate(request: web.Request) -> web.Response:
    caller = require_login(request)
    _staff(caller)
    service_id = path_id(request)
    document_id, sha256 = await _new_certificate(request, caller, service_id)
    return _certificate_json(service_id, document_id, sha256, True)


# --- pages ------------------------------------------------------------------------------


def _notice(request: web.Request) -> tuple[str, str]:
    flashed = FLASH.error(request)
    if flashed is not None:
        return "error", flashed["e"]
    done = request.query.get("done", "")
    return ("done", gettext(DONE[done])) if done in DONE else ("", "")


def _page_context(request: web.Request) -> dict[str, Any]:
    zone = ZoneInfo(settings(request).timezone)

    def when(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else "—"

    return {
        "when": when,
        "mask": mask_address,
        "channel_labels": CHANNEL_LABELS,
        "state_labels": e_service.STATE_LABELS,
        "delivery_labels": e_service.DELIVERY_LABELS,
        "basis_labels": e_service.BASIS_LABELS,
        "problem_states": e_service.PROBLEM_DELIVERY,
        "notice": _notice(request),
        "zone": settings(request).timezone,
    }


async def _refused(
    request: web.Request, caller: Principal, error: DomainError, back: str
) -> web.Response:
    """A refused page form: its audit row (in this request's transaction, whose work was
    rolled back to the savepoint) and the way back to the page with the reason."""
    if error.audit_action:
        await audit.append(
            db(request),
            AuditEntry(
                error.audit_action,
                caller.actor(),
                "request",
                f"{request.method} {request.path}"[:64],
                dispute_id=error.dispute_id,
                outcome="denied",
                details={**error.audit_details, "where": f"{request.method} {request.path}"},
            ),
        )
    message = gettext(error.message, **error.localised_params(gettext))
    token = FLASH.dumps(request, {"e": message})
    return redirect(f"{back}?{urlencode({'error': token})}")


async def inbox_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    found = await e_service.inbox(db(request), caller, page, per_page)
    return render(request, "inbox.html", {"page": found, **_page_context(request)})


async def inbox_item(request: web.Request) -> web.Response:
    caller = require_login(request)
    service_id = path_id(request)
    async with request.app[DATABASE].transaction() as session:
        await e_service.open_item(session, caller, service_id)
        found = await e_service.trace(session, caller, service_id)
    return render(request, "inbox_item.html", {"t": found, **_page_context(request)})


async def inbox_document(request: web.Request) -> web.StreamResponse:
    """The served document, downloaded through the inbox item (traced and audited)."""
    caller = require_login(request)
    async with request.app[DATABASE].transaction() as session:
        _, document, stored = await e_service.record_download(session, caller, path_id(request))
    await check_in_store(request, stored, document.dispute_id)
    response = web.StreamResponse()
    response.content_type = stored.content_type.split(";")[0]
    if stored.content_type.startswith("text/"):
        response.charset = "utf-8"
    response.headers["ETag"] = f'"{stored.sha256}"'
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(document.filename or 'file')}"
    )
    response.content_length = stored.size
    await response.prepare(request)
    async for chunk in documents.open_bytes(request.app[STORE], request.app[SPOOL], stored, None):
        await response.write(chunk)
    await response.write_eof()
    return response


async def inbox_acknowledge(request: web.Request) -> web.Response:
    caller = require_login(request)
    service_id = path_id(request)
    await e_service.acknowledge(db(request), caller, service_id)
    return redirect(f"/inbox/{service_id}")


async def services_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    found = await e_service.dispute_services(db(request), caller, dispute_id)
    dispute = await access.dispute_for(db(request), caller, dispute_id)
    return render(
        request,
        "services_clerk.html",
        {
            "mode": "dispute",
            "dispute": dispute,
            "traces": found,
            "page": None,
            "may_serve": caller.role in e_service.SERVERS,
            "documents": await e_service.servable_documents(db(request), caller, dispute_id),
            "recipients": await e_service.recipients(db(request), caller, dispute_id),
            **_page_context(request),
        },
    )


async def failed_page(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    found = await e_service.failed_in_court(db(request), caller, page, per_page)
    return render(
        request,
        "services_clerk.html",
        {
            "mode": "court",
            "dispute": None,
            "traces": list(found.items),
            "page": found,
            "may_serve": caller.role in e_service.SERVERS,
            "documents": [],
            "recipients": [],
            **_page_context(request),
        },
    )


def _whole_number(value: object, field: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise Invalid(N_("This field is not valid: %(field)s."), field=field) from None
    if number < 1:
        raise Invalid(N_("This field is not valid: %(field)s."), field=field)
    return number


async def serve_form(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    back = f"/disputes/{dispute_id}/services"
    data = await request.post()
    try:
        async with db(request).begin_nested():  # a refusal leaves nothing behind
            document_id = _whole_number(data.get("document_id", ""), "document_id")
            chosen = [_whole_number(v, "party_ids") for v in data.getall("party_id", [])]
            await e_service.serve(
                db(request),
                caller,
                dispute_id,
                document_id,
                chosen,
                runner=request.app[RUNNER],
            )
    except (Invalid, Conflict) as error:
        return await _refused(request, caller, error, back)
    return redirect(f"{back}?done=served")


async def retry_form(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await request.post()
    delivery = await e_service.retry_delivery(
        db(request), caller, path_id(request), runner=request.app[RUNNER]
    )
    service = await db(request).get(Service, delivery.service_id)
    assert service is not None
    back = safe_next(data.get("next"), f"/disputes/{service.dispute_id}/services")
    return redirect(f"{back}{'&' if '?' in back else '?'}done=retried")


@streams_body  # the request's own transaction only reads: the certificate writes its own
async def certificate_form(request: web.Request) -> web.Response:
    caller = require_login(request)
    _staff(caller)
    service_id = path_id(request)
    data = await request.post()
    found = await e_service.trace(db(request), caller, service_id)
    await _new_certificate(request, caller, service_id)
    back = safe_next(data.get("next"), f"/disputes/{found.service.dispute_id}/services")
    return redirect(f"{back}{'&' if '?' in back else '?'}done=certificate")


class ServiceConsentIn(BaseModel):
    granted: bool
    email: str = Field(default="", max_length=254, description="where to serve; optional")


class ServiceConsentOut(BaseModel):
    consented: bool
    email: str


@documented(
    "Consent to (or refuse) electronic service, with the email address to serve at: a party",
    body=ServiceConsentIn,
    response=ServiceConsentOut,
    tags=TAGS,
)
async def api_service_consent(request: web.Request) -> web.Response:
    caller = require_login(request)
    data = await body(request, ServiceConsentIn)
    made = await service_consent.record(
        db(request), caller, path_id(request), granted=data.granted, email=data.email
    )
    return web.json_response(
        ServiceConsentOut(consented=made.consented, email=made.email).model_dump()
    )


async def service_consent_form(request: web.Request) -> web.Response:
    """The dispute page's form; back to the page (an error in "what to do next")."""
    caller = require_login(request)
    dispute_id = path_id(request)
    form = await request.post()
    back = f"/disputes/{dispute_id}"
    try:
        async with db(request).begin_nested():
            await service_consent.record(
                db(request),
                caller,
                dispute_id,
                granted=form.get("granted") == "yes",
                email=str(form.get("email", "")),
            )
    except Invalid as exc:
        message = gettext(exc.message, **exc.localised_params(gettext))
        token = PAGE_NOTICES.dumps(request, {"e": message})
        return redirect(f"{back}?{urlencode({'error': token})}#next-steps")
    return redirect(f"{back}#service-consent")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/disputes/{id}/service-consent", service_consent_form, name="service_consent")
    r.add_post(
        "/api/v1/disputes/{id}/service-consent", api_service_consent, name="api_service_consent"
    )
    r.add_get("/inbox", inbox_page, name="inbox")
    r.add_get("/inbox/{id}", inbox_item, name="inbox_item")
    r.add_get("/inbox/{id}/document", inbox_document, name="inbox_document")
    r.add_post("/inbox/{id}/acknowledge", inbox_acknowledge, name="inbox_acknowledge")
    r.add_get("/services/failed", failed_page, name="services_failed")
    r.add_get("/disputes/{id}/services", services_page, name="dispute_services")
    r.add_post("/disputes/{id}/services", serve_form, name="dispute_serve")
    r.add_post("/service-deliveries/{id}/retry", retry_form, name="delivery_retry")
    r.add_post("/services/{id}/certificate", certificate_form, name="service_certificate")
    r.add_get("/api/v1/inbox", api_inbox, name="api_inbox")
    r.add_get("/api/v1/services/failed", api_failed, name="api_services_failed")
    r.add_post("/api/v1/disputes/{id}/services", api_serve, name="api_dispute_serve")
    r.add_get("/api/v1/disputes/{id}/services", api_dispute_services, name="api_dispute_services")
    r.add_get("/api/v1/services/{id}", api_service, name="api_service")
    r.add_post("/api/v1/services/{id}/acknowledge", api_acknowledge, name="api_service_ack")
    r.add_post("/api/v1/service-deliveries/{id}/retry", api_retry, name="api_delivery_retry")
    r.add_get("/api/v1/services/{id}/certificate", api_certificate, name="api_service_cert")
    r.add_post(
        "/api/v1/services/{id}/certificate", api_new_certificate, name="api_service_new_cert"
    )
