"""The dispute workflow, move by move: every (status, command) pair, then the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.commands import (
    ALL_COMMANDS,
    COMMAND_LABELS,
    AcceptAssignment,
    AcceptTriage,
    ApplyForConfirmation,
    AssignMediator,
    ChooseFiling,
    ChooseMediatorJointly,
    CloseDispute,
    CloseSession,
    Command,
    ConfirmAgreement,
    DeclareConflict,
    DeclineAssignment,
    DeclineFiling,
    ExtendPeriod,
    MarkRespondentUnreachable,
    OpenSession,
    OverrideTriage,
    ProposeMediator,
    RecordAgreement,
    RecordAllSignatures,
    RecordFailure,
    RecordJudgment,
    RecordPartialAgreement,
    RecordRespondentConsent,
    RecordRespondentRefusal,
    RecordTriage,
    RegisterCase,
    RejectConfirmation,
    RequestReplacement,
    RouteToFiling,
    SaveDraft,
    ScheduleSession,
    ServeDocuments,
    SubmitApplication,
    WithdrawApplication,
)
from server.domain.disputes import (
    GROUND_LABELS,
    STATUS_LABELS,
    TERMINAL_STATUSES,
    Complexity,
    DeadlineKind,
    DisputeState,
    DisputeStatus,
    TerminationGround,
    running_deadlines,
)
from server.domain.errors import DomainError, Invalid
from server.domain.events import MediationFailed
from server.domain.roles import DisputeRole
from server.domain.workflow import (
    WRONG_STATE,
    IllegalTransition,
    allowed_commands,
    decide,
)

S = DisputeStatus
G = TerminationGround

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
LATER = T0 + timedelta(hours=1)
MEDIATOR, OTHER_MEDIATOR = 7, 8

SUBMIT = SubmitApplication(online_mediation_consent=True, electronic_service_consent=True)
TRIAGE = RecordTriage(Complexity.SIMPLE, score=1, suitable=True)
OPEN_FOR_MEDIATION = (SUBMIT, TRIAGE, AcceptTriage())
MEDIATING_PATH = (
    *OPEN_FOR_MEDIATION,
    RecordRespondentConsent(),
    AssignMediator(MEDIATOR),
    AcceptAssignment(MEDIATOR),
    ScheduleSession(1, T0 + timedelta(days=2)),
)
SIGNED_PATH = (*MEDIATING_PATH, RecordAgreement("repay 50,000 by June"), RecordAllSignatures())
REJECTED_PATH = (*SIGNED_PATH, ApplyForConfirmation(), RejectConfirmation("harms a third party"))
FAILED_PATH = (*MEDIATING_PATH, RecordFailure(frozenset({G.IRRECONCILABLE}), "far apart"))
FILED_PATH = (*FAILED_PATH, ChooseFiling(), RegisterCase("（2026）演0101民初1号"))

# How the test reaches each status: the dispute every row of the table starts from.
PATHS: dict[DisputeStatus, tuple[Command, ...]] = {
    S.DRAFT: (),
    S.SUBMITTED: (SUBMIT,),
    S.TRIAGED: (SUBMIT, TRIAGE),
    S.AWAITING_MEDIATOR: OPEN_FOR_MEDIATION,
    S.MEDIATOR_ASSIGNED: (*OPEN_FOR_MEDIATION, AssignMediator(MEDIATOR)),
    S.MEDIATING: MEDIATING_PATH,
    S.AGREEMENT_REACHED: (*MEDIATING_PATH, RecordAgreement("repay 50,000 by June")),
    S.AGREEMENT_SIGNED: SIGNED_PATH,
    S.CONFIRMATION: (*SIGNED_PATH, ApplyForConfirmation()),
    S.CONFIRMED: (*SIGNED_PATH, ApplyForConfirmation(), ConfirmAgreement()),
    S.CONFIRMATION_REJECTED: REJECTED_PATH,
    S.FAILED: FAILED_PATH,
    S.FILING_PENDING: (*FAILED_PATH, ChooseFiling()),
    S.FILED: FILED_PATH,
    S.JUDGED: (*FILED_PATH, RecordJudgment()),
    S.SERVED: (*REJECTED_PATH, ServeDocuments()),
    S.CLOSED: (*SIGNED_PATH, CloseDispute()),
    S.WITHDRAWN: (SUBMIT, WithdrawApplication()),
}

# One command of each type, sent an hour after the path (the unreachable respondent
# is marked ten days later, once the three working days have run out).
SAMPLES: dict[type[Command], tuple[Command, datetime]] = {
    cmd.__class__: (cmd, at)
    for cmd, at in [
        (SaveDraft(frozenset({"summary"})), LATER),
        (SUBMIT, LATER),
        (TRIAGE, LATER),
        (AcceptTriage(), LATER),
        (OverrideTriage(Complexity.COMPLEX, "the insurer joins as a third party"), LATER),
        (RouteToFiling("asks to confirm a marriage void"), LATER),
        (ChooseMediatorJointly(OTHER_MEDIATOR), LATER),
        (ProposeMediator(DisputeRole.APPLICANT, OTHER_MEDIATOR), LATER),
        (AssignMediator(OTHER_MEDIATOR), LATER),
        (AcceptAssignment(MEDIATOR), LATER),
        (DeclineAssignment(MEDIATOR, "full calendar"), LATER),
        (DeclareConflict(MEDIATOR, "the respondent is my cousin"), LATER),
        (RequestReplacement(DisputeRole.APPLICANT, "met the respondent before"), LATER),
        (RecordRespondentConsent(), LATER),
        (RecordRespondentRefusal("prefers a lawsuit"), LATER),
        (MarkRespondentUnreachable(), T0 + timedelta(days=10)),
        (ScheduleSession(2, T0 + timedelta(days=3)), LATER),
        (OpenSession(1), LATER),
        (CloseSession(1), LATER),
        (ExtendPeriod(15, all_parties_consent=True), LATER),
        (RecordAgreement("repay 50,000 by June"), LATER),
        (RecordPartialAgreement("the principal", "the interest"), LATER),
        (RecordFailure(frozenset({G.IRRECONCILABLE}), "far apart on liability"), LATER),
        (RecordAllSignatures(), LATER),
        (ChooseFiling(), LATER),
        (DeclineFiling(), LATER),
        (RegisterCase("（2026）演0101民初2号"), LATER),
        (RecordJudgment(), LATER),
        (ApplyForConfirmation(), LATER),
        (ConfirmAgreement(), LATER),
        (RejectConfirmation("contrary to law"), LATER),
        (ServeDocuments(), LATER),
        (CloseDispute(), LATER),
        (WithdrawApplication(settled=True), LATER),
    ]
}

GUARD = "open in this status, refused by its rule for this dispute"

# The expected table.  A command not listed for a status is refused there and not
# offered by allowed_commands; GUARD marks a command that is offered but refused for
# the dispute of PATHS (the note says why).
TABLE: dict[DisputeStatus, dict[type[Command], DisputeStatus | str]] = {
    S.DRAFT: {
        SaveDraft: S.DRAFT,
        SubmitApplication: S.SUBMITTED,
    },
    S.SUBMITTED: {
        RecordTriage: S.TRIAGED,
        WithdrawApplication: S.WITHDRAWN,
    },
    S.TRIAGED: {
        AcceptTriage: S.AWAITING_MEDIATOR,
        OverrideTriage: S.AWAITING_MEDIATOR,
        RouteToFiling: S.FILING_PENDING,
        WithdrawApplication: S.WITHDRAWN,
    },
    S.AWAITING_MEDIATOR: {
        ChooseMediatorJointly: S.MEDIATOR_ASSIGNED,
        ProposeMediator: S.AWAITING_MEDIATOR,  # one side's pick; the other has not picked
        AssignMediator: S.MEDIATOR_ASSIGNED,
        RecordRespondentConsent: S.AWAITING_MEDIATOR,
        RecordRespondentRefusal: S.FAILED,
        MarkRespondentUnreachable: S.FAILED,
        WithdrawApplication: S.WITHDRAWN,
    },
    S.MEDIATOR_ASSIGNED: {
        AcceptAssignment: S.MEDIATING,
        DeclineAssignment: S.AWAITING_MEDIATOR,
        DeclareConflict: S.AWAITING_MEDIATOR,
        RequestReplacement: S.AWAITING_MEDIATOR,
        RecordRespondentConsent: S.MEDIATOR_ASSIGNED,
        RecordRespondentRefusal: S.FAILED,
        MarkRespondentUnreachable: S.FAILED,
        WithdrawApplication: S.WITHDRAWN,
    },
    S.MEDIATING: {
        DeclareConflict: S.AWAITING_MEDIATOR,
        RequestReplacement: S.AWAITING_MEDIATOR,
        RecordRespondentConsent: GUARD,  # the respondent already consented
        RecordRespondentRefusal: GUARD,  # likewise
        MarkRespondentUnreachable: GUARD,  # likewise
        ScheduleSession: S.MEDIATING,
        OpenSession: S.MEDIATING,
        CloseSession: GUARD,  # no session is open
        ExtendPeriod: S.MEDIATING,
        RecordAgreement: S.AGREEMENT_REACHED,
        RecordPartialAgreement: S.AGREEMENT_REACHED,
        RecordFailure: S.FAILED,
        WithdrawApplication: S.WITHDRAWN,
    },
    S.AGREEMENT_REACHED: {
        RecordAllSignatures: S.AGREEMENT_SIGNED,
        RecordFailure: S.FAILED,
    },
    S.AGREEMENT_SIGNED: {
        ApplyForConfirmation: S.CONFIRMATION,
        CloseDispute: S.CLOSED,
    },
    S.CONFIRMATION: {
        ConfirmAgreement: S.CONFIRMED,
        RejectConfirmation: S.CONFIRMATION_REJECTED,
    },
    S.CONFIRMED: {
        ServeDocuments: S.SERVED,
    },
    S.CONFIRMATION_REJECTED: {
        ServeDocuments: S.SERVED,
    },
    S.FAILED: {
        ChooseFiling: S.FILING_PENDING,
        DeclineFiling: S.CLOSED,
    },
    S.FILING_PENDING: {
        RegisterCase: S.FILED,
    },
    S.FILED: {
        RecordJudgment: S.JUDGED,
    },
    S.JUDGED: {
        ServeDocuments: S.SERVED,
    },
    S.SERVED: {
        ChooseFiling: S.FILING_PENDING,  # the confirmation was rejected
        CloseDispute: S.CLOSED,
    },
    S.CLOSED: {},
    S.WITHDRAWN: {},
}


def reach(status: DisputeStatus) -> DisputeState:
    state = DisputeState()
    for command in PATHS[status]:
        state = decide(state, command, now=T0).new_state
    assert state.status is status
    return state


def run(state: DisputeState, *commands: Command, now: datetime = LATER) -> DisputeState:
    for command in commands:
        state = decide(state, command, now=now).new_state
    return state


def refusal(state: DisputeState, command: Command, now: datetime = LATER) -> DomainError:
    with pytest.raises(DomainError) as refused:
        decide(state, command, now=now)
    return refused.value


def test_the_table_covers_every_status_and_every_command() -> None:
    assert set(TABLE) == set(DisputeStatus) == set(PATHS)
    assert set(SAMPLES) == set(ALL_COMMANDS) == set(COMMAND_LABELS)


@pytest.mark.parametrize("status", list(DisputeStatus))
@pytest.mark.parametrize("command_type", ALL_COMMANDS, ids=lambda c: c.__name__)
def test_each_status_and_command(status: DisputeStatus, command_type: type[Command]) -> None:
    state = reach(status)
    command, now = SAMPLES[command_type]
    expected = TABLE[status].get(command_type)
    if isinstance(expected, DisputeStatus):
        decision = decide(state, command, now=now)
        assert decision.new_state.status is expected
        assert decision.events[-1].from_status is status
        assert decision.events[-1].to_status is expected
    else:
        refused = refusal(state, command, now)
        assert isinstance(refused, IllegalTransition)
        assert (refused.message == WRONG_STATE) is (expected is None)


@pytest.mark.parametrize("status", list(DisputeStatus))
def test_allowed_commands_offer_exactly_the_open_moves(status: DisputeStatus) -> None:
    assert set(allowed_commands(reach(status))) == set(TABLE[status])


def test_terminal_statuses_accept_nothing() -> None:
    assert {S.CLOSED, S.WITHDRAWN} == TERMINAL_STATUSES
    for status in TERMINAL_STATUSES:
        assert TABLE[status] == {} and allowed_commands(reach(status)) == []


def test_every_status_command_and_ground_has_a_label() -> None:
    assert set(STATUS_LABELS) == set(DisputeStatus)
    assert set(GROUND_LABELS) == set(TerminationGround)
    assert all(label.strip() for label in COMMAND_LABELS.values())


# the refusal says where the dispute is and what is allowed ---------------------------


def test_confirming_without_a_signed_agreement_is_refused_and_says_what_is_allowed() -> None:
    state = reach(S.AGREEMENT_REACHED)
    for command in (ConfirmAgreement(), ApplyForConfirmation()):
        refused = refusal(state, command)
        assert isinstance(refused, IllegalTransition)
        assert refused.code == "illegal_transition"
        assert refused.status is S.AGREEMENT_REACHED
        assert refused.allowed == ("record_all_signatures", "record_failure")
        assert refused.message % refused.params == (
            "This dispute is Agreement reached, awaiting signatures; allowed now: "
            "Record that all parties signed, Record the failure of mediation."
        )
    assert isinstance(refusal(reach(S.MEDIATING), ConfirmAgreement()), IllegalTransition)


def test_a_closed_dispute_allows_nothing_and_the_params_translate() -> None:
    refused = refusal(reach(S.CLOSED), ServeDocuments())
    assert isinstance(refused, IllegalTransition)
    assert refused.message % refused.params == "This dispute is Closed; allowed now: nothing."
    chinese = {"Closed": "已结案", "nothing": "无"}
    assert refused.localised_params(lambda text: chinese.get(text, text))["state"] == "已结案"
    assert refused.localised_params(lambda text: chinese.get(text, text))["allowed"] == "无"
    assert all(isinstance(value, str) for value in refused.params.values())


# the mediator ------------------------------------------------------------------------


def test_a_mediator_who_declined_cannot_then_accept_nor_be_assigned_again() -> None:
    state = run(reach(S.MEDIATOR_ASSIGNED), DeclineAssignment(MEDIATOR, "full calendar"))
    assert state.status is S.AWAITING_MEDIATOR and state.declined_by == {MEDIATOR}
    refused = refusal(state, AcceptAssignment(MEDIATOR))
    assert isinstance(refused, IllegalTransition) and refused.message == WRONG_STATE
    assert isinstance(refusal(state, AssignMediator(MEDIATOR)), IllegalTransition)
    assert run(state, AssignMediator(OTHER_MEDIATOR)).mediator_id == OTHER_MEDIATOR


def test_accepting_an_accepted_assignment_is_refused_without_a_second_event() -> None:
    state = reach(S.MEDIATING)
    assert isinstance(refusal(state, AcceptAssignment(MEDIATOR)), IllegalTransition)


def test_only_the_assigned_mediator_answers_the_assignment() -> None:
    state = reach(S.MEDIATOR_ASSIGNED)
    assert isinstance(refusal(state, AcceptAssignment(OTHER_MEDIATOR)), IllegalTransition)
    assert isinstance(refusal(state, DeclineAssignment(OTHER_MEDIATOR, "no")), IllegalTransition)


def test_declining_needs_a_reason() -> None:
    refused = refusal(reach(S.MEDIATOR_ASSIGNED), DeclineAssignment(MEDIATOR, "  "))
    assert isinstance(refused, Invalid) and refused.field == "reason"


def test_a_conflict_of_interest_forces_reassignment_and_the_period_runs_on() -> None:
    mediating = reach(S.MEDIATING)
    state = run(mediating, DeclareConflict(MEDIATOR, "the respondent is my cousin"))
    assert state.status is S.AWAITING_MEDIATOR and state.assignment is None
    assert MEDIATOR in state.excluded_mediators
    assert isinstance(refusal(state, AssignMediator(MEDIATOR)), IllegalTransition)
    state = run(state, AssignMediator(OTHER_MEDIATOR), AcceptAssignment(OTHER_MEDIATOR))
    assert state.status is S.MEDIATING and state.period_ends_at == mediating.period_ends_at


def test_a_party_may_ask_for_another_mediator() -> None:
    state = run(reach(S.MEDIATING), RequestReplacement(DisputeRole.RESPONDENT, "partial"))
    assert state.status is S.AWAITING_MEDIATOR and MEDIATOR in state.excluded_mediators
    refused = refusal(reach(S.MEDIATING), RequestReplacement(DisputeRole.MEDIATOR, "x"))
    assert isinstance(refused, Invalid) and refused.field == "side"


def test_the_parties_choose_together_only_within_two_working_days() -> None:
    state = reach(S.AWAITING_MEDIATOR)  # triage accepted Monday 2 March
    wednesday_night = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    chosen = run(state, ChooseMediatorJointly(OTHER_MEDIATOR), now=wednesday_night)
    assert chosen.jointly_chosen and chosen.mediator_id == OTHER_MEDIATOR
    thursday = datetime(2026, 3, 4, 16, 30, tzinfo=UTC)  # 00:30 on Thursday
    assert isinstance(
        refusal(state, ChooseMediatorJointly(OTHER_MEDIATOR), thursday), IllegalTransition
    )
    assert not run(state, AssignMediator(OTHER_MEDIATOR), now=thursday).jointly_chosen


# the respondent ------------------------------------------------------------------------


def test_the_respondent_is_unreachable_only_after_three_working_days() -> None:
    state = reach(S.AWAITING_MEDIATOR)  # asked Monday 2 March; due Thursday 5 March
    refused = refusal(state, MarkRespondentUnreachable(), datetime(2026, 3, 5, 12, tzinfo=UTC))
    assert isinstance(refused, IllegalTransition) and refused.params["due"] == "2026-03-05"
    failed = run(state, MarkRespondentUnreachable(), now=datetime(2026, 3, 5, 16, tzinfo=UTC))
    assert failed.status is S.FAILED and failed.termination_grounds == {G.PARTY_UNREACHABLE}


def test_a_respondent_who_refuses_ends_the_mediation_and_the_applicant_may_file() -> None:
    failed = run(reach(S.MEDIATOR_ASSIGNED), RecordRespondentRefusal("prefers a lawsuit"))
    assert failed.status is S.FAILED and failed.termination_grounds == {G.PARTY_UNWILLING}
    assert run(failed, ChooseFiling()).status is S.FILING_PENDING
    assert run(failed, DeclineFiling()).filing_chosen is False


def test_the_respondents_answer_is_recorded_once() -> None:
    state = run(reach(S.AWAITING_MEDIATOR), RecordRespondentConsent())
    for command in (RecordRespondentConsent(), RecordRespondentRefusal()):
        assert isinstance(refusal(state, command), IllegalTransition)


# sessions and the period ------------------------------------------------------------------


def test_sessions_wait_for_the_respondents_consent() -> None:
    state = run(reach(S.MEDIATOR_ASSIGNED), AcceptAssignment(MEDIATOR))
    schedule = ScheduleSession(1, T0 + timedelta(days=2))
    assert isinstance(refusal(state, schedule), IllegalTransition)
    assert isinstance(refusal(state, RecordAgreement()), IllegalTransition)
    assert run(state, RecordRespondentConsent(), schedule).scheduled_sessions == {1}


def test_separate_session_times_need_consent_and_a_future_start() -> None:
    state = reach(S.MEDIATING)
    start = T0 + timedelta(days=3)
    assert isinstance(refusal(state, ScheduleSession(2, start, True, False)), IllegalTransition)
    assert run(state, ScheduleSession(2, start, True, True)).scheduled_sessions == {1, 2}
    refused = refusal(state, ScheduleSession(2, T0))
    assert isinstance(refused, Invalid) and refused.field == "starts_at"
    assert isinstance(refusal(state, ScheduleSession(1, start)), IllegalTransition)


def test_a_session_opens_once_and_must_close_before_an_outcome() -> None:
    state = run(reach(S.MEDIATING), OpenSession(1))
    assert state.open_session == 1 and state.status is S.MEDIATING
    assert isinstance(refusal(state, OpenSession(1)), IllegalTransition)
    assert isinstance(refusal(state, CloseSession(2)), IllegalTransition)
    refused = refusal(state, RecordAgreement())
    assert isinstance(refused, IllegalTransition)
    assert refused.message == "Close the open session first."
    state = run(state, CloseSession(1))
    assert state.open_session is None and state.held_sessions == {1}
    assert isinstance(refusal(state, OpenSession(1)), IllegalTransition)  # held already
    assert isinstance(refusal(state, ScheduleSession(1, LATER + timedelta(1))), IllegalTransition)


def test_extending_the_period_needs_every_partys_consent_and_a_running_period() -> None:
    state = reach(S.MEDIATING)
    assert state.period_ends_at == datetime(2026, 4, 1, 15, 59, 59, tzinfo=UTC)
    refused = refusal(state, ExtendPeriod(15, all_parties_consent=False))
    assert isinstance(refused, IllegalTransition)
    assert refused.message == "Extending the mediation period needs the consent of all parties."
    extended = run(state, ExtendPeriod(15, all_parties_consent=True))
    assert extended.period_ends_at == datetime(2026, 4, 16, 15, 59, 59, tzinfo=UTC)
    assert extended.extensions == (15,) and extended.period_days == 45
    too_late = datetime(2026, 4, 2, 2, tzinfo=UTC)
    assert isinstance(refusal(state, ExtendPeriod(15, True), too_late), IllegalTransition)
    refused = refusal(state, ExtendPeriod(0, True))
    assert isinstance(refused, Invalid) and refused.field == "days"


# outcome -------------------------------------------------------------------------------


def test_failure_needs_failure_grounds_and_a_report() -> None:
    state = reach(S.MEDIATING)
    for grounds in (frozenset(), frozenset({G.AGREEMENT_REACHED})):
        refused = refusal(state, RecordFailure(grounds, "report"))
        assert isinstance(refused, Invalid) and refused.field == "grounds"
    refused = refusal(state, RecordFailure(frozenset({G.OTHER}), " "))
    assert isinstance(refused, Invalid) and refused.field == "report"


def test_an_expired_period_is_a_ground_only_once_it_has_expired() -> None:
    state = reach(S.MEDIATING)
    expired = RecordFailure(frozenset({G.PERIOD_EXPIRED, G.IRRECONCILABLE}), "no extension")
    assert isinstance(refusal(state, expired), IllegalTransition)
    after = datetime(2026, 4, 2, 2, tzinfo=UTC)
    failed = run(state, expired, now=after)
    assert failed.termination_grounds == {G.PERIOD_EXPIRED, G.IRRECONCILABLE}


def test_refusing_to_sign_is_a_ground_once_an_agreement_is_drafted() -> None:
    refused_to_sign = RecordFailure(frozenset({G.REFUSED_TO_SIGN}), "the respondent won't sign")
    assert isinstance(refusal(reach(S.MEDIATING), refused_to_sign), IllegalTransition)
    assert run(reach(S.AGREEMENT_REACHED), refused_to_sign).status is S.FAILED


def test_the_failure_event_carries_what_the_audit_row_needs() -> None:
    decision = decide(
        reach(S.MEDIATING),
        RecordFailure(frozenset({G.IRRECONCILABLE, G.OTHER}), "far apart", "missed two sessions"),
        now=LATER,
    )
    (event,) = decision.events
    assert isinstance(event, MediationFailed) and event.name() == "mediation_failed"
    assert event.details() == {
        "from_status": "mediating",
        "to_status": "failed",
        "grounds": ["irreconcilable", "other"],
        "report": "far apart",
        "cost_increasing_conduct": "missed two sessions",
    }


def test_a_partial_agreement_goes_to_signing_with_the_rest_named() -> None:
    state = reach(S.MEDIATING)
    refused = refusal(state, RecordPartialAgreement("the principal", ""))
    assert isinstance(refused, Invalid) and refused.field == "unresolved"
    (event,) = decide(state, RecordPartialAgreement("principal", "interest"), now=LATER).events
    assert event.details()["unresolved"] == "interest"


# judicial confirmation and filing ---------------------------------------------------------


def test_confirmation_is_applied_for_jointly_within_thirty_days_of_signing() -> None:
    state = reach(S.AGREEMENT_SIGNED)  # signed Monday 2 March; 1 April is a Wednesday
    assert isinstance(refusal(state, ApplyForConfirmation(False)), IllegalTransition)
    in_time = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)
    assert run(state, ApplyForConfirmation(), now=in_time).status is S.CONFIRMATION
    too_late = datetime(2026, 4, 1, 16, 30, tzinfo=UTC)
    assert isinstance(refusal(state, ApplyForConfirmation(), too_late), IllegalTransition)


def test_after_a_confirmed_agreement_is_served_there_is_no_filing() -> None:
    served = run(reach(S.CONFIRMED), ServeDocuments())
    assert isinstance(refusal(served, ChooseFiling()), IllegalTransition)
    assert run(served, CloseDispute()).status is S.CLOSED


def test_after_a_judgment_is_served_there_is_no_second_filing() -> None:
    served = run(reach(S.JUDGED), ServeDocuments())
    assert isinstance(refusal(served, ChooseFiling()), IllegalTransition)


# triage and the application ---------------------------------------------------------------


def test_an_unsuitable_triage_cannot_simply_be_accepted() -> None:
    state = run(reach(S.SUBMITTED), RecordTriage(Complexity.SIMPLE, 0, suitable=False))
    assert isinstance(refusal(state, AcceptTriage()), IllegalTransition)
    assert run(state, RouteToFiling("status confirmation")).status is S.FILING_PENDING
    overridden = run(state, OverrideTriage(Complexity.SIMPLE, "only the money is in dispute"))
    assert overridden.status is S.AWAITING_MEDIATOR and overridden.triage_overridden


def test_an_override_must_change_the_result() -> None:
    state = reach(S.TRIAGED)  # simple, suitable
    assert isinstance(refusal(state, OverrideTriage(Complexity.SIMPLE, "x")), IllegalTransition)
    refused = refusal(state, OverrideTriage(Complexity.COMPLEX, ""))
    assert isinstance(refused, Invalid) and refused.field == "reason"
    assert run(state, OverrideTriage(Complexity.COMPLEX, "x")).complexity is Complexity.COMPLEX


def test_a_draft_save_without_changes_and_an_application_without_consent_are_refused() -> None:
    draft = DisputeState()
    assert isinstance(refusal(draft, SaveDraft(frozenset())), IllegalTransition)
    refused = refusal(draft, SubmitApplication(False, True))
    assert isinstance(refused, Invalid) and refused.field == "online_mediation_consent"


def test_withdrawing_after_settling_records_ground_two() -> None:
    state = run(reach(S.MEDIATING), WithdrawApplication(settled=True, reason="paid"))
    assert state.status is S.WITHDRAWN and state.termination_grounds == {G.SETTLED_AND_WITHDRAWN}
    assert isinstance(refusal(reach(S.AGREEMENT_REACHED), WithdrawApplication()), IllegalTransition)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        decide(DisputeState(), SUBMIT, now=datetime(2026, 3, 2, 10))


# deadlines -----------------------------------------------------------------------------


def test_the_running_deadlines_follow_the_dispute() -> None:
    kinds = {s: [d.kind for d in running_deadlines(reach(s))] for s in DisputeStatus}
    assert kinds[S.SUBMITTED] == [DeadlineKind.ASSIGNMENT]
    assert kinds[S.AWAITING_MEDIATOR] == [
        DeadlineKind.JOINT_CHOICE,  # Wednesday 4 March
        DeadlineKind.ASSIGNMENT,  # Thursday 5 March, three working days after submission
        DeadlineKind.RESPONDENT_ANSWER,  # Thursday 5 March
    ]
    assert kinds[S.MEDIATOR_ASSIGNED] == [
        DeadlineKind.ACCEPTANCE,
        DeadlineKind.RESPONDENT_ANSWER,
    ]
    assert kinds[S.MEDIATING] == [DeadlineKind.MEDIATION_PERIOD]
    assert kinds[S.AGREEMENT_SIGNED] == [DeadlineKind.CONFIRMATION_APPLICATION]
    assert kinds[S.CLOSED] == []
    (assignment,) = running_deadlines(reach(S.SUBMITTED))
    assert assignment.due == datetime(2026, 3, 5, 15, 59, 59, tzinfo=UTC)


# the whole way ---------------------------------------------------------------------------


def test_the_way_from_application_to_filing_reads_as_events() -> None:
    state, names, changed = DisputeState(), [], []
    for command in (*FILED_PATH, RecordJudgment(), ServeDocuments(), CloseDispute()):
        decision = decide(state, command, now=T0)
        state = decision.new_state
        names += [event.name() for event in decision.events]
        changed.append(decision.status_changed)
    assert names == [
        "application_submitted",
        "dispute_triaged",
        "triage_accepted",
        "respondent_consented",
        "mediator_assigned",
        "assignment_accepted",
        "session_scheduled",
        "mediation_failed",
        "filing_chosen",
        "case_registered",
        "judgment_recorded",
        "documents_served",
        "dispute_closed",
    ]
    assert changed == [
        True,
        True,
        True,
        False,
        True,
        True,
        False,
        True,
        True,
        True,
        True,
        True,
        True,
    ]
    assert state.status is S.CLOSED and state.case_number == "（2026）演0101民初1号"


def test_the_same_pick_by_both_sides_is_the_joint_choice() -> None:
    state = reach(S.AWAITING_MEDIATOR)
    picked = run(state, ProposeMediator(DisputeRole.APPLICANT, OTHER_MEDIATOR))
    assert picked.status is S.AWAITING_MEDIATOR and picked.applicant_proposal == OTHER_MEDIATOR
    assert isinstance(
        refusal(picked, ProposeMediator(DisputeRole.APPLICANT, OTHER_MEDIATOR)), IllegalTransition
    )
    other = run(picked, ProposeMediator(DisputeRole.RESPONDENT, MEDIATOR))
    assert other.status is S.AWAITING_MEDIATOR  # they differ: no choice yet
    chosen = run(other, ProposeMediator(DisputeRole.RESPONDENT, OTHER_MEDIATOR))
    assert chosen.status is S.MEDIATOR_ASSIGNED
    assert chosen.assignment is not None and chosen.assignment.jointly_chosen
    assert chosen.mediator_id == OTHER_MEDIATOR
