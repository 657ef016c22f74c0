"""The dispute workflow: one place that checks every move and says what happened.

``decide(state, command, now=...)`` returns the new ``DisputeState`` and the
events of the move, or raises: ``IllegalTransition`` (a Conflict) when the move
is not open in this state or its rule refuses it, ``Invalid`` when the command
itself is malformed (a blank reason, no grounds).  Nothing here stores anything;
the caller saves the new state and the events in one unit of work, so a crash
leaves the dispute in the earlier state.

The moves (``TRANSITIONS``) follow DESIGN.md's diagram and 人民法院在线调解规则:

    draft -> submitted -> triaged -> awaiting_mediator <-> mediator_assigned -> mediating
    triaged -> filing_pending                      (not suitable for mediation)
    mediating -> agreement_reached -> agreement_signed -> confirmation
        -> confirmed | confirmation_rejected -> served -> closed
    mediating | agreement_reached -> failed -> filing_pending -> filed -> judged -> served
    failed -> closed                               (the applicant does not file)
    respondent refuses / is not reached            -> failed
    submitted .. mediating -> withdrawn            (the applicant withdraws)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NoReturn, TypeVar

from server.domain import commands as cmd
from server.domain import events as ev
from server.domain.calendar import (
    MEDIATION_PERIOD_DAYS,
    WEEKENDS_ONLY,
    WorkingCalendar,
    court_date,
    require_aware,
)
from server.domain.commands import ALL_COMMANDS, Command, command_label
from server.domain.disputes import (
    FAILURE_GROUNDS,
    STATUS_LABELS,
    Assignment,
    AssignmentStatus,
    Complexity,
    ConfirmationResult,
    DisputeState,
    DisputeStatus,
    Outcome,
    RespondentConsent,
    TerminationGround,
)
from server.domain.errors import N_, Conflict, Invalid
from server.domain.events import Event
from server.domain.roles import DisputeRole

S = DisputeStatus

# 民事诉讼法 Art. 205 (2023 text): confirmation is applied for within 30 days of the
# agreement taking effect.
CONFIRMATION_APPLICATION_DAYS = 30


@dataclass(frozen=True)
class Decision:
    """The state after an accepted command and what happened, to store together."""

    new_state: DisputeState
    events: tuple[Event, ...]

    @property
    def status_changed(self) -> bool:
        return any(event.from_status != event.to_status for event in self.events)


# errors --------------------------------------------------------------------------

WRONG_STATE = N_("This dispute is %(state)s; allowed now: %(allowed)s.")
NOTHING = N_("nothing")


class IllegalTransition(Conflict):
    """A move the workflow refuses.  ``params`` hold English label message ids
    (``state``, ``allowed``); ``localised_params`` translates them."""

    code = "illegal_transition"

    def __init__(
        self,
        message: str,
        /,
        *,
        status: DisputeStatus,
        command: type[Command],
        allowed: Sequence[type[Command]],
        **params: str,
    ) -> None:
        self.status = status
        self.command = command.key()
        self.allowed = tuple(item.key() for item in allowed)
        self._allowed_labels = tuple(command_label(item) for item in allowed)
        super().__init__(
            message,
            state=STATUS_LABELS[status],
            allowed=", ".join(self._allowed_labels) or NOTHING,
            **params,
        )

    def localised_params(self, translate: Callable[[str], str]) -> dict[str, Any]:
        labels = [translate(label) for label in self._allowed_labels]
        return {
            **self.params,
            "state": translate(STATUS_LABELS[self.status]),
            "allowed": ", ".join(labels) or translate(NOTHING),
        }


def _refuse(state: DisputeState, command: Command, message: str, **params: str) -> NoReturn:
    raise IllegalTransition(
        message,
        status=state.status,
        command=type(command),
        allowed=allowed_commands(state),
        **params,
    )


def _required(value: str, name: str) -> str:
    value = value.strip()
    if not value:
        raise Invalid(N_("This field is required: %(field)s."), field=name)
    return value


def _not_valid(name: str) -> NoReturn:
    raise Invalid(N_("This field is not valid: %(field)s."), field=name)


# the table of moves ------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    now: datetime
    calendar: WorkingCalendar


Moved = tuple[DisputeState, Event]
Handler = Callable[[DisputeState, Any, Clock], Moved]
C = TypeVar("C", bound=Command)


@dataclass(frozen=True)
class Move:
    sources: frozenset[DisputeStatus]
    handler: Handler = field(repr=False)


TRANSITIONS: dict[type[Command], Move] = {}


def _move(
    command: type[C], *sources: DisputeStatus
) -> Callable[
    [Callable[[DisputeState, C, Clock], Moved]], Callable[[DisputeState, C, Clock], Moved]
]:
    def register(
        handler: Callable[[DisputeState, C, Clock], Moved],
    ) -> Callable[[DisputeState, C, Clock], Moved]:
        TRANSITIONS[command] = Move(frozenset(sources), handler)
        return handler

    return register


def _moved(old: DisputeState, new: DisputeState, clock: Clock) -> dict[str, Any]:
    return {"from_status": old.status, "to_status": new.status, "at": clock.now}


def allowed_commands(state: DisputeState) -> list[type[Command]]:
    """The commands open in this status, for "what to do next".  Their rules may
    still refuse a particular command (another mediator, a missing consent)."""
    return [command for command in ALL_COMMANDS if state.status in TRANSITIONS[command].sources]


def decide(
    state: DisputeState,
    command: Command,
    *,
    now: datetime,
    calendar: WorkingCalendar = WEEKENDS_ONLY,
) -> Decision:
    """Check ``command`` against ``state`` at ``now`` (aware) and return the move.

    ``calendar`` is the court's working-day calendar (its holidays and make-up
    days); deadlines set by the move are computed on it.
    """
    require_aware(now)
    move = TRANSITIONS.get(type(command))
    if move is None:
        raise TypeError(f"not a workflow command: {command!r}")
    if state.status not in move.sources:
        _refuse(state, command, WRONG_STATE)
    new, event = move.handler(state, command, Clock(now, calendar))
    if state.open_session is not None and new.status != S.MEDIATING:
        _refuse(state, command, N_("Close the open session first."))
    if new == state:
        _refuse(state, command, N_("This would change nothing."))
    assert event.from_status == state.status and event.to_status == new.status
    return Decision(new, (event,))


# application ----------------------------------------------------------------------

PRE_OUTCOME = (S.SUBMITTED, S.TRIAGED, S.AWAITING_MEDIATOR, S.MEDIATOR_ASSIGNED, S.MEDIATING)
RESPONDENT_ASKED = (S.AWAITING_MEDIATOR, S.MEDIATOR_ASSIGNED, S.MEDIATING)
WITH_MEDIATOR = (S.MEDIATOR_ASSIGNED, S.MEDIATING)


@_move(cmd.SaveDraft, S.DRAFT)
def _save_draft(s: DisputeState, c: cmd.SaveDraft, clock: Clock) -> Moved:
    if not c.changed_fields:
        _refuse(s, c, N_("Nothing has changed since the draft was last saved."))
    new = replace(s, draft_revision=s.draft_revision + 1)
    return new, ev.DraftSaved(**_moved(s, new, clock), changed_fields=c.changed_fields)


@_move(cmd.SubmitApplication, S.DRAFT)
def _submit(s: DisputeState, c: cmd.SubmitApplication, clock: Clock) -> Moved:
    # Online mediation needs the party's consent (在线诉讼规则 Art. 4; 调解规则 Art. 4).
    if not c.online_mediation_consent:
        raise Invalid(N_("This field is required: %(field)s."), field="online_mediation_consent")
    due = clock.calendar.assignment_due(clock.now)
    new = replace(
        s,
        status=S.SUBMITTED,
        submitted_at=clock.now,
        electronic_service_consent=c.electronic_service_consent,
        assignment_due=due,
    )
    return new, ev.ApplicationSubmitted(
        **_moved(s, new, clock),
        electronic_service_consent=c.electronic_service_consent,
        assignment_due=due,
    )


@_move(cmd.WithdrawApplication, *PRE_OUTCOME)
def _withdraw(s: DisputeState, c: cmd.WithdrawApplication, clock: Clock) -> Moved:
    grounds = frozenset({TerminationGround.SETTLED_AND_WITHDRAWN} if c.settled else ())
    new = replace(s, status=S.WITHDRAWN, outcome=Outcome.WITHDRAWN, termination_grounds=grounds)
    return new, ev.ApplicationWithdrawn(
        **_moved(s, new, clock), reason=c.reason.strip(), grounds=grounds
    )


# triage ----------------------------------------------------------------------------


@_move(cmd.RecordTriage, S.SUBMITTED)
def _triage(s: DisputeState, c: cmd.RecordTriage, clock: Clock) -> Moved:
    if c.score < 0:
        _not_valid("score")
    new = replace(
        s,
        status=S.TRIAGED,
        auto_complexity=c.complexity,
        triage_score=c.score,
        triage_suitable=c.suitable,
    )
    return new, ev.DisputeTriaged(
        **_moved(s, new, clock), complexity=c.complexity, score=c.score, suitable=c.suitable
    )


def _open_for_mediation(s: DisputeState, complexity: Complexity, clock: Clock) -> DisputeState:
    """Triage settled: the parties may choose a mediator and the respondent is asked."""
    return replace(
        s,
        status=S.AWAITING_MEDIATOR,
        complexity=complexity,
        joint_choice_due=clock.calendar.joint_choice_due(clock.now),
        respondent_consent=RespondentConsent.PENDING,
        respondent_contact_due=clock.calendar.respondent_contact_due(clock.now),
    )


@_move(cmd.AcceptTriage, S.TRIAGED)
def _accept_triage(s: DisputeState, c: cmd.AcceptTriage, clock: Clock) -> Moved:
    if not s.triage_suitable or s.auto_complexity is None:
        _refuse(
            s,
            c,
            N_(
                "The triage found this dispute unsuitable for mediation: route it to case filing or override the triage."
            ),
        )
    new = _open_for_mediation(s, s.auto_complexity, clock)
    return new, ev.TriageAccepted(**_moved(s, new, clock), complexity=s.auto_complexity)


@_move(cmd.OverrideTriage, S.TRIAGED)
def _override_triage(s: DisputeState, c: cmd.OverrideTriage, clock: Clock) -> Moved:
    reason = _required(c.reason, "reason")
    if c.complexity == s.auto_complexity and s.triage_suitable:
        _refuse(s, c, N_("The override keeps the triage result; accept the triage instead."))
    new = replace(_open_for_mediation(s, c.complexity, clock), triage_overridden=True)
    return new, ev.TriageOverridden(
        **_moved(s, new, clock), previous=s.auto_complexity, complexity=c.complexity, reason=reason
    )


@_move(cmd.RouteToFiling, S.TRIAGED)
def _route_to_filing(s: DisputeState, c: cmd.RouteToFiling, clock: Clock) -> Moved:
    reason = _required(c.reason, "reason")
    new = replace(s, status=S.FILING_PENDING, outcome=Outcome.NOT_SUITABLE, filing_reason=reason)
    return new, ev.RoutedToFiling(**_moved(s, new, clock), reason=reason)


# mediator ------------------------------------------------------------------------------


def _propose(
    s: DisputeState, c: Command, mediator_id: int, jointly: bool, clock: Clock
) -> DisputeState:
    if mediator_id in s.excluded_mediators:
        _refuse(s, c, N_("This mediator cannot be assigned to this dispute again."))
    assignment = Assignment(
        mediator_id=mediator_id,
        jointly_chosen=jointly,
        assigned_at=clock.now,
        acceptance_due=clock.calendar.acceptance_due(clock.now),
    )
    return replace(s, status=S.MEDIATOR_ASSIGNED, assignment=assignment)


def _current(s: DisputeState, c: Command, mediator_id: int) -> Assignment:
    if s.assignment is None or s.assignment.mediator_id != mediator_id:
        _refuse(s, c, N_("The dispute is assigned to another mediator."))
    return s.assignment


def _release(s: DisputeState, mediator_id: int, clock: Clock) -> DisputeState:
    """Back to the court for another mediator, within a fresh 3 working days."""
    return replace(
        s,
        status=S.AWAITING_MEDIATOR,
        assignment=None,
        excluded_mediators=s.excluded_mediators | {mediator_id},
        assignment_due=clock.calendar.assignment_due(clock.now),
    )


JOINT_CHOICE_PASSED = N_("The time for the parties to choose a mediator together has passed.")


def _joint_window(s: DisputeState, c: Command, clock: Clock) -> None:
    if s.joint_choice_due is None or clock.now > s.joint_choice_due:
        _refuse(s, c, JOINT_CHOICE_PASSED)


def _chosen_jointly(
    old: DisputeState, base: DisputeState, c: Command, mediator_id: int, clock: Clock
) -> Moved:
    """The parties' joint choice takes effect: ``base`` is ``old`` plus any pick just made."""
    new = _propose(base, c, mediator_id, True, clock)
    assert new.assignment is not None
    return new, ev.MediatorChosenJointly(
        **_moved(old, new, clock),
        mediator_id=mediator_id,
        acceptance_due=new.assignment.acceptance_due,
    )


@_move(cmd.ChooseMediatorJointly, S.AWAITING_MEDIATOR)
def _choose_jointly(s: DisputeState, c: cmd.ChooseMediatorJointly, clock: Clock) -> Moved:
    _joint_window(s, c, clock)
    return _chosen_jointly(s, s, c, c.mediator_id, clock)


@_move(cmd.ProposeMediator, S.AWAITING_MEDIATOR)
def _propose_mediator(s: DisputeState, c: cmd.ProposeMediator, clock: Clock) -> Moved:
    """Each side picks; when both pick the same mediator, that is the joint choice."""
    _joint_window(s, c, clock)
    if c.side not in (DisputeRole.APPLICANT, DisputeRole.RESPONDENT):
        _not_valid("side")
    if c.mediator_id in s.excluded_mediators:
        _refuse(s, c, N_("This mediator cannot be assigned to this dispute again."))
    # the same pick again changes nothing, and decide() refuses it as such
    theirs = s.respondent_proposal if c.side is DisputeRole.APPLICANT else s.applicant_proposal
    if c.side is DisputeRole.APPLICANT:
        picked = replace(s, applicant_proposal=c.mediator_id)
    else:
        picked = replace(s, respondent_proposal=c.mediator_id)
    if theirs != c.mediator_id:
        return picked, ev.MediatorProposed(
            **_moved(s, picked, clock), side=c.side, mediator_id=c.mediator_id
        )
    return _chosen_jointly(s, picked, c, c.mediator_id, clock)


@_move(cmd.AssignMediator, S.AWAITING_MEDIATOR)
def _assign(s: DisputeState, c: cmd.AssignMediator, clock: Clock) -> Moved:
    new = _propose(s, c, c.mediator_id, False, clock)
    assert new.assignment is not None
    return new, ev.MediatorAssigned(
        **_moved(s, new, clock),
        mediator_id=c.mediator_id,
        acceptance_due=new.assignment.acceptance_due,
    )


@_move(cmd.AcceptAssignment, S.MEDIATOR_ASSIGNED)
def _accept(s: DisputeState, c: cmd.AcceptAssignment, clock: Clock) -> Moved:
    assignment = _current(s, c, c.mediator_id)
    accepted = replace(assignment, status=AssignmentStatus.ACCEPTED, accepted_at=clock.now)
    new = replace(s, status=S.MEDIATING, assignment=accepted)
    if s.period_started_at is None:  # a replacement mediator continues the running period
        new = replace(
            new,
            period_started_at=clock.now,
            period_days=MEDIATION_PERIOD_DAYS,
            period_ends_at=clock.calendar.mediation_period_end(clock.now),
        )
    assert new.period_ends_at is not None
    return new, ev.AssignmentAccepted(
        **_moved(s, new, clock), mediator_id=c.mediator_id, period_ends_at=new.period_ends_at
    )


@_move(cmd.DeclineAssignment, S.MEDIATOR_ASSIGNED)
def _decline(s: DisputeState, c: cmd.DeclineAssignment, clock: Clock) -> Moved:
    _current(s, c, c.mediator_id)
    reason = _required(c.reason, "reason")
    new = replace(_release(s, c.mediator_id, clock), declined_by=s.declined_by | {c.mediator_id})
    return new, ev.AssignmentDeclined(
        **_moved(s, new, clock), mediator_id=c.mediator_id, reason=reason
    )


@_move(cmd.DeclareConflict, *WITH_MEDIATOR)
def _declare_conflict(s: DisputeState, c: cmd.DeclareConflict, clock: Clock) -> Moved:
    _current(s, c, c.mediator_id)
    details = _required(c.details, "details")
    new = _release(s, c.mediator_id, clock)
    return new, ev.ConflictDeclared(
        **_moved(s, new, clock), mediator_id=c.mediator_id, reason=details
    )


PARTY_SIDES = frozenset({DisputeRole.APPLICANT, DisputeRole.RESPONDENT, DisputeRole.THIRD_PARTY})


@_move(cmd.RequestReplacement, *WITH_MEDIATOR)
def _request_replacement(s: DisputeState, c: cmd.RequestReplacement, clock: Clock) -> Moved:
    if c.side not in PARTY_SIDES:
        _not_valid("side")
    reason = _required(c.reason, "reason")
    assert s.assignment is not None
    mediator_id = s.assignment.mediator_id
    new = _release(s, mediator_id, clock)
    return new, ev.ReplacementRequested(
        **_moved(s, new, clock), mediator_id=mediator_id, side=c.side, reason=reason
    )


# respondent ------------------------------------------------------------------------------


def _pending_answer(s: DisputeState, c: Command) -> None:
    if s.respondent_consent is not RespondentConsent.PENDING:
        _refuse(s, c, N_("The respondent's answer is already recorded."))


@_move(cmd.RecordRespondentConsent, *RESPONDENT_ASKED)
def _respondent_consents(s: DisputeState, c: cmd.RecordRespondentConsent, clock: Clock) -> Moved:
    _pending_answer(s, c)
    new = replace(s, respondent_consent=RespondentConsent.GIVEN)
    return new, ev.RespondentConsented(**_moved(s, new, clock))


def _fail(s: DisputeState, grounds: frozenset[TerminationGround], **changes: Any) -> DisputeState:
    return replace(
        s, status=S.FAILED, outcome=Outcome.FAILURE, termination_grounds=grounds, **changes
    )


@_move(cmd.RecordRespondentRefusal, *RESPONDENT_ASKED)
def _respondent_refuses(s: DisputeState, c: cmd.RecordRespondentRefusal, clock: Clock) -> Moved:
    # Refusal ends the mediation (调解规则 Art. 15; Art. 25 (四)).
    _pending_answer(s, c)
    grounds = frozenset({TerminationGround.PARTY_UNWILLING})
    new = _fail(s, grounds, respondent_consent=RespondentConsent.REFUSED)
    return new, ev.RespondentRefused(
        **_moved(s, new, clock), reason=c.reason.strip(), grounds=grounds
    )


@_move(cmd.MarkRespondentUnreachable, *RESPONDENT_ASKED)
def _respondent_unreachable(
    s: DisputeState, c: cmd.MarkRespondentUnreachable, clock: Clock
) -> Moved:
    # No answer within the limit ends the mediation (调解规则 Art. 15; Art. 25 (三)).
    _pending_answer(s, c)
    due = s.respondent_contact_due
    assert due is not None
    if clock.now <= due:
        _refuse(
            s,
            c,
            N_("The respondent can be marked unreachable only after %(due)s."),
            due=court_date(due).isoformat(),
        )
    grounds = frozenset({TerminationGround.PARTY_UNREACHABLE})
    new = _fail(s, grounds, respondent_consent=RespondentConsent.UNREACHABLE)
    return new, ev.RespondentNotReached(**_moved(s, new, clock), due=due, grounds=grounds)


# sessions and period ------------------------------------------------------------------


def _consented(s: DisputeState, c: Command, message: str) -> None:
    if s.respondent_consent is not RespondentConsent.GIVEN:
        _refuse(s, c, message)


@_move(cmd.ScheduleSession, S.MEDIATING)
def _schedule(s: DisputeState, c: cmd.ScheduleSession, clock: Clock) -> Moved:
    _consented(
        s, c, N_("Sessions can be scheduled once the respondent has consented to mediation.")
    )
    if c.starts_at.tzinfo is None or c.starts_at <= clock.now:
        _not_valid("starts_at")
    if c.session_id in s.scheduled_sessions | s.held_sessions | {s.open_session}:
        _refuse(s, c, N_("This session is already scheduled."))
    if c.separate_times and not c.separate_times_consent:
        _refuse(s, c, N_("Separate session times need the parties' consent."))
    new = replace(s, scheduled_sessions=s.scheduled_sessions | {c.session_id})
    return new, ev.SessionScheduled(
        **_moved(s, new, clock),
        session_id=c.session_id,
        starts_at=c.starts_at,
        separate_times=c.separate_times,
    )


@_move(cmd.OpenSession, S.MEDIATING)
def _open_session(s: DisputeState, c: cmd.OpenSession, clock: Clock) -> Moved:
    if s.open_session is not None:
        _refuse(s, c, N_("A session is already open."))
    if c.session_id not in s.scheduled_sessions:
        _refuse(s, c, N_("This session is not scheduled."))
    new = replace(
        s, scheduled_sessions=s.scheduled_sessions - {c.session_id}, open_session=c.session_id
    )
    return new, ev.SessionOpened(**_moved(s, new, clock), session_id=c.session_id)


@_move(cmd.CloseSession, S.MEDIATING)
def _close_session(s: DisputeState, c: cmd.CloseSession, clock: Clock) -> Moved:
    if s.open_session != c.session_id:
        _refuse(s, c, N_("This session is not open."))
    new = replace(s, open_session=None, held_sessions=s.held_sessions | {c.session_id})
    return new, ev.SessionClosed(**_moved(s, new, clock), session_id=c.session_id)


@_move(cmd.ExtendPeriod, S.MEDIATING)
def _extend(s: DisputeState, c: cmd.ExtendPeriod, clock: Clock) -> Moved:
    # Extension by the consent of all parties (调解规则 Art. 24; Art. 25 (六)).
    if c.days < 1:
        _not_valid("days")
    if not c.all_parties_consent:
        _refuse(s, c, N_("Extending the mediation period needs the consent of all parties."))
    assert s.period_started_at is not None and s.period_ends_at is not None
    if clock.now > s.period_ends_at:
        _refuse(s, c, N_("The mediation period has already ended."))
    days = s.period_days + c.days
    ends = clock.calendar.period_end(s.period_started_at, days)
    new = replace(s, period_days=days, period_ends_at=ends, extensions=(*s.extensions, c.days))
    return new, ev.PeriodExtended(**_moved(s, new, clock), days=c.days, period_ends_at=ends)


# outcome -----------------------------------------------------------------------------

AGREEMENT_NEEDS_CONSENT = N_("An agreement needs the respondent's consent to mediation.")


@_move(cmd.RecordAgreement, S.MEDIATING)
def _agreement(s: DisputeState, c: cmd.RecordAgreement, clock: Clock) -> Moved:
    _consented(s, c, AGREEMENT_NEEDS_CONSENT)
    new = replace(s, status=S.AGREEMENT_REACHED, outcome=Outcome.AGREEMENT)
    return new, ev.AgreementReached(**_moved(s, new, clock), summary=c.summary.strip())


@_move(cmd.RecordPartialAgreement, S.MEDIATING)
def _partial_agreement(s: DisputeState, c: cmd.RecordPartialAgreement, clock: Clock) -> Moved:
    _consented(s, c, AGREEMENT_NEEDS_CONSENT)
    agreed = _required(c.agreed, "agreed")
    unresolved = _required(c.unresolved, "unresolved")
    new = replace(s, status=S.AGREEMENT_REACHED, outcome=Outcome.PARTIAL_AGREEMENT)
    return new, ev.PartialAgreementReached(
        **_moved(s, new, clock), agreed=agreed, unresolved=unresolved
    )


@_move(cmd.RecordFailure, S.MEDIATING, S.AGREEMENT_REACHED)
def _failure(s: DisputeState, c: cmd.RecordFailure, clock: Clock) -> Moved:
    # The mediator records the grounds and a report (调解规则 Arts. 21, 25).
    if not c.grounds or not c.grounds <= FAILURE_GROUNDS:
        _not_valid("grounds")
    report = _required(c.report, "report")
    period_running = s.period_ends_at is None or clock.now <= s.period_ends_at
    if TerminationGround.PERIOD_EXPIRED in c.grounds and period_running:
        _refuse(s, c, N_("The mediation period has not ended yet."))
    if TerminationGround.REFUSED_TO_SIGN in c.grounds and s.status is not S.AGREEMENT_REACHED:
        _refuse(s, c, N_("No agreement has been drafted for signing yet."))
    new = _fail(s, c.grounds)
    return new, ev.MediationFailed(
        **_moved(s, new, clock),
        grounds=c.grounds,
        report=report,
        cost_increasing_conduct=c.cost_increasing_conduct.strip(),
    )


@_move(cmd.RecordAllSignatures, S.AGREEMENT_REACHED)
def _signed(s: DisputeState, c: cmd.RecordAllSignatures, clock: Clock) -> Moved:
    # The agreement takes effect when every party has signed (调解规则 Art. 19).
    grounds = frozenset({TerminationGround.AGREEMENT_REACHED})
    new = replace(
        s,
        status=S.AGREEMENT_SIGNED,
        termination_grounds=grounds,
        signed_at=clock.now,
        confirmation_due=clock.calendar.period_end(clock.now, CONFIRMATION_APPLICATION_DAYS),
    )
    return new, ev.AgreementSigned(**_moved(s, new, clock), grounds=grounds)


# filing -------------------------------------------------------------------------------


@_move(cmd.ChooseFiling, S.FAILED, S.SERVED)
def _choose_filing(s: DisputeState, c: cmd.ChooseFiling, clock: Clock) -> Moved:
    # A rejected confirmation leaves the parties free to sue (民事诉讼法 Art. 206, 2023 text).
    if s.status is S.SERVED and (
        s.confirmation is not ConfirmationResult.REJECTED or s.case_number is not None
    ):
        _refuse(s, c, N_("Case filing after service is open only when confirmation was rejected."))
    new = replace(s, status=S.FILING_PENDING, filing_chosen=True)
    return new, ev.FilingChosen(**_moved(s, new, clock))


@_move(cmd.DeclineFiling, S.FAILED)
def _decline_filing(s: DisputeState, c: cmd.DeclineFiling, clock: Clock) -> Moved:
    new = replace(s, status=S.CLOSED, filing_chosen=False)
    return new, ev.FilingDeclined(**_moved(s, new, clock))


@_move(cmd.RegisterCase, S.FILING_PENDING)
def _register(s: DisputeState, c: cmd.RegisterCase, clock: Clock) -> Moved:
    number = _required(c.case_number, "case_number")
    new = replace(s, status=S.FILED, case_number=number)
    return new, ev.CaseRegistered(**_moved(s, new, clock), case_number=number)


@_move(cmd.RecordJudgment, S.FILED)
def _judgment(s: DisputeState, c: cmd.RecordJudgment, clock: Clock) -> Moved:
    new = replace(s, status=S.JUDGED)
    return new, ev.JudgmentRecorded(**_moved(s, new, clock))


# judicial confirmation and the end ----------------------------------------------------------


@_move(cmd.ApplyForConfirmation, S.AGREEMENT_SIGNED)
def _apply_confirmation(s: DisputeState, c: cmd.ApplyForConfirmation, clock: Clock) -> Moved:
    # Both sides apply together within 30 days of the agreement taking effect
    # (民事诉讼法 Art. 205, 2023 text).
    if not c.all_parties_apply:
        _refuse(s, c, N_("Judicial confirmation is applied for by all parties together."))
    assert s.confirmation_due is not None
    if clock.now > s.confirmation_due:
        _refuse(
            s,
            c,
            N_(
                "Judicial confirmation must be applied for within 30 days of the agreement taking effect."
            ),
        )
    new = replace(s, status=S.CONFIRMATION)
    return new, ev.ConfirmationApplied(**_moved(s, new, clock))


@_move(cmd.ConfirmAgreement, S.CONFIRMATION)
def _confirm(s: DisputeState, c: cmd.ConfirmAgreement, clock: Clock) -> Moved:
    new = replace(s, status=S.CONFIRMED, confirmation=ConfirmationResult.CONFIRMED)
    return new, ev.AgreementConfirmed(**_moved(s, new, clock))


@_move(cmd.RejectConfirmation, S.CONFIRMATION)
def _reject(s: DisputeState, c: cmd.RejectConfirmation, clock: Clock) -> Moved:
    reason = _required(c.reason, "reason")
    new = replace(s, status=S.CONFIRMATION_REJECTED, confirmation=ConfirmationResult.REJECTED)
    return new, ev.ConfirmationRejected(**_moved(s, new, clock), reason=reason)


@_move(cmd.ServeDocuments, S.CONFIRMED, S.CONFIRMATION_REJECTED, S.JUDGED)
def _serve(s: DisputeState, c: cmd.ServeDocuments, clock: Clock) -> Moved:
    document = "judgment" if s.status is S.JUDGED else "ruling"
    new = replace(s, status=S.SERVED)
    return new, ev.DocumentsServed(**_moved(s, new, clock), document=document)


@_move(cmd.CloseDispute, S.AGREEMENT_SIGNED, S.SERVED)
def _close(s: DisputeState, c: cmd.CloseDispute, clock: Clock) -> Moved:
    new = replace(s, status=S.CLOSED)
    return new, ev.DisputeClosed(**_moved(s, new, clock))
