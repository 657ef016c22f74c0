"""The service certificate (电子送达凭证, 人民法院在线诉讼规则 Art. 32): a PDF per service
that records what was served on whom, through which channels, and every step of each
delivery, with the channel that made the service effective (Art. 31).

It shows the court, the dispute and case numbers, the document served (title and
SHA-256), the recipient and the basis of their consent, each channel with its address
partly masked, when it was sent, reached the recipient's system, and was opened,
downloaded and acknowledged, every failure and retry with its reason, and which channel
made the service effective and when.  Times are in the court's timezone.

A certificate is made when the service completes, and again on request; documents are
write-once, so each is a new version, and the service points to the newest.  ``sign``
is where the platform's signature is applied to the rendered bytes before they are
stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

import jinja2

from server.audit import Actor
from server.auth.principal import Principal
from server.config import Settings
from server.db.base import utcnow
from server.db.engine import Database
from server.db.models import Document, StoredObject
from server.domain.documents import DEFAULT_LIMITS, DocumentKind
from server.domain.errors import N_, Invalid
from server.eservice.channels import CHANNEL_LABELS, mask_address
from server.i18n import DEFAULT_LOCALE, translate_in
from server.pdf import render_pdf
from server.services import e_service
from server.services.documents import record_document
from server.services.workflow import state_of
from server.signing.issue import certify
from storage.spool import Spool

Signer = Callable[[bytes], bytes]

TITLE = N_("Electronic service certificate")
STEP_LABELS = {
    "service.delivery_failed": N_("Attempt failed, tried again later"),
    "service.gave_up": N_("Attempt failed, gave up"),
    "service.retry_requested": N_("Tried again on request"),
}

CSS = """
h2 { font-size: 13pt; margin: 1.2em 0 .4em; }
table { width: 100%; border-collapse: collapse; margin: 0 0 .6em; font-size: 10.5pt; }
th, td { border: 0.6pt solid #444; padding: 3pt 5pt; text-align: left; vertical-align: top; }
th { width: 32%; font-weight: normal; background: #f2f2f2; }
.mono { font-family: "Noto Sans Mono CJK SC", monospace; font-size: 9pt; word-break: break-all; }
.effective { font-weight: bold; }
.note { font-size: 9.5pt; color: #333; }
"""

LABELS = {
    "court": N_("Court"),
    "dispute_number": N_("Dispute number"),
    "case_number": N_("Case number"),
    "document_served": N_("Document served"),
    "sha256": N_("SHA-256 of the document"),
    "recipient": N_("Recipient"),
    "consent": N_("Consent to electronic service"),
    "served_by": N_("Served by"),
    "service_started_at": N_("Service started at"),
    "service_state": N_("State of the service"),
    "effective": N_("Service took effect"),
    "address": N_("Address"),
    "state": N_("State"),
    "attempts": N_("Attempts"),
    "sent_at": N_("Sent at"),
    "reached_at": N_("Reached the recipient's system at"),
    "opened_at": N_("Opened at"),
    "downloaded_at": N_("Downloaded at"),
    "acknowledged_at": N_("Receipt acknowledged at"),
    "last_failure": N_("Last failure"),
    "failures": N_("Failures and retries"),
    "attempt": N_("attempt %(n)s"),
    "none": N_("None."),
    "zone_note": N_("Times are in the court's time zone (%(zone)s)."),
    "art31_note": N_(
        "Service is complete when the document reaches the recipient's system; the earliest "
        "channel to reach it decides (Art. 31 of the Online Litigation Rules of the People's "
        "Courts)."
    ),
    "made_note": N_("Made by the platform at %(at)s; version %(version)s."),
}


TEMPLATE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ t(TITLE) }}</title></head>
<body>
<h1>{{ t(TITLE) }}</h1>
<p class="number">{{ number }}</p>
<table>
  <tr><th>{{ t(L.court) }}</th><td>{{ court }}</td></tr>
  <tr><th>{{ t(L.dispute_number) }}</th><td>{{ dispute_number }}</td></tr>
  {% if case_number %}<tr><th>{{ t(L.case_number) }}</th><td>{{ case_number }}</td></tr>{% endif %}
  <tr><th>{{ t(L.document_served) }}</th><td>{{ document_title }}</td></tr>
  <tr><th>{{ t(L.sha256) }}</th><td class="mono">{{ sha256 }}</td></tr>
  <tr><th>{{ t(L.recipient) }}</th><td>{{ recipient }}</td></tr>
  <tr><th>{{ t(L.consent) }}</th><td>{{ basis }}</td></tr>
  <tr><th>{{ t(L.served_by) }}</th><td>{{ served_by }}</td></tr>
  <tr><th>{{ t(L.service_started_at) }}</th><td>{{ created_at }}</td></tr>
  <tr><th>{{ t(L.service_state) }}</th><td>{{ state }}</td></tr>
  <tr class="effective"><th>{{ t(L.effective) }}</th><td>{{ effective }}</td></tr>
</table>
{% for d in deliveries %}
<h2>{{ d.label }}</h2>
<table>
  {% if d.address %}<tr><th>{{ t(L.address) }}</th><td>{{ d.address }}</td></tr>{% endif %}
  <tr><th>{{ t(L.state) }}</th><td>{{ d.state }}</td></tr>
  <tr><th>{{ t(L.attempts) }}</th><td>{{ d.attempts }}</td></tr>
  <tr><th>{{ t(L.sent_at) }}</th><td>{{ d.sent_at }}</td></tr>
  <tr><th>{{ t(L.reached_at) }}</th><td>{{ d.reached_at }}</td></tr>
  {% if d.inbox %}
  <tr><th>{{ t(L.opened_at) }}</th><td>{{ d.opened_at }}</td></tr>
  <tr><th>{{ t(L.downloaded_at) }}</th><td>{{ d.downloaded_at }}</td></tr>
  <tr><th>{{ t(L.acknowledged_at) }}</th><td>{{ d.acknowledged_at }}</td></tr>
  {% endif %}
  {% if d.last_error %}<tr><th>{{ t(L.last_failure) }}</th><td>{{ d.last_error }}</td></tr>{% endif %}
</table>
{% endfor %}
<h2>{{ t(L.failures) }}</h2>
{% if failures %}
<table>
  {% for f in failures %}
  <tr><th>{{ f.at }} · {{ f.channel }}{% if f.attempt %} · {{ t(L.attempt, n=f.attempt) }}{% endif %}</th>
      <td>{{ f.what }}{% if f.error %}: {{ f.error }}{% endif %}</td></tr>
  {% endfor %}
</table>
{% else %}<p>{{ t(L.none) }}</p>{% endif %}
<p class="note">{{ t(L.zone_note, zone=zone) }}
{{ t(L.art31_note) }}</p>
<p class="note">{{ t(L.made_note, at=made_at, version=version) }}</p>
</body></html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_TEMPLATE = _ENV.from_string(TEMPLATE)


@dataclass(frozen=True)
class Clock:
    zone: ZoneInfo

    def __call__(self, value: datetime | str | None) -> str:
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            try:
                at = datetime.fromisoformat(value)
            except ValueError:
                return value
        else:
            at = value
        return at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")


def certificate_markup(
    trace: e_service.Trace, *, timezone: str, locale: str, version: int, made_at: datetime
) -> str:
    """The certificate as HTML, every label in ``locale``."""

    def t(message: str, **params: object) -> str:
        return translate_in(locale, message, **params)

    when = Clock(ZoneInfo(timezone))
    service = trace.service
    state = state_of(trace.dispute)
    basis = t(e_service.BASIS_LABELS[trace.basis])
    if trace.consent is not None:
        basis += f" ({when(trace.consent.recorded_at)})"
    else:
        email = next((d.address for d in trace.deliveries if d.channel == "email"), "")
        if email:
            basis += f" ({mask_address('email', email)})"
    created = next((s for s in trace.history if s.action == "service.created"), None)
    if service.effective_at is not None:
        channel = t(CHANNEL_LABELS.get(service.effective_channel, service.effective_channel))
        effective = f"{channel} · {when(service.effective_at)}"
    else:
        effective = t("Not yet: no channel has reached the recipient's system.")
    deliveries = [
        {
            "label": t(CHANNEL_LABELS.get(d.channel, d.channel)),
            "inbox": d.channel == "inbox",
            "address": mask_address(d.channel, d.address),
            "state": t(e_service.DELIVERY_LABELS.get(d.state, d.state)),
            "attempts": d.attempts,
            "sent_at": when(d.sent_at),
            "reached_at": when(d.reached_at),
            "opened_at": when(d.opened_at),
            "downloaded_at": when(d.downloaded_at),
            "acknowledged_at": when(d.acknowledged_at),
            "last_error": d.last_error if d.state in e_service.PROBLEM_DELIVERY else "",
        }
        for d in trace.deliveries
    ]
    failures = [
        {
            "at": when(step.at),
            "channel": t(CHANNEL_LABELS.get(step.channel, step.channel)),
            "attempt": step.attempt,
            "what": t(STEP_LABELS[step.action])
            + (f" ({step.actor})" if step.action == "service.retry_requested" else ""),
            "error": step.error,
        }
        for step in trace.failures
    ]
    return _TEMPLATE.render(
        t=t,
        L=LABELS,
        TITLE=TITLE,
        lang="zh-CN" if locale == "zh_CN" else "en",
        number=f"No. {service.id}-{version}",
        court=trace.court.name if trace.court is not None else "",
        dispute_number=trace.dispute.number,
        case_number=state.case_number or "",
        document_title=trace.document.title,
        sha256=trace.stored.sha256,
        recipient=service.recipient_name,
        basis=basis,
        served_by=created.actor if created is not None else "",
        created_at=when(service.created_at),
        state=t(e_service.STATE_LABELS.get(service.state, service.state)),
        effective=effective,
        deliveries=deliveries,
        failures=failures,
        zone=timezone,
        made_at=when(made_at),
        version=version,
    )


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _filename(trace: e_service.Trace, version: int) -> str:
    number = "".join(c for c in trace.dispute.number if c not in '\\/:*?"<>|')
    return f"电子送达凭证 {number} {trace.service.recipient_name} {trace.service.id}-{version}.pdf"


async def make_certificate(
    database: Database,
    spool: Spool,
    service_id: int,
    *,
    settings: Settings,
    actor: Actor,
    principal: Principal | None = None,
    locale: str = DEFAULT_LOCALE,
    sign: Signer | None = None,
) -> tuple[Document, StoredObject]:
    """Render, (sign,) store and point the service at a new certificate.

    ``principal``: the person asking (their access is checked); None: the platform, when
    the service completes.  ``sign`` takes the rendered PDF and returns the signed PDF.
    Runs its own short transactions: call it outside a writing one.
    """
    async with database.transaction(write=False) as db:
        if principal is not None:
            trace = await e_service.trace(db, principal, service_id)
        else:
            trace = await e_service.trace_for_certificate(db, service_id)
        version = await e_service.certificate_versions(db, service_id) + 1
    markup = certificate_markup(
        trace, timezone=settings.timezone, locale=locale, version=version, made_at=utcnow()
    )
    data = await asyncio.to_thread(render_pdf, markup, [CSS])
    # issued by the platform: certified with its key unless the caller signs otherwise
    data = await asyncio.to_thread(sign or partial(certify, settings), data)
    limit = DEFAULT_LIMITS[DocumentKind.SERVICE_CERTIFICATE]
    if len(data) > limit:
        raise Invalid(N_("The document is too large to store."))
    spooled = await spool.receive(_one(data), limit=limit)
    title = translate_in(locale, N_("Service certificate"))
    async with database.transaction() as db:
        document, stored = await record_document(
            db,
            spool,
            spooled,
            actor=actor,
            dispute_id=trace.service.dispute_id,
            kind=DocumentKind.SERVICE_CERTIFICATE,
            filename=_filename(trace, version),
            title=f"{title} · {trace.service.recipient_name} · {trace.document.title}",
        )
        await e_service.record_certificate(db, service_id, document, stored, actor, version)
    return document, stored
