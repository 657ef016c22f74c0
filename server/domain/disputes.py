"""Disputes: types, workflow statuses, complexity, the grounds that end a mediation
and their display labels; the ``DisputeState`` record the workflow keeps, and the
time limits running on it.

The moves between states are in ``workflow``; the working-day clock in ``calendar``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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

# the case-filing track, which the court's clerks work on as a whole (立案、速裁、送达)
FILING_TRACK = frozenset(
    {DisputeStatus.FILING_PENDING, DisputeStatus.FILED, DisputeStatus.JUDGED, DisputeStatus.SERVED}
)


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


# the state the workflow keeps ----------------------------------------------------


class AssignmentStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"


class RespondentConsent(StrEnum):
    NOT_ASKED = "not_asked"
    PENDING = "pending"
    GIVEN = "given"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"


class Outcome(StrEnum):
    NOT_SUITABLE = "not_suitable"
    AGREEMENT = "agreement"
    PARTIAL_AGREEMENT = "partial_agreement"
    FAILURE = "failure"
    WITHDRAWN = "withdrawn"


class ConfirmationResult(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Assignment:
    """The mediator the dispute is with, chosen by the parties or the court."""

    mediator_id: int
    jointly_chosen: bool
    assigned_at: datetime
    acceptance_due: datetime
    status: AssignmentStatus = AssignmentStatus.PROPOSED
    accepted_at: datetime | None = None


@dataclass(frozen=True)
class DisputeState:
    """What the workflow rules need to know about one dispute; never changed in place."""

    status: DisputeStatus = DisputeStatus.DRAFT
    draft_revision: int = 0
    submitted_at: datetime | None = None
    electronic_service_consent: bool = False
    # triage: the automatic result, then the officer's decision
    auto_complexity: Complexity | None = None
    triage_score: int | None = None
    triage_suitable: bool | None = None
    complexity: Complexity | None = None
    triage_overridden: bool = False
    # mediator
    assignment_due: datetime | None = None
    joint_choice_due: datetime | None = None
    assignment: Assignment | None = None
    declined_by: frozenset[int] = frozenset()
    excluded_mediators: frozenset[int] = frozenset()  # declined, conflicted or replaced
    # each side's pick while the parties may choose together (调解规则 Art. 10)
    applicant_proposal: int | None = None
    respondent_proposal: int | None = None
    # respondent (调解规则 Art. 15)
    respondent_consent: RespondentConsent = RespondentConsent.NOT_ASKED
    respondent_contact_due: datetime | None = None
    # mediation period (调解规则 Art. 24)
    period_started_at: datetime | None = None
    period_days: int = 0
    period_ends_at: datetime | None = None
    extensions: tuple[int, ...] = ()
    # sessions
    scheduled_sessions: frozenset[int] = frozenset()
    open_session: int | None = None
    held_sessions: frozenset[int] = frozenset()
    # outcome
    outcome: Outcome | None = None
    termination_grounds: frozenset[TerminationGround] = frozenset()  # Art. 25, once ended
    filing_chosen: bool | None = None
    filing_reason: str | None = None
    signed_at: datetime | None = None
    confirmation_due: datetime | None = None
    confirmation: ConfirmationResult | None = None
    case_number: str | None = None

    @property
    def mediator_id(self) -> int | None:
        return self.assignment.mediator_id if self.assignment else None

    @property
    def jointly_chosen(self) -> bool:
        return self.assignment is not None and self.assignment.jointly_chosen


INITIAL = DisputeState()


# running deadlines ---------------------------------------------------------------


class DeadlineKind(StrEnum):
    ASSIGNMENT = "assignment"
    JOINT_CHOICE = "joint_choice"
    ACCEPTANCE = "acceptance"
    RESPONDENT_ANSWER = "respondent_answer"
    MEDIATION_PERIOD = "mediation_period"
    CONFIRMATION_APPLICATION = "confirmation_application"


DEADLINE_LABELS = {
    DeadlineKind.ASSIGNMENT: N_("Assignment of a mediator"),
    DeadlineKind.JOINT_CHOICE: N_("Joint choice of a mediator"),
    DeadlineKind.ACCEPTANCE: N_("Mediator's answer to the assignment"),
    DeadlineKind.RESPONDENT_ANSWER: N_("Respondent's answer"),
    DeadlineKind.MEDIATION_PERIOD: N_("End of the mediation period"),
    DeadlineKind.CONFIRMATION_APPLICATION: N_("Application for judicial confirmation"),
}


@dataclass(frozen=True)
class Deadline:
    kind: DeadlineKind
    due: datetime


_RESPONDENT_ASKED = (
    DisputeStatus.AWAITING_MEDIATOR,
    DisputeStatus.MEDIATOR_ASSIGNED,
    DisputeStatus.MEDIATING,
)


def running_deadlines(state: DisputeState) -> list[Deadline]:
    """The time limits running now, for countdowns and overdue lists
    (see ``WorkingCalendar.countdown``)."""
    found: list[tuple[DeadlineKind, datetime | None]] = []
    if state.status in (
        DisputeStatus.SUBMITTED,
        DisputeStatus.TRIAGED,
        DisputeStatus.AWAITING_MEDIATOR,
    ):
        found.append((DeadlineKind.ASSIGNMENT, state.assignment_due))
    if state.status is DisputeStatus.AWAITING_MEDIATOR and not state.excluded_mediators:
        found.append((DeadlineKind.JOINT_CHOICE, state.joint_choice_due))
    if state.status is DisputeStatus.MEDIATOR_ASSIGNED and state.assignment is not None:
        found.append((DeadlineKind.ACCEPTANCE, state.assignment.acceptance_due))
    if state.status in _RESPONDENT_ASKED and state.respondent_consent is RespondentConsent.PENDING:
        found.append((DeadlineKind.RESPONDENT_ANSWER, state.respondent_contact_due))
    if state.status in _RESPONDENT_ASKED:
        found.append((DeadlineKind.MEDIATION_PERIOD, state.period_ends_at))
    if state.status is DisputeStatus.AGREEMENT_SIGNED:
        found.append((DeadlineKind.CONFIRMATION_APPLICATION, state.confirmation_due))
    return sorted(
        (Deadline(kind, due) for kind, due in found if due is not None), key=lambda d: d.due
    )
