"""What a party is told to do next, and which steps are worth offering anyone now.

One place for the dispute page, the home pages and the API: the workflow's
``allowed_commands`` says what the status allows; ``offered`` leaves out what its
rules would certainly refuse at this moment; ``party_hint`` words it for a party.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from server.auth.principal import Principal
from server.domain import commands as cmd
from server.domain.disputes import DisputeState, DisputeStatus, RespondentConsent
from server.domain.errors import N_
from server.domain.roles import Role

S = DisputeStatus
PARTY_SIDE = frozenset({Role.PARTY, Role.AGENT})

# what a party is told when the court waits for them
ACT_HINTS: dict[type[cmd.Command], str] = {
    cmd.SubmitApplication: N_("Finish your application and submit it on the application page."),
    cmd.RecordRespondentConsent: N_(
        "The court asks whether you agree to mediate this dispute online. Please answer below."
    ),
    cmd.ProposeMediator: N_(
        "You and the other side may choose a mediator together: propose one below. "
        "If you do not agree in time, the court assigns one."
    ),
    cmd.ChooseFiling: N_(
        "Mediation has ended without an agreement. Choose below whether the court should "
        "register your claim as a case."
    ),
    cmd.ApplyForConfirmation: N_(
        "The agreement is signed. You may apply together for judicial confirmation within 30 days."
    ),
}
# what a party is told when it waits for the court or the mediator
WAIT_HINTS: dict[DisputeStatus, str] = {
    S.DRAFT: N_("Finish your application and submit it."),
    S.SUBMITTED: N_("The court is reviewing your application. Nothing is needed from you now."),
    S.TRIAGED: N_("The court is reviewing your application. Nothing is needed from you now."),
    S.AWAITING_MEDIATOR: N_(
        "The court is choosing a mediator for your dispute. Nothing is needed from you now."
    ),
    S.MEDIATOR_ASSIGNED: N_(
        "The mediator is deciding whether to take on your dispute. Nothing is needed from you now."
    ),
    S.MEDIATING: N_(
        "Waiting for the mediator to schedule a session. You will receive an invitation with a link."
    ),
    S.AGREEMENT_REACHED: N_(
        "The agreement is being prepared for signing. You will be asked to sign it."
    ),
    S.AGREEMENT_SIGNED: N_("The agreement is signed. Waiting for the parties' next step."),
    S.CONFIRMATION: N_("The judge is reviewing the application for judicial confirmation."),
    S.CONFIRMED: N_("The court will serve its ruling on you through the platform."),
    S.CONFIRMATION_REJECTED: N_("The court will serve its ruling on you through the platform."),
    S.FAILED: N_(
        "Mediation has ended without an agreement. Waiting for the applicant to decide "
        "whether to file a case."
    ),
    S.FILING_PENDING: N_(
        "The dispute is in the court's case-filing queue. Waiting for the clerk to register the case."
    ),
    S.FILED: N_(
        "The case is registered as %(number)s and goes to a fast-track hearing. "
        "Waiting for the court."
    ),
    S.JUDGED: N_("The court will serve its judgment on you through the platform."),
    S.SERVED: N_("This dispute is finished. Nothing is needed from you."),
    S.CLOSED: N_("This dispute is finished. Nothing is needed from you."),
    S.WITHDRAWN: N_("This dispute is finished. Nothing is needed from you."),
}

NEXT_SESSION = N_(
    "Your next session starts at %(time)s. Open the link in the invitation we sent you to join."
)
SESSION_IN_PROGRESS = N_(
    "A session is in progress now. Open the link in the invitation we sent you to join."
)
NOTHING_TO_DO = N_("Nothing for you to do on this dispute now.")
NOTHING_TO_DO = N_("Nothing for you to do on this dispute now.")


# refused while a session is open ("close the open session first")
NOT_DURING_A_SESSION: frozenset[type[cmd.Command]] = frozenset(
    {
        cmd.ScheduleSession,
        cmd.RecordAgreement,
        cmd.RecordPartialAgreement,
        cmd.RecordFailure,
        cmd.WithdrawApplication,
    }
)
# steps that are rarely the one to take: listed last, never opened first
SECONDARY: frozenset[type[cmd.Command]] = frozenset(
    {cmd.DeclareConflict, cmd.RequestReplacement, cmd.WithdrawApplication}
)
# the respondent answers for themself: their buttons say so in the first person
OWN_ANSWER_LABELS: dict[type[cmd.Command], str] = {
    cmd.RecordRespondentConsent: N_("I agree to mediation"),
    cmd.RecordRespondentRefusal: N_("I do not agree to mediation"),
}


def offered(command: type[cmd.Command], state: DisputeState, now: datetime) -> bool:
    """Whether to offer a command the status allows, leaving out those whose rule
    would certainly refuse it now (an answer already recorded, no session to open)."""
    pending = state.respondent_consent is RespondentConsent.PENDING
    if command in (cmd.RecordRespondentConsent, cmd.RecordRespondentRefusal):
        return pending
    if command is cmd.MarkRespondentUnreachable:
        due = state.respondent_contact_due
        return pending and due is not None and now > due
    if command is cmd.OpenSession:
        return bool(state.scheduled_sessions) and state.open_session is None
    if command is cmd.CloseSession:
        return state.open_session is not None
    if command is cmd.ChooseMediatorJointly:
        return state.joint_choice_due is not None and now <= state.joint_choice_due
    if command is cmd.ProposeMediator:
        return state.joint_choice_due is not None and now <= state.joint_choice_due
    if command in NOT_DURING_A_SESSION:
        return state.open_session is None
    return True


def label_for(command: type[cmd.Command], caller: Principal | None) -> str:
    """The step's name as the caller reads it (a respondent answers in the first person)."""
    if caller is not None and caller.role in (Role.PARTY, Role.AGENT):
        return OWN_ANSWER_LABELS.get(command, cmd.command_label(command))
    return cmd.command_label(command)


@dataclass(frozen=True)
class Hint:
    kind: str  # "act": the party must do something; "wait": the court or mediator acts
    message: str  # an English message id
    params: dict[str, str] = field(default_factory=dict)


def party_hint(
    state: DisputeState,
    commands: list[type[cmd.Command]],
    *,
    now: datetime,
    next_session: str | None = None,
) -> Hint:
    """What to tell a party in plain words; ``next_session`` is already formatted."""
    for command, message in ACT_HINTS.items():  # the most pressing first
        if command in commands and offered(command, state, now):
            return Hint("act", message)
    if state.status is S.MEDIATING and state.open_session is not None:
        return Hint("act", SESSION_IN_PROGRESS)
    if state.status is S.MEDIATING and next_session is not None:
        return Hint("wait", NEXT_SESSION, {"time": next_session})
    return Hint(
        "wait", WAIT_HINTS.get(state.status, NOTHING_TO_DO), {"number": state.case_number or "—"}
    )
