"""Signing the mediation agreement (调解规则 Art. 19): the one place its signatures change.

A version of the agreement is out for signing as a PDF whose SHA-256 every signer sees.
Each party signs for themselves, or an agent with special authority signs for the party
they represent, and the mediator signs; each signer draws their signature (a PNG, kept
write-once with its SHA-256) after a fresh one-time code, naming the exact hash they
read. A party's (or their authorised agent's) refusal to sign ends the mediation
(调解规则 Art. 25 (七)). When every party and the mediator have signed, the agreement
takes effect: its state, the dispute's workflow and the final PDF (with the signatures,
an audit page and the platform's PAdES signature) follow in the same unit of work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.config import Settings
from server.db.models import (
    Agreement,
    AgreementSignature,
    AgreementVersion,
    Dispute,
    DisputeAgent,
    DisputeParty,
    Document,
    StoredObject,
    User,
)
from server.domain import commands as cmd
from server.domain.disputes import DisputeStatus, TerminationGround
from server.domain.errors import (
    N_,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    ReverificationRequired,
)
from server.domain.roles import Role
from server.services import agreement_final, agreements, workflow
from server.services.rooms import SEATS
from storage.base import ObjectStore
from storage.keys import new_key
from storage.spool import Spool

SIGNATURE_IMAGE = "signature_image"  # the stored object kind of a drawn signature
DRAFT_KIND = "agreement_draft"  # the PDF put up for signing
MAX_IMAGE_BYTES = 256 * 1024
MIN_WIDTH, MIN_HEIGHT = 64, 32
MAX_WIDTH, MAX_HEIGHT = 4096, 2048
MIN_INK_PIXELS = 40  # drawn, visible pixels that make a signature more than a dot
MAX_REASON = 1000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHA256 = re.compile(r"[0-9a-f]{64}")

PARTY, AGENT, MEDIATOR = "party", "agent", "mediator"
SIGNED, REFUSED = "signed", "refused"
ONE_TIME_CODE = "one_time_code"  # identity checked again with a fresh one-time code
SPECIAL_AUTHORITY = "special"

NOTHING_OUT = N_("No agreement is out for signing.")
NOT_SIGNING_NOW = N_("This agreement is no longer open for signing.")
CHANGED = N_(
    "The agreement changed since you opened it. Read the current version (SHA-256 %(sha256)s) and sign that."
)
ALREADY_SIGNED = N_("You have already signed this version of the agreement.")
ALREADY_REFUSED = N_("You have already refused to sign this version of the agreement.")
PARTY_ANSWERED = N_("This party has already signed or refused this version of the agreement.")
NOT_A_SIGNER = N_(
    "You do not sign this agreement: only its parties, their agents with special authority and the mediator do."
)
NO_SPECIAL_AUTHORITY = N_(
    "Signing or refusing the agreement for a party needs an agent's special authority."
)
ONLY_PARTIES_REFUSE = N_(
    "Only a party, or an agent with special authority, can refuse to sign the agreement."
)
NOT_PNG = N_("The signature must be a PNG image.")
IMAGE_TOO_LARGE = N_("The signature image is too large (at most %(kb)s KB).")
IMAGE_SIZE = N_(
    "The signature image must be between %(min_width)s×%(min_height)s and %(max_width)s×%(max_height)s pixels."
)
IMAGE_BLANK = N_("The signature is empty: draw your signature first.")
REASON_NEEDED = N_("Say why you refuse to sign (at most %(n)s characters).")
DECISION_LABELS = {SIGNED: N_("Signed"), REFUSED: N_("Refused to sign")}
REFUSAL_REPORT = (
    "{name}（{capacity}）拒绝在调解协议 {number} 上签章 / refused to sign the agreement: {reason}"
)


# --- what is out for signing ----------------------------------------------------------


@dataclass(frozen=True)
class OutForSigning:
    """The agreement, the version whose PDF is out for signing, and that PDF."""

    agreement: Agreement
    version: AgreementVersion
    pdf: StoredObject


async def _agreement(db: AsyncSession, dispute_id: int) -> Agreement:
    agreement = await db.scalar(select(Agreement).where(Agreement.dispute_id == dispute_id))
    if agreement is None or agreement.signing_version is None:
        raise Conflict(NOTHING_OUT)
    return agreement


async def _version(db: AsyncSession, agreement: Agreement) -> OutForSigning:
    version = await db.scalar(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == agreement.id,
            AgreementVersion.version == agreement.signing_version,
        )
    )
    if version is None or version.pdf_object_id is None or not version.pdf_sha256:
        raise Conflict(NOTHING_OUT)
    pdf = await db.get(StoredObject, version.pdf_object_id)
    if pdf is None:
        raise Conflict(NOTHING_OUT)
    return OutForSigning(agreement, version, pdf)


async def _out_for_signing(
    db: AsyncSession, principal: Principal, dispute: Dispute
) -> OutForSigning:
    """The version out for signing now (Conflict when none is), its agreement row locked:
    signers of one agreement go one at a time, so the last one sees all the others."""
    view = await agreements.for_signing(db, principal, dispute.id)
    agreement = await db.scalar(
        select(Agreement)
        .where(Agreement.id == view.agreement.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if (
        agreement is None
        or agreement.state != "signing"
        or agreement.signing_version != view.version.version
        or workflow.state_of(dispute).status is not DisputeStatus.AGREEMENT_REACHED
    ):
        raise Conflict(NOT_SIGNING_NOW)
    return OutForSigning(agreement, view.version, view.stored)


# --- who signs ------------------------------------------------------------------------


def _side(value: str) -> str:
    return value if value in ("applicant", "respondent") else "third_party"


@dataclass(frozen=True)
class Capacity:
    """In what capacity someone signs: for themselves, for a party, as the mediator."""

    role: str  # party, agent, mediator
    party_id: int | None  # the party signed for (None: the mediator)
    name: str  # the signer's own name
    party_name: str  # the party's name ("" for the mediator)
    seat: str  # msgid: Applicant, Respondent's agent, Mediator, ...


async def capacity_of(db: AsyncSession, principal: Principal, dispute: Dispute) -> Capacity | None:
    """The caller's capacity as a signer of the dispute's agreement, or None."""
    if principal.role is Role.MEDIATOR and dispute.mediator_user_id == principal.user_id:
        return Capacity(MEDIATOR, None, principal.name, "", SEATS["mediator"])
    own = await db.scalar(
        select(DisputeParty)
        .where(DisputeParty.dispute_id == dispute.id, DisputeParty.user_id == principal.user_id)
        .order_by(DisputeParty.id)
        .limit(1)
    )
    if own is not None:
        return Capacity(PARTY, own.id, own.name, own.name, SEATS[_side(own.side)])
    agency = (
        await db.execute(
            select(DisputeAgent, DisputeParty)
            .join(DisputeParty, DisputeParty.id == DisputeAgent.party_id)
            .where(
                DisputeAgent.dispute_id == dispute.id,
                DisputeAgent.user_id == principal.user_id,
                DisputeAgent.authority == SPECIAL_AUTHORITY,
            )
            .order_by(DisputeAgent.id)
            .limit(1)
        )
    ).first()
    if agency is not None:
        agent, party = agency
        return Capacity(
            AGENT, party.id, agent.name, party.name, SEATS[f"{_side(party.side)}_agent"]
        )
    return None


async def _is_general_agent(db: AsyncSession, principal: Principal, dispute_id: int) -> bool:
    found = await db.scalar(
        select(DisputeAgent.id).where(
            DisputeAgent.dispute_id == dispute_id, DisputeAgent.user_id == principal.user_id
        )
    )
    return found is not None


@dataclass(frozen=True)
class Expected:
    """One signature the agreement needs: each party's (by themselves or their
    authorised agent) and the mediator's, with the answer given, if any."""

    party_id: int | None  # None: the mediator
    name: str  # the party's (or the mediator's) name
    seat: str  # msgid
    answer: AgreementSignature | None

    @property
    def signed(self) -> bool:
        return self.answer is not None and self.answer.decision == SIGNED


async def _answers(db: AsyncSession, agreement: Agreement) -> list[AgreementSignature]:
    return list(
        await db.scalars(
            select(AgreementSignature)
            .where(
                AgreementSignature.agreement_id == agreement.id,
                AgreementSignature.version == agreement.signing_version,
            )
            .order_by(AgreementSignature.at, AgreementSignature.id)
        )
    )


async def expected_signers(
    db: AsyncSession, dispute: Dispute, agreement: Agreement
) -> list[Expected]:
    answers = await _answers(db, agreement)
    by_party = {a.party_id: a for a in answers if a.party_id is not None}
    parties = await db.scalars(
        select(DisputeParty).where(DisputeParty.dispute_id == dispute.id).order_by(DisputeParty.id)
    )
    expected = [Expected(p.id, p.name, SEATS[_side(p.side)], by_party.get(p.id)) for p in parties]
    mediator = await db.get(User, dispute.mediator_user_id) if dispute.mediator_user_id else None
    mediator_answer = next((a for a in answers if a.signer_role == MEDIATOR), None)
    expected.append(
        Expected(None, mediator.name if mediator else "", SEATS["mediator"], mediator_answer)
    )
    return expected


# --- the caller's view ----------------------------------------------------------------


@dataclass(frozen=True)
class SigningState:
    """The agreement's signing as the caller sees it."""

    dispute_id: int
    dispute_number: str
    number: str
    state: str  # signing, signed, refused (drafting: nothing out yet)
    version: int
    pdf_sha256: str
    text_sha256: str
    pdf_size: int
    expected: tuple[Expected, ...]
    me: Capacity | None
    mine: AgreementSignature | None
    reverified: bool  # the caller's one-time code is fresh enough to sign now
    signed_at: datetime | None
    final_document_id: int | None
    final_sha256: str

    @property
    def may_sign(self) -> bool:
        return self.state == "signing" and self.me is not None and self.mine is None

    @property
    def may_refuse(self) -> bool:
        return self.may_sign and self.me is not None and self.me.role != MEDIATOR

    @property
    def missing(self) -> tuple[Expected, ...]:
        return tuple(e for e in self.expected if not e.signed)


def _fresh(principal: Principal, minutes: int) -> bool:
    try:
        access.require_reverified(principal, minutes)
    except ReverificationRequired:
        return False
    return True


async def state(
    db: AsyncSession, principal: Principal, dispute_id: int, *, reverify_minutes: int
) -> SigningState:
    """Who signs, who has signed and who has not (anyone who may see the dispute)."""
    dispute = await access.dispute_for(db, principal, dispute_id)
    agreement = await _agreement(db, dispute.id)
    out = await _version(db, agreement)
    me = await capacity_of(db, principal, dispute)
    expected = await expected_signers(db, dispute, agreement)
    mine = next(
        (
            e.answer
            for e in expected
            if e.answer is not None and e.answer.user_id == principal.user_id
        ),
        None,
    )
    return SigningState(
        dispute_id=dispute.id,
        dispute_number=dispute.number,
        number=agreement.number,
        state=agreement.state,
        version=out.version.version,
        pdf_sha256=out.version.pdf_sha256,
        text_sha256=out.version.sha256,
        pdf_size=out.pdf.size,
        expected=tuple(expected),
        me=me,
        mine=mine,
        reverified=_fresh(principal, reverify_minutes),
        signed_at=agreement.signed_at,
        final_document_id=agreement.final_document_id,
        final_sha256=agreement.final_sha256,
    )


async def draft_pdf(db: AsyncSession, principal: Principal, dispute_id: int) -> StoredObject:
    """The PDF out for signing (or signed), for anyone who may see the dispute."""
    dispute = await access.dispute_for(db, principal, dispute_id)
    return (await _version(db, await _agreement(db, dispute.id))).pdf


# --- checking the drawn signature -------------------------------------------------------


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    sha256: str
    width: int
    height: int


def decode_image(text: str) -> bytes:
    """The PNG bytes of a base64 (or ``data:image/png;base64,``) string."""
    payload = text.strip()
    if payload.startswith("data:"):
        head, _, payload = payload.partition(",")
        if head.lower() != "data:image/png;base64":
            raise Invalid(NOT_PNG, field="image")
    if len(payload) > (MAX_IMAGE_BYTES * 4) // 3 + 8:
        raise Invalid(IMAGE_TOO_LARGE, field="image", kb=MAX_IMAGE_BYTES // 1024)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(NOT_PNG, field="image") from None


def check_image(data: bytes) -> CheckedImage:
    """A real PNG of a sensible size that shows something drawn (Invalid otherwise)."""
    if len(data) > MAX_IMAGE_BYTES:
        raise Invalid(IMAGE_TOO_LARGE, field="image", kb=MAX_IMAGE_BYTES // 1024)
    if len(data) < 33 or not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        raise Invalid(NOT_PNG, field="image")
    width, height = struct.unpack(">II", data[16:24])  # read before anything is decoded
    if not (MIN_WIDTH <= width <= MAX_WIDTH and MIN_HEIGHT <= height <= MAX_HEIGHT):
        raise Invalid(
            IMAGE_SIZE,
            field="image",
            min_width=MIN_WIDTH,
            min_height=MIN_HEIGHT,
            max_width=MAX_WIDTH,
            max_height=MAX_HEIGHT,
        )
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()
            rgba = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise Invalid(NOT_PNG, field="image") from None
    if _ink(rgba) < MIN_INK_PIXELS:
        raise Invalid(IMAGE_BLANK, field="image")
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), width, height)


def _ink(image: Image.Image) -> int:
    """Pixels that show on white paper: not (nearly) transparent, and not (nearly) white."""
    visible = image.getchannel("A").point(lambda a: 255 if a >= 48 else 0)
    dark = image.convert("L").point(lambda v: 255 if v < 200 else 0)
    both = Image.composite(dark, Image.new("L", image.size, 0), visible)
    return both.histogram()[255]


# --- signing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    signature: AgreementSignature
    complete: bool  # the last signature: the agreement took effect
    final: Document | None  # the final PDF, when complete


def _rejected(error: DomainError, dispute_id: int, what: str, **details: Any) -> DomainError:
    """An attempt refused: the error keeps an audit row though the request rolls back."""
    return error.audited(f"agreement.{what}_rejected", dispute_id=dispute_id, **details)


async def _signer(db: AsyncSession, principal: Principal, dispute: Dispute, what: str) -> Capacity:
    me = await capacity_of(db, principal, dispute)
    if me is None:
        general = await _is_general_agent(db, principal, dispute.id)
        raise _rejected(
            Forbidden(NO_SPECIAL_AUTHORITY if general else NOT_A_SIGNER),
            dispute.id,
            what,
            reason="not_a_signer",
        )
    return me


def _reverified(principal: Principal, minutes: int, dispute_id: int, what: str) -> None:
    try:
        access.require_reverified(principal, minutes)
    except ReverificationRequired as error:
        raise _rejected(error, dispute_id, what, reason="reverification_required") from None


async def _not_answered(
    db: AsyncSession, principal: Principal, out: OutForSigning, me: Capacity, what: str
) -> None:
    answers = await _answers(db, out.agreement)
    earlier = next(
        (
            a
            for a in answers
            if a.user_id == principal.user_id
            or (me.party_id is not None and a.party_id == me.party_id)
        ),
        None,
    )
    if earlier is not None:
        if earlier.user_id != principal.user_id:
            message = PARTY_ANSWERED
        else:
            message = ALREADY_SIGNED if earlier.decision == SIGNED else ALREADY_REFUSED
        raise _rejected(
            Conflict(message),
            out.agreement.dispute_id,
            what,
            reason="already_" + earlier.decision,
            signature_id=earlier.id,
            version=out.version.version,
        )


async def sign(
    db: AsyncSession,
    spool: Spool,
    principal: Principal,
    dispute_id: int,
    *,
    document_sha256: str,
    image_png: bytes,
    ip: str,
    user_agent: str,
    store: ObjectStore,
    settings: Settings,
) -> Signed:
    """Record the caller's signature of the PDF out for signing (the one whose SHA-256
    they were shown); the last one makes the agreement take effect."""
    dispute = await access.dispute_for(db, principal, dispute_id)
    me = await _signer(db, principal, dispute, "sign")
    out = await _out_for_signing(db, principal, dispute)
    _reverified(principal, settings.reverify_minutes, dispute.id, "sign")
    await _not_answered(db, principal, out, me, "sign")
    sent = document_sha256.strip().lower()
    if sent != out.version.pdf_sha256:
        raise _rejected(
            Conflict(CHANGED, field="document_sha256", sha256=out.version.pdf_sha256),
            dispute.id,
            "sign",
            reason="stale_hash",
            sent=sent[:64] if SHA256.fullmatch(sent[:64]) else "",
            current=out.version.pdf_sha256,
        )
    try:
        image = check_image(image_png)
    except Invalid as error:
        raise _rejected(error, dispute.id, "sign", reason="bad_image") from None
    stored = await _store_image(db, spool, principal, dispute.id, image)
    now = datetime.now(UTC)
    signature = AgreementSignature(
        agreement_id=out.agreement.id,
        version=out.version.version,
        user_id=principal.user_id,
        party_id=me.party_id,
        signer_role=me.role,
        name=me.name,
        decision=SIGNED,
        document_sha256=out.version.pdf_sha256,
        image_object_id=stored.id,
        image_sha256=image.sha256,
        method=ONE_TIME_CODE,
        ip=ip[:64],
        user_agent=user_agent[:400],
        at=now,
    )
    db.add(signature)
    await db.flush()
    event = await audit.append(
        db,
        AuditEntry(
            "agreement.signed",
            principal.actor(),
            "agreement_signature",
            signature.id,
            dispute_id=dispute.id,
            details={
                "agreement_id": out.agreement.id,
                "number": out.agreement.number,
                "version": out.version.version,
                "signer_role": me.role,
                "party_id": me.party_id,
                "party_name": me.party_name,
                "name": me.name,
                "document_sha256": out.version.pdf_sha256,
                "text_sha256": out.version.sha256,
                "image_sha256": image.sha256,
                "image_object_id": stored.id,
                "method": ONE_TIME_CODE,
                "reverified_at": principal.reverified_at,
                "ip": ip[:64],
                "user_agent": user_agent[:400],
                "at": now,
            },
        ),
    )
    signature.at = event.at  # the signature's time is the audit row's, to the microsecond
    await db.flush()
    expected = await expected_signers(db, dispute, out.agreement)
    if not all(e.signed for e in expected):
        return Signed(signature, False, None)
    final = await _take_effect(db, store, spool, settings, dispute, out, len(expected))
    return Signed(signature, True, final)


async def _store_image(
    db: AsyncSession, spool: Spool, principal: Principal, dispute_id: int, image: CheckedImage
) -> StoredObject:
    key = new_key(SIGNATURE_IMAGE, dispute_id, "png")
    await spool.put_bytes(key, image.data)
    stored = StoredObject(
        key=key,
        kind=SIGNATURE_IMAGE,
        dispute_id=dispute_id,
        size=len(image.data),
        sha256=image.sha256,
        content_type="image/png",
        write_once=True,
        status="pending",
        next_attempt_at=datetime.now(UTC),
        created_by_id=principal.user_id,
    )
    db.add(stored)
    await db.flush()
    return stored


async def _take_effect(
    db: AsyncSession,
    store: ObjectStore,
    spool: Spool,
    settings: Settings,
    dispute: Dispute,
    out: OutForSigning,
    signers: int,
) -> Document:
    """Everyone has signed: the agreement takes effect (调解规则 Art. 19)."""
    agreement = out.agreement
    agreement.state = "signed"
    agreement.signed_at = datetime.now(UTC)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "agreement.completed",
            object_type="agreement",
            object_id=agreement.id,
            dispute_id=dispute.id,
            details={
                "number": agreement.number,
                "version": out.version.version,
                "document_sha256": out.version.pdf_sha256,
                "signatures": signers,
                "after": {"state": "signed"},
            },
        ),
    )
    # the platform records what the signatures show, whoever signed last
    await workflow.execute(
        db,
        None,
        dispute.id,
        cmd.RecordAllSignatures(),
        calendar=workflow.calendar_for(settings),
    )
    return await agreement_final.issue(db, store, spool, settings, agreement.id)


# --- refusing -------------------------------------------------------------------------


async def refuse(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    reason: str,
    *,
    ip: str = "",
    user_agent: str = "",
    settings: Settings,
) -> AgreementSignature:
    """A party (or their authorised agent) refuses to sign: the mediation ends
    (调解规则 Art. 25 (七))."""
    dispute = await access.dispute_for(db, principal, dispute_id)
    me = await _signer(db, principal, dispute, "refusal")
    if me.role == MEDIATOR:
        raise _rejected(Forbidden(ONLY_PARTIES_REFUSE), dispute.id, "refusal", reason="mediator")
    out = await _out_for_signing(db, principal, dispute)
    _reverified(principal, settings.reverify_minutes, dispute.id, "refusal")
    await _not_answered(db, principal, out, me, "refusal")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise Invalid(REASON_NEEDED, field="reason", n=MAX_REASON)
    now = datetime.now(UTC)
    refusal = AgreementSignature(
        agreement_id=out.agreement.id,
        version=out.version.version,
        user_id=principal.user_id,
        party_id=me.party_id,
        signer_role=me.role,
        name=me.name,
        decision=REFUSED,
        document_sha256=out.version.pdf_sha256,
        method=ONE_TIME_CODE,
        ip=ip[:64],
        user_agent=user_agent[:400],
        reason=reason,
        at=now,
    )
    db.add(refusal)
    out.agreement.state = "refused"
    await db.flush()
    event = await audit.append(
        db,
        AuditEntry(
            "agreement.refused",
            principal.actor(),
            "agreement_signature",
            refusal.id,
            dispute_id=dispute.id,
            details={
                "agreement_id": out.agreement.id,
                "number": out.agreement.number,
                "version": out.version.version,
                "signer_role": me.role,
                "party_id": me.party_id,
                "party_name": me.party_name,
                "name": me.name,
                "document_sha256": out.version.pdf_sha256,
                "reason": reason,
                "method": ONE_TIME_CODE,
                "after": {"state": "refused"},
            },
        ),
    )
    refusal.at = event.at
    report = REFUSAL_REPORT.format(
        name=me.name, capacity=me.party_name or me.name, number=out.agreement.number, reason=reason
    )
    # RecordFailure is the mediator's command; a party's refusal ends the mediation by
    # itself, so the platform records it
    await workflow.execute(
        db,
        None,
        dispute.id,
        cmd.RecordFailure(
            grounds=frozenset({TerminationGround.REFUSED_TO_SIGN}), report=report[:2000]
        ),
        calendar=workflow.calendar_for(settings),
    )
    await db.flush()
    return refusal


def decision_label(decision: str) -> str:
    return DECISION_LABELS.get(decision, decision)
