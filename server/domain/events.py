"""Domain events: what happened to a dispute, named in the past tense.

Every event carries the move it made (``from_status`` -> ``to_status``, equal when
the status stayed) and when, plus the facts an audit row needs (reason, grounds,
mediator).  The actor is added by the service that stores the event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum

from server.domain.disputes import Complexity, DisputeStatus, TerminationGround
from server.domain.roles import DisputeRole

AuditValue = str | int | bool | list[str] | None


@dataclass(frozen=True, kw_only=True)
class Event:
    from_status: DisputeStatus
    to_status: DisputeStatus
    at: datetime

    @classmethod
    def name(cls) -> str:
        """``MediatorAssigned`` -> ``mediator_assigned``."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def details(self) -> dict[str, AuditValue]:
        """Plain JSON-ready values for the audit log (``at`` is the row's own time)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "at"}


def _plain(value: object) -> AuditValue:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | tuple | list):
        return sorted(str(_plain(item)) for item in value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


# application ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DraftSaved(Event):
    changed_fields: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class ApplicationSubmitted(Event):
    electronic_service_consent: bool
    assignment_due: datetime


@dataclass(frozen=True, kw_only=True)
class ApplicationWithdrawn(Event):
    reason: str
    grounds: frozenset[TerminationGround]


# triage ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DisputeTriaged(Event):
    complexity: Complexity
    score: int
    suitable: bool


@dataclass(frozen=True, kw_only=True)
class TriageAccepted(Event):
    complexity: Complexity


@dataclass(frozen=True, kw_only=True)
class TriageOverridden(Event):
    previous: Complexity | None
    complexity: Complexity
    reason: str


@dataclass(frozen=True, kw_only=True)
class RoutedToFiling(Event):
    reason: str


# mediator ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MediatorProposed(Event):
    side: DisputeRole
    mediator_id: int


@dataclass(frozen=True, kw_only=True)
class MediatorChosenJointly(Event):
    mediator_id: int
    acceptance_due: datetime


@dataclass(frozen=True, kw_only=True)
class MediatorAssigned(Event):
    mediator_id: int
    acceptance_due: datetime


@dataclass(frozen=True, kw_only=True)
class AssignmentAccepted(Event):
    mediator_id: int
    period_ends_at: datetime


@dataclass(frozen=True, kw_only=True)
class AssignmentDeclined(Event):
    mediator_id: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class ConflictDeclared(Event):
    mediator_id: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReplacementRequested(Event):
    mediator_id: int
    side: DisputeRole
    reason: str


# respondent ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RespondentConsented(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class RespondentRefused(Event):
    reason: str
    grounds: frozenset[TerminationGround]


@dataclass(frozen=True, kw_only=True)
class RespondentNotReached(Event):
    due: datetime
    grounds: frozenset[TerminationGround]


# sessions and period ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SessionScheduled(Event):
    session_id: int
    starts_at: datetime
    separate_times: bool


@dataclass(frozen=True, kw_only=True)
class SessionOpened(Event):
    session_id: int


@dataclass(frozen=True, kw_only=True)
class SessionClosed(Event):
    session_id: int


@dataclass(frozen=True, kw_only=True)
class PeriodExtended(Event):
    days: int
    period_ends_at: datetime


# outcome ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AgreementReached(Event):
    summary: str


@dataclass(frozen=True, kw_only=True)
class PartialAgreementReached(Event):
    agreed: str
    unresolved: str


@dataclass(frozen=True, kw_only=True)
class MediationFailed(Event):
    grounds: frozenset[TerminationGround]
    report: str
    cost_increasing_conduct: str


@dataclass(frozen=True, kw_only=True)
class AgreementSigned(Event):
    grounds: frozenset[TerminationGround]


# filing ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FilingChosen(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class FilingDeclined(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class CaseRegistered(Event):
    case_number: str


@dataclass(frozen=True, kw_only=True)
class JudgmentRecorded(Event):
    pass


# confirmation and the end ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ConfirmationApplied(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class AgreementConfirmed(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class ConfirmationRejected(Event):
    reason: str


@dataclass(frozen=True, kw_only=True)
class DocumentsServed(Event):
    document: str  # "ruling" (confirmation either way) or "judgment"


@dataclass(frozen=True, kw_only=True)
class DisputeClosed(Event):
    pass
