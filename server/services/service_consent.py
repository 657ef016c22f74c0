"""A party's consent to electronic service and the address to serve at (诉讼规则 Art. 29):
given (or withdrawn) by the party themselves on their dispute's page, kept as a new
Consent row each time (the latest answer decides, see e_service.consent_basis), audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import Consent, DisputeParty
from server.domain.errors import N_, Forbidden, Invalid
from server.services.e_service import CONSENT_MATTER, consent_basis
from server.services.users import EMAIL

NOT_A_PARTY = N_("Only a party of the dispute gives their own consent to electronic service.")
BAD_EMAIL = N_("Enter a valid email address.")


@dataclass(frozen=True)
class ServiceChoice:
    party: DisputeParty
    consented: bool  # electronic service may go ahead (consent, or the application's email)
    email: str


async def _own_party(db: AsyncSession, principal: Principal, dispute_id: int) -> DisputeParty:
    await access.dispute_for(db, principal, dispute_id)
    party = await db.scalar(
        select(DisputeParty).where(
            DisputeParty.dispute_id == dispute_id, DisputeParty.user_id == principal.user_id
        )
    )
    if party is None:
        raise Forbidden(NOT_A_PARTY).audited(
            "access.denied", dispute_id=dispute_id, permission="service.consent"
        )
    return party


async def choice(db: AsyncSession, principal: Principal, dispute_id: int) -> ServiceChoice | None:
    """The caller's own answer, if they are a party of the dispute; else None."""
    try:
        party = await _own_party(db, principal, dispute_id)
    except Forbidden:
        return None
    basis = await consent_basis(db, party)
    return ServiceChoice(party, basis is not None, party.email)


async def record(
    db: AsyncSession, principal: Principal, dispute_id: int, *, granted: bool, email: str
) -> ServiceChoice:
    """Consent (with the address to serve at, optional: the platform inbox always serves)
    or refuse electronic service."""
    party = await _own_party(db, principal, dispute_id)
    address = email.strip()
    if address and (len(address) > 254 or not EMAIL.match(address)):
        raise Invalid(BAD_EMAIL, field="email")
    if granted:
        party.email = address
    consent = Consent(
        dispute_id=dispute_id,
        party_id=party.id,
        stage="service",
        matter=CONSENT_MATTER,
        granted=granted,
        method="online",
        recorded_by_id=principal.user_id,
    )
    db.add(consent)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "service.consent_recorded",
            principal.actor(),
            "dispute_party",
            party.id,
            dispute_id=dispute_id,
            details={"granted": granted, "email": bool(address) and granted},
        ),
    )
    return ServiceChoice(party, granted, party.email)
