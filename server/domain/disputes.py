"""Dispute vocabulary: types, workflow states, complexity and the grounds that end a
mediation, with their display labels.

The state machine itself (moves, guards) is in ``workflow``; deadlines in ``calendar``.
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
    """Where a dispute stands; see ``workflow.TRANSITIONS`` for the moves between them."""

    DRAFT = "draft"  # being written, not yet filed
    SUBMITTED = "submitted"  # filed, waiting for the automatic triage
    TRIAGED = "triaged"  # triage result recorded, waiting for the triage officer
    AWAITING_MEDIATOR = "awaiting_mediator"  # to be chosen jointly or assigned by the court
    MEDIATOR_ASSIGNED = "mediator_assigned"  # proposed to a mediator, who accepts or declines
    MEDIATING = "mediating"  # the mediator accepted; sessions run
    AGREEMENT_REACHED = "agreement_reached"  # agreement (full or partial) drafted for signing
    AGREEMENT_SIGNED = "agreement_signed"  # every party signed (调解规则 Art. 19)
    CONFIRMATION = "confirmation"  # judicial confirmation applied for
    CONFIRMED = "confirmed"  # the court confirmed the agreement
    CONFIRMATION_REJECTED = "confirmation_rejected"  # the court rejected the application
    FAILED = "failed"  # mediation ended without agreement; the applicant chooses
    FILING_PENDING = "filing_pending"  # filing package in the case-filing queue
    FILED = "filed"  # registered as a case; fast-track hearing
    JUDGED = "judged"  # judgment given
    SERVED = "served"  # ruling or judgment served
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


TERMINAL_STATUSES = frozenset({DisputeStatus.CLOSED, DisputeStatus.WITHDRAWN})


class Complexity(StrEnum):
    SIMPLE = "simple"
    COMPLEX = "complex"


class TerminationGround(StrEnum):
    """The eight grounds on which online mediation ends (人民法院在线调解规则 Art. 25)."""

    AGREEMENT_REACHED = "agreement_reached"  # (一) 当事人达成调解协议
    SETTLED_AND_WITHDRAWN = "settled_and_withdrawn"  # (二) 当事人自行和解，撤回调解申请
    PARTY_UNREACHABLE = "party_unreachable"  # (三) 在调解期限内无法联系到当事人
    PARTY_UNWILLING = "party_unwilling"  # (四) 当事人一方明确表示不愿意继续调解
    IRRECONCILABLE = "irreconcilable"  # (五) 当事人分歧较大且难以达成调解协议
    PERIOD_EXPIRED = "period_expired"  # (六) 调解期限届满，未达成协议，且未合意延长
    REFUSED_TO_SIGN = "refused_to_sign"  # (七) 当事人一方拒绝在调解协议上签章
    OTHER = "other"  # (八) 其他导致调解无法进行的情形


# The grounds on which a mediation fails; (一) is an agreement and (二) a withdrawal.
FAILURE_GROUNDS = frozenset(TerminationGround) - {
    TerminationGround.AGREEMENT_REACHED,
    TerminationGround.SETTLED_AND_WITHDRAWN,
}


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
    DisputeStatus.AWAITING_MEDIATOR: N_("Awaiting a mediator"),
    DisputeStatus.MEDIATOR_ASSIGNED: N_("Mediator assigned"),
    DisputeStatus.MEDIATING: N_("Mediating"),
    DisputeStatus.AGREEMENT_REACHED: N_("Agreement reached, awaiting signatures"),
    DisputeStatus.AGREEMENT_SIGNED: N_("Agreement signed"),
    DisputeStatus.CONFIRMATION: N_("Judicial confirmation"),
    DisputeStatus.CONFIRMED: N_("Confirmed"),
    DisputeStatus.CONFIRMATION_REJECTED: N_("Confirmation rejected"),
    DisputeStatus.FAILED: N_("Mediation failed"),
    DisputeStatus.FILING_PENDING: N_("Pushed to case filing"),
    DisputeStatus.FILED: N_("Filed as a case"),
    DisputeStatus.JUDGED: N_("Judgment given"),
    DisputeStatus.SERVED: N_("Documents served"),
    DisputeStatus.CLOSED: N_("Closed"),
    DisputeStatus.WITHDRAWN: N_("Withdrawn"),
}

COMPLEXITY_LABELS = {
    Complexity.SIMPLE: N_("Simple"),
    Complexity.COMPLEX: N_("Complex"),
}

GROUND_LABELS = {
    TerminationGround.AGREEMENT_REACHED: N_("The parties reached a mediation agreement"),
    TerminationGround.SETTLED_AND_WITHDRAWN: N_(
        "The parties settled between themselves and withdrew the application"
    ),
    TerminationGround.PARTY_UNREACHABLE: N_(
        "A party could not be contacted within the mediation period"
    ),
    TerminationGround.PARTY_UNWILLING: N_("A party expressly declined to continue mediation"),
    TerminationGround.IRRECONCILABLE: N_(
        "The parties' differences are wide and an agreement is hard to reach"
    ),
    TerminationGround.PERIOD_EXPIRED: N_(
        "The mediation period expired without an agreement and the parties did not agree to extend it"
    ),
    TerminationGround.REFUSED_TO_SIGN: N_("A party refused to sign the mediation agreement"),
    TerminationGround.OTHER: N_("Other circumstances made mediation impossible"),
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


def complexity_label(value: str) -> str:
    try:
        return COMPLEXITY_LABELS[Complexity(value)]
    except ValueError:
        return value


def ground_label(value: str) -> str:
    try:
        return GROUND_LABELS[TerminationGround(value)]
    except ValueError:
        return value
