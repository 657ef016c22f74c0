"""The final mediation agreement: the PDF everyone signed, a signatures page and an audit
page appended, sealed with the platform's PAdES signature.

The signatures page shows each signer's name, capacity, the party they signed for, their
drawn signature and the time in the court's timezone, with the mediation organisation's
e-seal when one is configured. The audit page is laid out from the audit log's own
``agreement.signed`` rows (who, when, IP, how identity was checked, the hashes), so the
two always say the same. The file is merged with pypdf, signed with pyHanko as a
certification signature that allows no later change, and stored as a write-once
``agreement`` document of the dispute.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import SYSTEM, AuditEntry
from server.config import Settings
from server.db.models import (
    Agreement,
    AgreementSignature,
    AgreementVersion,
    AuditEvent,
    Court,
    Dispute,
    DisputeParty,
    Document,
    MediationOrganisation,
    Mediator,
    StoredObject,
)
from server.domain.documents import DEFAULT_LIMITS, DocumentKind, kind_label
from server.domain.errors import N_, InternalError
from server.i18n import DEFAULT_LOCALE, translate_in
from server.pdf import render_pdf
from server.services.documents import open_bytes, record_document
from server.services.rooms import SEATS
from server.signing.keys import PlatformKey, platform_key
from server.signing.pades import Issued, sign_pdf, signer_for
from storage.base import ObjectStore
from storage.spool import Spool

FIELD = "yizhan-platform"
REASON = "一站平台签发 / issued by Yizhan"
SIGNED_ACTION = "agreement.signed"
DAMAGED = N_("A file of the agreement failed its integrity check; the court has been told.")

PAGES_CSS = """
h1 { font-size: 16pt; letter-spacing: .1em; }
h2 { font-size: 11pt; margin: .9em 0 .2em; }
.audit { break-before: page; }
table.signers { width: 100%; border-collapse: collapse; font-size: 10.5pt; }
table.signers th, table.signers td { border: 0.5pt solid #555; padding: 4pt 5pt;
  vertical-align: middle; text-align: left; }
table.signers img { max-height: 18mm; max-width: 55mm; }
.seal { margin-top: 1.5em; display: flex; align-items: center; gap: 6mm; }
.seal img { height: 40mm; width: auto; }
dl { margin: 0 0 0 1.2em; font-size: 9.5pt; line-height: 1.5; }
dt { float: left; clear: left; width: 9em; color: #333; }
dd { margin-left: 9.5em; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 8.5pt; word-break: break-all; }
.hint { font-size: 9pt; color: #333; }
"""

TEMPLATE = """
<section class="signatures">
  <h1>{{ t("Signatures") }}</h1>
  <p class="number">{{ number }}</p>
  <p>{{ t("Court") }}: {{ court }} · {{ t("Case number") }}: {{ dispute_number }}</p>
  <p>{{ t("Version %(version)s of the agreement, SHA-256 of the PDF signed:", version=version) }}
    <code>{{ pdf_sha256 }}</code></p>
  <table class="signers">
    <thead><tr><th>{{ t("Signer") }}</th><th>{{ t("Capacity") }}</th><th>{{ t("Signed for") }}</th>
      <th>{{ t("Signature") }}</th><th>{{ t("Signed at") }}</th></tr></thead>
    <tbody>
    {% for s in signers %}
      <tr><td>{{ s.name }}</td><td>{{ s.seat }}</td><td>{{ s.party_name or "—" }}</td>
        <td><img src="{{ s.image }}" alt=""></td><td>{{ s.at }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  <div class="seal">
    <p>{{ t("Mediation organisation") }}: {{ organisation or "—" }}</p>
    {% if seal %}<img src="{{ seal }}" alt="">{% endif %}
  </div>
</section>
<section class="audit">
  <h1>{{ t("Audit record of the signatures") }}</h1>
  <p class="number">{{ number }}</p>
  <dl>
    <dt>{{ t("PDF signed") }}</dt><dd><code>{{ pdf_sha256 }}</code></dd>
    <dt>{{ t("Agreement text") }}</dt><dd><code>{{ text_sha256 }}</code></dd>
  </dl>
  {% for e in entries %}
  <h2>{{ loop.index }}. {{ e.name }} · {{ e.seat }}{% if e.party_name and e.party_name != e.name %} · {{ e.party_name }}{% endif %}</h2>
  <dl>
    <dt>{{ t("Signed at") }}</dt><dd>{{ e.at }}</dd>
    <dt>{{ t("IP address") }}</dt><dd>{{ e.ip or "—" }}</dd>
    <dt>{{ t("Identity check") }}</dt><dd>{{ e.method }}</dd>
    <dt>{{ t("Signature image") }}</dt><dd><code>{{ e.image_sha256 }}</code></dd>
    <dt>{{ t("PDF signed") }}</dt><dd><code>{{ e.document_sha256 }}</code></dd>
    <dt>{{ t("Audit row") }}</dt><dd>{{ e.seq }} · <code>{{ e.row_hash }}</code></dd>
  </dl>
  {% endfor %}
  <p class="hint">{{ t("Each entry above is a row of the platform's hash-chained audit log. The platform's electronic signature on this file shows whether it has been changed since it was issued.") }}</p>
</section>
"""

FOOTER = N_("Signatures and audit record, page")
METHODS = {"one_time_code": N_("One-time code sent to the signer, entered just before signing")}
LABELS = (
    N_("Signatures"),
    N_("Court"),
    N_("Case number"),
    N_("Version %(version)s of the agreement, SHA-256 of the PDF signed:"),
    N_("Signer"),
    N_("Capacity"),
    N_("Signed for"),
    N_("Signature"),
    N_("Signed at"),
    N_("Mediation organisation"),
    N_("Audit record of the signatures"),
    N_("PDF signed"),
    N_("Agreement text"),
    N_("IP address"),
    N_("Identity check"),
    N_("Signature image"),
    N_("Audit row"),
    N_(
        "Each entry above is a row of the platform's hash-chained audit log. The platform's electronic signature on this file shows whether it has been changed since it was issued."
    ),
)

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_template = _env.from_string(TEMPLATE)


def court_time(at: datetime, timezone: str) -> str:
    """A moment as the court reads it: local date and time to the second, and the zone."""
    return f"{at.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M:%S} ({timezone})"


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class SignerLine:
    name: str
    seat: str
    party_name: str
    image: str  # data: URL
    at: str


@dataclass(frozen=True)
class AuditLine:
    """One ``agreement.signed`` audit row, as the audit page shows it."""

    seq: int
    row_hash: str
    name: str
    seat: str
    party_name: str
    at: str
    ip: str
    method: str
    image_sha256: str
    document_sha256: str


@dataclass(frozen=True)
class FinalFacts:
    court: str
    dispute_number: str
    number: str
    version: int
    pdf_sha256: str
    text_sha256: str
    organisation: str
    signers: tuple[SignerLine, ...]
    entries: tuple[AuditLine, ...]


@dataclass(frozen=True)
class Timings:
    """How long the parts of making the final PDF took, in seconds."""

    render: float
    merge: float
    sign: float


async def _read(store: ObjectStore, spool: Spool, stored: StoredObject, dispute_id: int) -> bytes:
    chunks = [chunk async for chunk in open_bytes(store, spool, stored, None)]
    data = b"".join(chunks)
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        raise InternalError(DAMAGED).audited(
            "storage.integrity_failed", dispute_id=dispute_id, key=stored.key
        )
    return data


def _seat(signature: AgreementSignature, sides: dict[int, str]) -> str:
    if signature.signer_role == "mediator" or signature.party_id is None:
        return SEATS["mediator"]
    side = sides.get(signature.party_id, "third_party")
    side = side if side in ("applicant", "respondent") else "third_party"
    return SEATS[f"{side}_agent"] if signature.signer_role == "agent" else SEATS[side]


async def signed_audit_rows(
    db: AsyncSession, signatures: Sequence[AgreementSignature]
) -> list[AuditEvent]:
    """The audit log's ``agreement.signed`` rows of these signatures, in log order."""
    if not signatures:
        return []
    return list(
        await db.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.action == SIGNED_ACTION,
                AuditEvent.object_type == "agreement_signature",
                AuditEvent.object_id.in_([str(s.id) for s in signatures]),
                AuditEvent.outcome == "ok",
            )
            .order_by(AuditEvent.seq)
        )
    )


async def gather(
    db: AsyncSession,
    store: ObjectStore,
    spool: Spool,
    settings: Settings,
    agreement: Agreement,
    translate: Callable[[str], str],
) -> tuple[bytes, FinalFacts]:
    """The PDF that was signed and what the appended pages show."""
    dispute = await db.get(Dispute, agreement.dispute_id)
    assert dispute is not None
    version = await db.scalar(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == agreement.id,
            AgreementVersion.version == agreement.signing_version,
        )
    )
    if version is None or version.pdf_object_id is None:
        raise InternalError(DAMAGED)
    draft_object = await db.get(StoredObject, version.pdf_object_id)
    assert draft_object is not None
    draft = await _read(store, spool, draft_object, dispute.id)
    if draft_object.sha256 != version.pdf_sha256:
        raise InternalError(DAMAGED).audited(
            "storage.integrity_failed", dispute_id=dispute.id, key=draft_object.key
        )
    signatures = list(
        await db.scalars(
            select(AgreementSignature)
            .where(
                AgreementSignature.agreement_id == agreement.id,
                AgreementSignature.version == version.version,
                AgreementSignature.decision == "signed",
            )
            .order_by(AgreementSignature.at, AgreementSignature.id)
        )
    )
    parties = list(
        await db.scalars(select(DisputeParty).where(DisputeParty.dispute_id == dispute.id))
    )
    names = {p.id: p.name for p in parties}
    sides = {p.id: p.side.value for p in parties}
    lines = []
    for signature in signatures:
        image_object = (
            await db.get(StoredObject, signature.image_object_id)
            if signature.image_object_id
            else None
        )
        if image_object is None or image_object.sha256 != signature.image_sha256:
            raise InternalError(DAMAGED)
        image = await _read(store, spool, image_object, dispute.id)
        lines.append(
            SignerLine(
                name=signature.name,
                seat=translate(_seat(signature, sides)),
                party_name=names.get(signature.party_id or 0, ""),
                image=_data_url(image),
                at=court_time(signature.at, settings.timezone),
            )
        )
    rows = await signed_audit_rows(db, signatures)
    if len(rows) != len(signatures):
        raise InternalError(DAMAGED).audited("agreement.audit_mismatch", dispute_id=dispute.id)
    by_id = {str(s.id): s for s in signatures}
    entries = []
    for row in rows:
        details: dict[str, Any] = row.details or {}
        signature = by_id[row.object_id]
        method = str(details.get("method", ""))
        entries.append(
            AuditLine(
                seq=row.seq,
                row_hash=row.row_hash,
                name=row.actor_name,
                seat=translate(_seat(signature, sides)),
                party_name=str(details.get("party_name", "")),
                at=court_time(row.at, settings.timezone),
                ip=row.ip,
                method=translate(METHODS[method]) if method in METHODS else method,
                image_sha256=str(details.get("image_sha256", "")),
                document_sha256=str(details.get("document_sha256", "")),
            )
        )
    court = await db.get(Court, dispute.court_id)
    organisation = await db.scalar(
        select(MediationOrganisation.name)
        .join(Mediator, Mediator.organisation_id == MediationOrganisation.id)
        .where(Mediator.user_id == dispute.mediator_user_id)
    )
    facts = FinalFacts(
        court=court.name if court else "",
        dispute_number=dispute.number,
        number=agreement.number,
        version=version.version,
        pdf_sha256=version.pdf_sha256,
        text_sha256=version.sha256,
        organisation=organisation or "",
        signers=tuple(lines),
        entries=tuple(entries),
    )
    return draft, facts


def pages_markup(facts: FinalFacts, seal_png: bytes | None, translate: Callable[[str], str]) -> str:
    def t(message: str, **params: Any) -> str:
        text = translate(message)
        return text % params if params else text

    body = _template.render(
        t=t,
        court=facts.court,
        dispute_number=facts.dispute_number,
        number=facts.number,
        version=facts.version,
        pdf_sha256=facts.pdf_sha256,
        text_sha256=facts.text_sha256,
        organisation=facts.organisation,
        seal=_data_url(seal_png) if seal_png else "",
        signers=facts.signers,
        entries=facts.entries,
    )
    return f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"></head><body>{body}</body></html>'


def _css_string(value: str) -> str:
    """``value`` as the inside of a CSS double-quoted string."""
    return "".join(c if c.isalnum() or c in " ·（）()-_.,:" else f"\\{ord(c):x} " for c in value)


def build(
    draft: bytes, facts: FinalFacts, key: PlatformKey, translate: Callable[[str], str]
) -> tuple[bytes, Timings]:
    """Render the appended pages, merge them after the signed PDF's pages and sign the
    whole (CPU-bound: run it in a worker thread)."""
    started = time.perf_counter()
    footer = _css_string(f"{facts.number} · {translate(FOOTER)}")
    page_css = (
        f'@page {{ @bottom-center {{ content: "{footer} " counter(page) " / " counter(pages); }} }}'
    )
    pages = render_pdf(
        pages_markup(facts, key.seal_png, translate), [PAGES_CSS, page_css], images=True
    )
    rendered = time.perf_counter()
    merged = merge(draft, pages, title=f"{translate(kind_label('agreement'))} {facts.number}")
    joined = time.perf_counter()
    signed = sign_pdf(
        merged,
        field=FIELD,
        reason=REASON,
        location=facts.court or "Yizhan",
        signer=signer_for(key),
        certify=True,
    )
    done = time.perf_counter()
    return signed, Timings(rendered - started, joined - rendered, done - joined)


def merge(first: bytes, second: bytes, *, title: str) -> bytes:
    """The pages of ``first`` then of ``second``, as one plain PDF: earlier signature
    fields and widgets are left out (their signatures would not cover the new file)."""
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(first)), excluded_fields=["/Annots", "/B"])
    writer.append(PdfReader(io.BytesIO(second)), excluded_fields=["/Annots", "/B"])
    writer.root_object.pop(NameObject("/AcroForm"), None)
    writer.add_metadata({"/Title": title, "/Producer": "Yizhan"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _filename(number: str, label: str) -> str:
    clean = "".join(c for c in number if c not in '\\/:*?"<>|')
    return f"{clean} {label}.pdf"


async def issue(
    db: AsyncSession, store: ObjectStore, spool: Spool, settings: Settings, agreement_id: int
) -> Document:
    """Make, sign and store the final PDF of a fully signed agreement (in the caller's
    unit of work); the agreement then names it and its SHA-256."""
    agreement = await db.get(Agreement, agreement_id)
    assert agreement is not None

    def translate(message: str) -> str:
        return translate_in(DEFAULT_LOCALE, message)

    draft, facts = await gather(db, store, spool, settings, agreement, translate)
    key = await asyncio.to_thread(platform_key, settings)
    data, timings = await asyncio.to_thread(build, draft, facts, key, translate)
    limit = DEFAULT_LIMITS[DocumentKind.AGREEMENT]
    if len(data) > limit:
        raise InternalError(N_("The document is too large to store."))
    label = translate(kind_label(DocumentKind.AGREEMENT.value))
    spooled = await spool.receive(_one(data), limit=limit)
    document, stored = await record_document(
        db,
        spool,
        spooled,
        actor=SYSTEM,
        dispute_id=agreement.dispute_id,
        kind=DocumentKind.AGREEMENT,
        filename=_filename(agreement.number, label),
        title=f"{label} {agreement.number}",
    )
    agreement.final_document_id = document.id
    agreement.final_sha256 = stored.sha256
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "agreement.issued",
            SYSTEM,
            "agreement",
            agreement.id,
            dispute_id=agreement.dispute_id,
            details={
                "number": agreement.number,
                "version": facts.version,
                "document_id": document.id,
                "sha256": stored.sha256,
                "size": stored.size,
                "draft_sha256": facts.pdf_sha256,
                "text_sha256": facts.text_sha256,
                "signatures": len(facts.signers),
                "audit_rows": [entry.seq for entry in facts.entries],
                "signer": key.subject,
                "ms": {
                    "render": round(timings.render * 1000),
                    "merge": round(timings.merge * 1000),
                    "sign": round(timings.sign * 1000),
                },
            },
        ),
    )
    return document


# --- what the platform issued -------------------------------------------------------------

ISSUED_KINDS = (
    DocumentKind.AGREEMENT.value,
    DocumentKind.RULING.value,
    DocumentKind.SERVICE_CERTIFICATE.value,
)


async def issued(db: AsyncSession, sha256: str) -> Issued | None:
    """The issued document (agreement, ruling, service certificate) whose stored file has
    exactly this SHA-256, if any: its title, number and time, nothing personal."""
    row = (
        await db.execute(
            select(Document, Agreement.number)
            .join(StoredObject, StoredObject.id == Document.object_id)
            .outerjoin(Agreement, Agreement.final_document_id == Document.id)
            .where(StoredObject.sha256 == sha256, Document.kind.in_(ISSUED_KINDS))
            .order_by(Document.id)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    document, number = row
    return Issued(
        document_id=document.id,
        title=document.title,
        number=number or "",
        issued_at=document.created_at,
    )
