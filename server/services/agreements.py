"""Drafting a dispute's mediation agreement (调解协议): the one place its drafting state
changes.

The dispute's mediator starts the agreement (version 1: the court's template for the
dispute type filled with the dispute's facts and no terms yet), saves new versions (the
text as edited in the browser and the structured terms, checked), re-fills the text from
the terms when asked (never silently), and puts the current version up for signing: its
PDF is made and kept write-once (kind ``agreement_draft``) with its SHA-256, and a dispute
still being mediated moves on with the workflow's ``RecordAgreement``. Saving again takes
the agreement back to drafting; signatures key on the version, so those of the earlier
version no longer count.

The agreement's number is the dispute's number with the suffix ``-协议``
(（2026）演0101诉前调1号-协议): one agreement per dispute, so it is as unique as the
dispute's number and tells the reader at once which dispute it settles.

Every version keeps the SHA-256 of the canonical JSON of ``{"text", "terms"}`` (keys
sorted, no spaces, UTF-8 unescaped). Every change is audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import (
    Agreement,
    AgreementVersion,
    Dispute,
    DisputeParty,
    StoredObject,
    User,
)
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar
from server.domain.disputes import DisputeStatus
from server.domain.errors import N_, Conflict, Forbidden, Invalid, NotFound, Unavailable
from server.domain.roles import Role
from server.pdf import PdfUnavailable, render_pdf
from server.services import agreement_templates as templates
from server.services import workflow
from server.services.agreement_templates import Facts
from storage.keys import new_key
from storage.spool import Spool

DRAFT_KIND = "agreement_draft"
NUMBER_SUFFIX = "-协议"
MAX_TEXT = 50_000
MAX_NOTE = 200
MAX_TERM = 1000
MAX_OTHER_TERMS = 30
MAX_INSTALMENTS = 120
MAX_AMOUNT = Decimal("1000000000000")  # a trillion yuan: beyond any mediated claim

# a dispute's agreement is drafted while it is mediated, and until everyone has signed
DRAFTING_STATUSES = frozenset(
    {DisputeStatus.MEDIATING.value, DisputeStatus.AGREEMENT_REACHED.value}
)
EDITABLE_STATES = frozenset({"drafting", "signing", "refused"})

NOT_MEDIATOR = N_("Only the dispute's mediator may draft its agreement.")
NOT_STARTED = N_("No agreement has been started for this dispute yet.")
STALE = N_(
    "Someone else saved version %(version)s of this agreement meanwhile. Nothing was lost: "
    "your text is still here. Copy it, reload the page and apply your changes again."
)
AMOUNT = N_("Amounts must be greater than zero, with at most two decimals: %(field)s.")


# the agreed terms ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Instalment(_Strict):
    due: date
    amount: Decimal = Field(description="yuan, more than zero, at most two decimals")


class Terms(_Strict):
    """What the parties agree to, in a form the platform can check and lay out."""

    title: str = Field(
        default="", max_length=templates.MAX_TITLE, description="调解协议书 or 人民调解协议书"
    )
    total: Decimal | None = Field(default=None, description="the total to pay, in yuan")
    payer: int | None = Field(default=None, description="the paying party's id")
    payee: int | None = Field(default=None, description="the receiving party's id")
    instalments: list[Instalment] = Field(
        default_factory=list,
        max_length=MAX_INSTALMENTS,
        description="dates in order, amounts adding up to the total",
    )
    deadline: date | None = Field(default=None, description="pay by (when paid at once)")
    method: str = Field(default="", max_length=MAX_TERM, description="how it is performed")
    costs_borne_by: Literal["", "applicant", "respondent", "shared", "waived"] = Field(
        default="", description="who bears the mediation and court costs"
    )
    costs: str = Field(default="", max_length=MAX_TERM, description="about the costs")
    other_terms: list[str] = Field(default_factory=list, max_length=MAX_OTHER_TERMS)


def _invalid_from(error: ValidationError, prefix: str) -> Invalid:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    name = f"{prefix}.{where}" if where else prefix
    if first["type"] == "missing":
        return Invalid(N_("This field is required: %(field)s."), field=name)
    return Invalid(N_("This field is not valid: %(field)s."), field=name)


def _amount(value: Decimal, name: str) -> Decimal:
    if not value.is_finite() or value <= 0 or value > MAX_AMOUNT:
        raise Invalid(AMOUNT, field=name)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise Invalid(AMOUNT, field=name)
    return templates.to_cents(value)


def parse_terms(raw: Any, party_ids: set[int]) -> Terms:
    """The terms as sent, checked: every amount above zero with at most two decimals,
    instalment dates in order, instalments adding up to the total, payer and payee
    parties of the dispute. :class:`Invalid` names the field (``terms.instalments.1.due``)."""
    try:
        terms = Terms.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        raise _invalid_from(error, "terms") from None
    total = _amount(terms.total, "terms.total") if terms.total is not None else None
    instalments: list[Instalment] = []
    for index, item in enumerate(terms.instalments):
        amount = _amount(item.amount, f"terms.instalments.{index}.amount")
        if instalments and item.due <= instalments[-1].due:
            raise Invalid(
                N_("Instalment dates must be in order, each after the one before: %(field)s."),
                field=f"terms.instalments.{index}.due",
            )
        instalments.append(Instalment(due=item.due, amount=amount))
    if instalments:
        if total is None:
            raise Invalid(
                N_("Give the total that the instalments add up to: %(field)s."),
                field="terms.total",
            )
        added = sum((item.amount for item in instalments), Decimal("0.00"))
        if added != total:
            raise Invalid(
                N_(
                    "The instalments add up to %(sum)s yuan, not the total of %(total)s yuan: "
                    "%(field)s."
                ),
                field="terms.instalments",
                sum=f"{added:.2f}",
                total=f"{total:.2f}",
            )
    for name in ("payer", "payee"):
        chosen = getattr(terms, name)
        if chosen is not None and chosen not in party_ids:
            raise Invalid(N_("Choose a party of this dispute: %(field)s."), field=f"terms.{name}")
    if terms.payer is not None and terms.payer == terms.payee:
        raise Invalid(
            N_("The payer and the payee must be different parties: %(field)s."),
            field="terms.payee",
        )
    others = [t for t in terms.other_terms if t]
    for index, text in enumerate(others):
        if len(text) > MAX_TERM:
            raise Invalid(
                N_("This field is not valid: %(field)s."), field=f"terms.other_terms.{index}"
            )
    return terms.model_copy(
        update={"total": total, "instalments": instalments, "other_terms": others}
    )


def canonical_terms(terms: Terms) -> dict[str, Any]:
    """The terms as stored and hashed: amounts as strings with two decimals, ISO dates."""
    data: dict[str, Any] = terms.model_dump(mode="json")
    return data


def version_hash(text: str, terms: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``{"text": ..., "terms": ...}``."""
    canonical = json.dumps(
        {"text": text, "terms": terms}, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def terms_of(version: AgreementVersion) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(version.terms or "{}")
    return loaded


def _clean_text(text: str) -> str:
    cleaned = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not cleaned:
        raise Invalid(N_("This field is required: %(field)s."), field="text")
    if len(cleaned) > MAX_TEXT:
        raise Invalid(N_("This field is not valid: %(field)s."), field="text")
    return cleaned


def _clean_note(note: str) -> str:
    cleaned = " ".join(note.split())
    if len(cleaned) > MAX_NOTE:
        raise Invalid(N_("This field is not valid: %(field)s."), field="note")
    return cleaned


# who may do what ----------------------------------------------------------------------------


def may_draft(principal: Principal, dispute: Dispute) -> bool:
    """Only the dispute's mediator drafts (the workflow lets only them record an agreement)."""
    return principal.role is Role.MEDIATOR and dispute.mediator_user_id == principal.user_id


async def _drafter(db: AsyncSession, principal: Principal, dispute_id: int) -> Dispute:
    dispute = await access.dispute_for(db, principal, dispute_id)
    if not may_draft(principal, dispute):
        raise Forbidden(NOT_MEDIATOR).audited(
            "access.denied", dispute_id=dispute_id, permission="agreement.draft"
        )
    return dispute


def _drafting_open(dispute: Dispute) -> None:
    if dispute.status not in DRAFTING_STATUSES:
        raise Conflict(N_("An agreement can be drafted only while the dispute is being mediated."))


async def _agreement(db: AsyncSession, dispute_id: int, *, lock: bool = False) -> Agreement:
    query = select(Agreement).where(Agreement.dispute_id == dispute_id)
    found = await db.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise Conflict(NOT_STARTED)
    return found


async def _version(db: AsyncSession, agreement: Agreement, number: int) -> AgreementVersion:
    found = await db.scalar(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == agreement.id, AgreementVersion.version == number
        )
    )
    if found is None:
        raise NotFound(N_("No such version of the agreement."))
    return found


async def _party_ids(db: AsyncSession, dispute_id: int) -> set[int]:
    return set(
        await db.scalars(select(DisputeParty.id).where(DisputeParty.dispute_id == dispute_id))
    )


def _editable(agreement: Agreement) -> None:
    if agreement.state not in EDITABLE_STATES:
        raise Conflict(N_("The agreement has been signed and can no longer be changed."))


def _check_base(agreement: Agreement, base_version: int | None) -> None:
    if base_version is not None and base_version != agreement.current_version:
        raise Conflict(STALE, version=agreement.current_version)


# drafting -----------------------------------------------------------------------------------


def number_for(dispute: Dispute) -> str:
    return f"{dispute.number}{NUMBER_SUFFIX}"


async def _filled(
    db: AsyncSession, dispute: Dispute, number: str, terms: Mapping[str, Any]
) -> templates.Filled:
    resolved = await templates.resolve(db, dispute.court_id, dispute.dispute_type)
    facts = await templates.dispute_facts(db, dispute, number)
    return templates.fill(templates.compile_body(resolved.body), facts, terms)


async def _add_version(
    db: AsyncSession,
    principal: Principal,
    agreement: Agreement,
    text: str,
    terms: Terms,
    note: str,
) -> AgreementVersion:
    data = canonical_terms(terms)
    agreement.current_version += 1
    version = AgreementVersion(
        agreement_id=agreement.id,
        version=agreement.current_version,
        text=text,
        terms=json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        sha256=version_hash(text, data),
        note=note,
        created_by_id=principal.user_id,
        created_at=datetime.now(UTC),
    )
    db.add(version)
    await db.flush()
    return version


async def _audit(
    db: AsyncSession,
    principal: Principal,
    agreement: Agreement,
    action: str,
    **details: Any,
) -> None:
    await audit.append(
        db,
        AuditEntry(
            f"agreement.{action}",
            principal.actor(),
            "agreement",
            agreement.id,
            dispute_id=agreement.dispute_id,
            details={"number": agreement.number, **details},
        ),
    )


async def start(db: AsyncSession, principal: Principal, dispute_id: int) -> Agreement:
    """Start the dispute's agreement: version 1 is the template filled with the dispute's
    facts and no terms yet."""
    await _drafter(db, principal, dispute_id)
    dispute = await db.scalar(select(Dispute).where(Dispute.id == dispute_id).with_for_update())
    assert dispute is not None
    _drafting_open(dispute)
    if await db.scalar(select(Agreement.id).where(Agreement.dispute_id == dispute_id)):
        raise Conflict(N_("This dispute already has an agreement."))
    number = number_for(dispute)
    filled = await _filled(db, dispute, number, {})
    agreement = Agreement(
        dispute_id=dispute_id,
        number=number,
        state="drafting",
        current_version=0,
        created_by_id=principal.user_id,
        created_at=datetime.now(UTC),
    )
    db.add(agreement)
    await db.flush()
    version = await _add_version(
        db, principal, agreement, filled.text, Terms(title=filled.title), ""
    )
    await _audit(db, principal, agreement, "started", version=1, sha256=version.sha256)
    return agreement


def _back_to_drafting(agreement: Agreement) -> int | None:
    """A new version withdraws the one out for signing; which one that was."""
    withdrawn = agreement.signing_version
    agreement.state = "drafting"
    agreement.signing_version = None
    return withdrawn


async def save(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    text: str,
    terms: Any,
    note: str,
    base_version: int,
) -> AgreementVersion:
    """A new version of the text and terms. ``base_version`` is the version the mediator
    edited: if someone saved another since, :class:`Conflict` and nothing changes."""
    dispute = await _drafter(db, principal, dispute_id)
    _drafting_open(dispute)
    agreement = await _agreement(db, dispute_id, lock=True)
    _editable(agreement)
    _check_base(agreement, base_version)
    parsed = parse_terms(terms, await _party_ids(db, dispute_id))
    previous = await _version(db, agreement, agreement.current_version)
    if not parsed.title:
        parsed = parsed.model_copy(update={"title": terms_of(previous).get("title", "")})
    cleaned_text, cleaned_note = _clean_text(text), _clean_note(note)
    withdrawn = _back_to_drafting(agreement)
    version = await _add_version(db, principal, agreement, cleaned_text, parsed, cleaned_note)
    await _audit(
        db, principal, agreement, "saved",
        version=version.version, sha256=version.sha256, note=cleaned_note,
        withdrawn_from_signing=withdrawn,
    )  # fmt: skip
    return version


async def refill(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    base_version: int,
    terms: Any = None,
    note: str = "",
) -> AgreementVersion:
    """A new version whose text is the template filled again with the terms (those sent,
    or the current version's): the mediator asks for it, the earlier text stays in the
    history."""
    dispute = await _drafter(db, principal, dispute_id)
    _drafting_open(dispute)
    agreement = await _agreement(db, dispute_id, lock=True)
    _editable(agreement)
    _check_base(agreement, base_version)
    current = await _version(db, agreement, agreement.current_version)
    parsed = parse_terms(
        terms if terms is not None else terms_of(current), await _party_ids(db, dispute_id)
    )
    filled = await _filled(db, dispute, agreement.number, canonical_terms(parsed))
    if not parsed.title:
        parsed = parsed.model_copy(update={"title": filled.title})
    withdrawn = _back_to_drafting(agreement)
    version = await _add_version(db, principal, agreement, filled.text, parsed, _clean_note(note))
    await _audit(
        db, principal, agreement, "refilled",
        version=version.version, sha256=version.sha256, withdrawn_from_signing=withdrawn,
    )  # fmt: skip
    return version


# the PDF ------------------------------------------------------------------------------------


def _signers(facts: Facts) -> list[dict[str, str]]:
    signers = [
        {
            "role": templates.SIDE_LABELS.get(p.side, p.side)
            + ("（盖章）" if p.kind == "legal" else "（签名）"),
            "name": p.name,
        }
        for p in facts.parties
    ]
    signers += [{"role": "委托代理人（签名）", "name": a.name} for a in facts.agents]
    signers.append({"role": "调解员（签名）", "name": facts.mediator})
    return signers


def _terms_rows(terms: Mapping[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []

    def add(label: str, value: str) -> None:
        if value:
            rows.append({"label": label, "value": value})

    add("付款方", terms["payer"])
    add("收款方", terms["payee"])
    if terms["total"]:
        add("金额", f"人民币{terms['total']}元（大写：人民币{terms['total_capital']}）")
    add("履行期限", f"{terms['deadline']}前" if terms["deadline"] else "")
    add("履行方式", terms["method"])
    costs = terms["costs_label"] + (f"（{terms['costs']}）" if terms["costs"] else "")
    add("费用负担", costs)
    for index, other in enumerate(terms["other_terms"], start=1):
        add(f"其他约定{index}", other)
    return rows


def _css_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\A ") + '"'


def layout(facts: Facts, version: AgreementVersion, *, draft: bool) -> tuple[str, str]:
    """The PDF's HTML and its page CSS (footer: page X / Y, the version and its hash)."""
    terms_data = terms_of(version)
    terms = templates.terms_context(terms_data, facts.parties)
    title = terms["title"] or templates.DEFAULT_TITLE
    markup = templates.LAYOUT_ENV.get_template("layout.html").render(
        title=title,
        number=facts.agreement_number,
        court=facts.court,
        organisation=facts.organisation,
        paragraphs=[line.strip() for line in version.text.split("\n") if line.strip()],
        terms={"rows": _terms_rows(terms), "instalments": terms["instalments"]},
        signers=_signers(facts),
    )
    footer = f"第{version.version}版 SHA-256：{version.sha256}"
    css = (templates.PLATFORM_DIR / "layout.css").read_text(encoding="utf-8")
    css += (
        '\n@page { @bottom-center { content: counter(page) " / " counter(pages) "\\A " '
        f"{_css_string(footer)}; }} }}\n"
    )
    if draft:
        css += f"@page {{ @top-right {{ content: {_css_string('草稿（未提交签署）')}; }} }}\n"
    return markup, css


async def render(facts: Facts, version: AgreementVersion, *, draft: bool) -> bytes:
    """The version as a PDF (A4, fonts embedded), made in a worker thread."""
    markup, css = layout(facts, version, draft=draft)
    try:
        return await asyncio.to_thread(render_pdf, markup, [css])
    except PdfUnavailable:
        raise Unavailable(
            N_("PDF documents cannot be made on this server just now. Try again later.")
        ) from None


# signing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningView:
    """The version out for signing, its stored PDF and the hash every signer sees."""

    agreement: Agreement
    version: AgreementVersion
    stored: StoredObject
    pdf_sha256: str


async def put_up_for_signing(
    db: AsyncSession,
    spool: Spool,
    principal: Principal,
    dispute_id: int,
    *,
    base_version: int | None = None,
    calendar: WorkingCalendar | None = None,
) -> SigningView:
    """Render the current version to PDF, keep it write-once with its SHA-256 and open it
    for signing; a dispute still being mediated records the agreement with the workflow
    (which may refuse, e.g. without the respondent's consent)."""
    dispute = await _drafter(db, principal, dispute_id)
    _drafting_open(dispute)
    agreement = await _agreement(db, dispute_id, lock=True)
    _editable(agreement)
    _check_base(agreement, base_version)
    version = await _version(db, agreement, agreement.current_version)
    if version.pdf_object_id is not None:  # its PDF, and any signatures of it, stay as they are
        raise Conflict(
            N_(
                "This version has already been put up for signing. Save a new version to put "
                "it up again."
            )
        )
    if dispute.status == DisputeStatus.MEDIATING.value:
        await workflow.execute(
            db,
            principal,
            dispute_id,
            cmd.RecordAgreement(summary=f"{agreement.number}（第{version.version}版）"),
            calendar=calendar or WorkingCalendar(),
        )
    facts = await templates.dispute_facts(db, dispute, agreement.number)
    data = await render(facts, version, draft=False)
    key = new_key(DRAFT_KIND, dispute_id, "pdf")
    await spool.put_bytes(key, data)
    stored = StoredObject(
        key=key,
        kind=DRAFT_KIND,
        dispute_id=dispute_id,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="application/pdf",
        write_once=True,
        status="pending",
        next_attempt_at=datetime.now(UTC),
        created_by_id=principal.user_id,
    )
    db.add(stored)
    await db.flush()
    version.pdf_object_id, version.pdf_sha256 = stored.id, stored.sha256
    agreement.state, agreement.signing_version = "signing", version.version
    await db.flush()
    await _audit(
        db, principal, agreement, "put_up_for_signing",
        version=version.version, sha256=version.sha256, pdf_sha256=stored.sha256,
        size=stored.size, object_id=stored.id,
    )  # fmt: skip
    return SigningView(agreement, version, stored, stored.sha256)


async def for_signing(db: AsyncSession, principal: Principal, dispute_id: int) -> SigningView:
    """The agreement's version out for signing, for someone who may see the dispute;
    :class:`Conflict` when none is."""
    await access.dispute_for(db, principal, dispute_id)
    agreement = await db.scalar(select(Agreement).where(Agreement.dispute_id == dispute_id))
    if agreement is None or agreement.state != "signing" or agreement.signing_version is None:
        raise Conflict(N_("No agreement is out for signing."))
    version = await _version(db, agreement, agreement.signing_version)
    stored = await db.get(StoredObject, version.pdf_object_id) if version.pdf_object_id else None
    if stored is None:
        raise Conflict(N_("No agreement is out for signing."))
    return SigningView(agreement, version, stored, version.pdf_sha256)


# reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionInfo:
    version: AgreementVersion
    author: str


@dataclass(frozen=True)
class AgreementState:
    """What the caller may see of a dispute's agreement, and may do with it."""

    dispute: Dispute
    agreement: Agreement | None
    current: AgreementVersion | None
    versions: list[VersionInfo]  # every version for staff; none for the parties' side
    authors: dict[int, str]  # version -> who saved it
    signing: AgreementVersion | None
    parties: list[DisputeParty]
    may_edit: bool
    may_start: bool

    @property
    def current_terms(self) -> dict[str, Any]:
        return terms_of(self.current) if self.current is not None else {}


async def state(db: AsyncSession, principal: Principal, dispute_id: int) -> AgreementState:
    dispute = await access.dispute_for(db, principal, dispute_id)
    agreement = await db.scalar(select(Agreement).where(Agreement.dispute_id == dispute_id))
    drafter = may_draft(principal, dispute)
    open_for_drafting = dispute.status in DRAFTING_STATUSES
    parties = list(
        await db.scalars(
            select(DisputeParty)
            .where(DisputeParty.dispute_id == dispute_id)
            .order_by(DisputeParty.id)
        )
    )
    if agreement is None:
        return AgreementState(
            dispute, None, None, [], {}, None, parties, False, drafter and open_for_drafting
        )
    rows = (
        await db.execute(
            select(AgreementVersion, User.name)
            .outerjoin(User, User.id == AgreementVersion.created_by_id)
            .where(AgreementVersion.agreement_id == agreement.id)
            .order_by(AgreementVersion.version)
        )
    ).all()
    by_number = {v.version: v for v, _ in rows}
    versions = (
        [VersionInfo(v, name or "") for v, name in reversed(rows)]
        if principal.role.is_staff
        else []
    )
    signing = (
        by_number.get(agreement.signing_version)
        if agreement.state == "signing" and agreement.signing_version
        else None
    )
    return AgreementState(
        dispute=dispute,
        agreement=agreement,
        current=by_number.get(agreement.current_version),
        versions=versions,
        authors={v.version: name or "" for v, name in rows},
        signing=signing,
        parties=parties,
        may_edit=drafter and open_for_drafting and agreement.state in EDITABLE_STATES,
        may_start=False,
    )


async def readable_version(
    db: AsyncSession, principal: Principal, dispute_id: int, number: int
) -> tuple[Agreement, AgreementVersion]:
    """One version, if the caller may read it: staff any, the parties' side the current
    one and those put up for signing."""
    await access.dispute_for(db, principal, dispute_id)
    agreement = await db.scalar(select(Agreement).where(Agreement.dispute_id == dispute_id))
    if agreement is None:
        raise NotFound(N_("No such version of the agreement."))
    version = await _version(db, agreement, number)
    shown_to_parties = number == agreement.current_version or version.pdf_object_id is not None
    if not principal.role.is_staff and not shown_to_parties:
        raise NotFound(N_("No such version of the agreement.")).audited(
            "access.denied", dispute_id=dispute_id, agreement_version=number
        )
    return agreement, version


@dataclass(frozen=True)
class VersionPdf:
    """A version's PDF: the stored one once put up for signing, else made now (a draft)."""

    agreement: Agreement
    version: AgreementVersion
    stored: StoredObject | None
    data: bytes | None


async def version_pdf(
    db: AsyncSession, principal: Principal, dispute_id: int, number: int
) -> VersionPdf:
    agreement, version = await readable_version(db, principal, dispute_id, number)
    if version.pdf_object_id is not None:
        stored = await db.get(StoredObject, version.pdf_object_id)
        if stored is not None:
            return VersionPdf(agreement, version, stored, None)
    dispute = await db.get(Dispute, dispute_id)
    assert dispute is not None
    facts = await templates.dispute_facts(db, dispute, agreement.number)
    return VersionPdf(agreement, version, None, await render(facts, version, draft=True))
