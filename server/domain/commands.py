"""Commands: what someone asks the dispute workflow to do, named in the imperative.

A command carries only what the rules need.  Who sends it (the actor) is known to
the service that calls ``workflow.decide`` and is written to the audit log there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from server.domain.disputes import Complexity, TerminationGround
from server.domain.errors import N_
from server.domain.roles import DisputeRole


@dataclass(frozen=True)
class Command:
    """Base of every workflow command."""

    @classmethod
    def key(cls) -> str:
        """``AssignMediator`` -> ``assign_mediator``: the name used in URLs and params."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


# application ----------------------------------------------------------------------


@dataclass(frozen=True)
class SaveDraft(Command):
    changed_fields: frozenset[str]


@dataclass(frozen=True)
class SubmitApplication(Command):
    online_mediation_consent: bool
    electronic_service_consent: bool


@dataclass(frozen=True)
class WithdrawApplication(Command):
    """By the applicant, before an outcome; ``settled``: the parties settled themselves."""

    settled: bool = False
    reason: str = ""


# triage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordTriage(Command):
    """The automatic triage result (see ``triage.classify``)."""

    complexity: Complexity
    score: int
    suitable: bool


@dataclass(frozen=True)
class AcceptTriage(Command):
    pass


@dataclass(frozen=True)
class OverrideTriage(Command):
    """The triage officer sets the complexity (and suitability for mediation) by hand."""

    complexity: Complexity
    reason: str


@dataclass(frozen=True)
class RouteToFiling(Command):
    """Not suitable for mediation: straight to case filing."""

    reason: str


# mediator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChooseMediatorJointly(Command):
    mediator_id: int


@dataclass(frozen=True)
class ProposeMediator(Command):
    """One side's pick from the roster; the same pick by both sides is a joint choice."""

    side: DisputeRole
    mediator_id: int


@dataclass(frozen=True)
class AssignMediator(Command):
    mediator_id: int


@dataclass(frozen=True)
class AcceptAssignment(Command):
    mediator_id: int


@dataclass(frozen=True)
class DeclineAssignment(Command):
    mediator_id: int
    reason: str


@dataclass(frozen=True)
class DeclareConflict(Command):
    """The mediator discloses a conflict of interest (调解规则 Art. 13); forces re-assignment."""

    mediator_id: int
    details: str


@dataclass(frozen=True)
class RequestReplacement(Command):
    """A party asks for a different mediator (调解规则 Art. 14)."""

    side: DisputeRole
    reason: str


# respondent --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordRespondentConsent(Command):
    pass


@dataclass(frozen=True)
class RecordRespondentRefusal(Command):
    reason: str = ""


@dataclass(frozen=True)
class MarkRespondentUnreachable(Command):
    pass


# sessions and period -------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSession(Command):
    session_id: int
    starts_at: datetime
    separate_times: bool = False
    separate_times_consent: bool = False


@dataclass(frozen=True)
class OpenSession(Command):
    session_id: int


@dataclass(frozen=True)
class CloseSession(Command):
    session_id: int


@dataclass(frozen=True)
class ExtendPeriod(Command):
    days: int
    all_parties_consent: bool


# outcome -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordAgreement(Command):
    summary: str = ""


@dataclass(frozen=True)
class RecordPartialAgreement(Command):
    agreed: str
    unresolved: str


@dataclass(frozen=True)
class RecordFailure(Command):
    grounds: frozenset[TerminationGround]
    report: str
    cost_increasing_conduct: str = ""


@dataclass(frozen=True)
class RecordAllSignatures(Command):
    pass


# filing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChooseFiling(Command):
    pass


@dataclass(frozen=True)
class DeclineFiling(Command):
    pass


@dataclass(frozen=True)
class RegisterCase(Command):
    case_number: str


@dataclass(frozen=True)
class RecordJudgment(Command):
    pass


# judicial confirmation and the end --------------------------------------------------------


@dataclass(frozen=True)
class ApplyForConfirmation(Command):
    all_parties_apply: bool = True


@dataclass(frozen=True)
class ConfirmAgreement(Command):
    pass


@dataclass(frozen=True)
class RejectConfirmation(Command):
    reason: str


@dataclass(frozen=True)
class ServeDocuments(Command):
    pass


@dataclass(frozen=True)
class CloseDispute(Command):
    pass


COMMAND_LABELS: dict[type[Command], str] = {
    SaveDraft: N_("Save the draft"),
    SubmitApplication: N_("Submit the application"),
    RecordTriage: N_("Record the triage result"),
    AcceptTriage: N_("Accept the triage"),
    OverrideTriage: N_("Override the triage"),
    RouteToFiling: N_("Route to case filing"),
    ChooseMediatorJointly: N_("Choose a mediator together"),
    ProposeMediator: N_("Propose a mediator"),
    AssignMediator: N_("Assign a mediator"),
    AcceptAssignment: N_("Accept the assignment"),
    DeclineAssignment: N_("Decline the assignment"),
    DeclareConflict: N_("Declare a conflict of interest"),
    RequestReplacement: N_("Ask for another mediator"),
    RecordRespondentConsent: N_("Record the respondent's consent"),
    RecordRespondentRefusal: N_("Record the respondent's refusal"),
    MarkRespondentUnreachable: N_("Mark the respondent unreachable"),
    ScheduleSession: N_("Schedule a session"),
    OpenSession: N_("Open the session"),
    CloseSession: N_("Close the session"),
    ExtendPeriod: N_("Extend the mediation period"),
    RecordAgreement: N_("Record the agreement"),
    RecordPartialAgreement: N_("Record a partial agreement"),
    RecordAllSignatures: N_("Record that all parties signed"),
    RecordFailure: N_("Record the failure of mediation"),
    ChooseFiling: N_("Choose case filing"),
    DeclineFiling: N_("Decline case filing"),
    RegisterCase: N_("Register the case"),
    RecordJudgment: N_("Record the judgment"),
    ApplyForConfirmation: N_("Apply for judicial confirmation"),
    ConfirmAgreement: N_("Confirm the agreement"),
    RejectConfirmation: N_("Reject the confirmation"),
    ServeDocuments: N_("Serve the documents"),
    CloseDispute: N_("Close the dispute"),
    WithdrawApplication: N_("Withdraw the application"),
}

ALL_COMMANDS: tuple[type[Command], ...] = tuple(COMMAND_LABELS)


def command_label(command: type[Command]) -> str:
    return COMMAND_LABELS[command]
