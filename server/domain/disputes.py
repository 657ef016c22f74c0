"""Dispute vocabulary: types and workflow states, with their display labels.

The state machine itself (moves, guards, deadlines) is built on these names.
"""

from __future__ import annotations

from enum import StrEnum

from server.domain.errors import N_


class DisputeType(StrEnum):
    LOAN = "loan"
    SALE = "sale"
    TRAFFIC = "traffic"
    LABOUR = "labour"
    FAMILY = "family"
    PROPERTY = "property"
    CONSUMER = "consumer"
    OTHER = "other"


class DisputeStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    TRIAGED = "triaged"
    MEDIATOR_ASSIGNED = "mediator_assigned"
    MEDIATING = "mediating"
    AGREEMENT_SIGNED = "agreement_signed"
    CONFIRMATION = "confirmation"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    FILED = "filed"
    CLOSED = "closed"


TYPE_LABELS = {
    DisputeType.LOAN: N_("Private lending"),
    DisputeType.SALE: N_("Sale contract"),
    DisputeType.TRAFFIC: N_("Traffic accident"),
    DisputeType.LABOUR: N_("Labour"),
    DisputeType.FAMILY: N_("Marriage and family"),
    DisputeType.PROPERTY: N_("Property"),
    DisputeType.CONSUMER: N_("Consumer"),
    DisputeType.OTHER: N_("Other"),
}

STATUS_LABELS = {
    DisputeStatus.DRAFT: N_("Draft"),
    DisputeStatus.SUBMITTED: N_("Submitted"),
    DisputeStatus.TRIAGED: N_("Triaged"),
    DisputeStatus.MEDIATOR_ASSIGNED: N_("Mediator assigned"),
    DisputeStatus.MEDIATING: N_("Mediating"),
    DisputeStatus.AGREEMENT_SIGNED: N_("Agreement signed"),
    DisputeStatus.CONFIRMATION: N_("Judicial confirmation"),
    DisputeStatus.CONFIRMED: N_("Confirmed"),
    DisputeStatus.FAILED: N_("Mediation failed"),
    DisputeStatus.FILED: N_("Filed as a case"),
    DisputeStatus.CLOSED: N_("Closed"),
}

ROLE_LABELS = {
    "party": N_("Party"),
    "agent": N_("Agent"),
    "mediator": N_("Mediator"),
    "triage_officer": N_("Triage officer"),
    "judge": N_("Judge"),
    "clerk": N_("Clerk"),
    "court_admin": N_("Court admin"),
    "applicant": N_("Applicant"),
    "respondent": N_("Respondent"),
    "third_party": N_("Third party"),
}


def type_label(value: str) -> str:
    try:
        return TYPE_LABELS[DisputeType(value)]
    except ValueError:
        return value


def status_label(value: str) -> str:
    try:
        return STATUS_LABELS[DisputeStatus(value)]
    except ValueError:
        return value


def role_label(value: str) -> str:
    return ROLE_LABELS.get(value, value)
