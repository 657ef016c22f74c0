"""Random command sequences never take a dispute outside its defined states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.commands import (
    ALL_COMMANDS,
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
    FAILURE_GROUNDS,
    TERMINAL_STATUSES,
    AssignmentStatus,
    Complexity,
    DisputeState,
    DisputeStatus,
    TerminationGround,
)
from server.domain.errors import DomainError
from server.domain.roles import DisputeRole
from server.domain.workflow import WRONG_STATE, IllegalTransition, allowed_commands, decide

S = DisputeStatus
START = datetime(2026, 9, 28, 1, 0, tzinfo=UTC)

mediators = st.integers(1, 3)
sessions = st.integers(1, 3)
reasons = st.sampled_from(["", "  ", "a reason"])
grounds = st.frozensets(st.sampled_from(list(TerminationGround)), max_size=3)
complexities = st.sampled_from(list(Complexity))
session_starts = st.integers(-2, 20).map(lambda days: START + timedelta(days=days))

# Every command type, with payloads that are sometimes acceptable and sometimes not.
STRATEGIES: dict[type[Command], st.SearchStrategy[Command]] = {
    SaveDraft: st.builds(
        SaveDraft, st.frozensets(st.sampled_from(["summary", "amount"]), max_size=2)
    ),
    SubmitApplication: st.builds(SubmitApplication, st.booleans(), st.booleans()),
    RecordTriage: st.builds(RecordTriage, complexities, st.integers(-1, 9), st.booleans()),
    AcceptTriage: st.just(AcceptTriage()),
    OverrideTriage: st.builds(OverrideTriage, complexities, reasons),
    RouteToFiling: st.builds(RouteToFiling, reasons),
    ChooseMediatorJointly: st.builds(ChooseMediatorJointly, mediators),
    ProposeMediator: st.builds(ProposeMediator, st.sampled_from(list(DisputeRole)), mediators),
    AssignMediator: st.builds(AssignMediator, mediators),
    AcceptAssignment: st.builds(AcceptAssignment, mediators),
    DeclineAssignment: st.builds(DeclineAssignment, mediators, reasons),
    DeclareConflict: st.builds(DeclareConflict, mediators, reasons),
    RequestReplacement: st.builds(RequestReplacement, st.sampled_from(list(DisputeRole)), reasons),
    RecordRespondentConsent: st.just(RecordRespondentConsent()),
    RecordRespondentRefusal: st.builds(RecordRespondentRefusal, reasons),
    MarkRespondentUnreachable: st.just(MarkRespondentUnreachable()),
    ScheduleSession: st.builds(
        ScheduleSession, sessions, session_starts, st.booleans(), st.booleans()
    ),
    OpenSession: st.builds(OpenSession, sessions),
    CloseSession: st.builds(CloseSession, sessions),
    ExtendPeriod: st.builds(ExtendPeriod, st.integers(-1, 30), st.booleans()),
    RecordAgreement: st.builds(RecordAgreement, reasons),
    RecordPartialAgreement: st.builds(RecordPartialAgreement, reasons, reasons),
    RecordFailure: st.builds(RecordFailure, grounds, reasons, reasons),
    RecordAllSignatures: st.just(RecordAllSignatures()),
    ChooseFiling: st.just(ChooseFiling()),
    DeclineFiling: st.just(DeclineFiling()),
    RegisterCase: st.builds(RegisterCase, reasons),
    RecordJudgment: st.just(RecordJudgment()),
    ApplyForConfirmation: st.builds(ApplyForConfirmation, st.booleans()),
    ConfirmAgreement: st.just(ConfirmAgreement()),
    RejectConfirmation: st.builds(RejectConfirmation, reasons),
    ServeDocuments: st.just(ServeDocuments()),
    CloseDispute: st.just(CloseDispute()),
    WithdrawApplication: st.builds(WithdrawApplication, st.booleans(), reasons),
}
commands: st.SearchStrategy[Command] = st.one_of(list(STRATEGIES.values()))

# Gaps between commands: minutes to a fortnight, so deadlines both hold and pass.
gaps = st.integers(0, 14 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes))


def test_every_command_type_is_generated() -> None:
    assert set(STRATEGIES) == set(ALL_COMMANDS)


def step(state: DisputeState, command: Command, now: datetime) -> DisputeState:
    """Apply one command and check the properties of the move; return the next state."""
    before = state
    offered = type(command) in allowed_commands(state)
    try:
        decision = decide(state, command, now=now)
    except DomainError as refused:
        assert state == before  # nothing changed
        assert state.status not in TERMINAL_STATUSES or not offered
        if isinstance(refused, IllegalTransition) and refused.message == WRONG_STATE:
            assert not offered
        return state
    new = decision.new_state
    assert offered
    assert state.status not in TERMINAL_STATUSES
    assert new.status in DisputeStatus
    assert new != state
    assert decision.events, "an accepted command records what happened"
    assert any(event.to_status == new.status for event in decision.events)
    assert all(event.from_status == state.status for event in decision.events)
    assert all(event.at == now for event in decision.events)
    check_invariants(new)
    return new


def check_invariants(state: DisputeState) -> None:
    if state.status is S.MEDIATOR_ASSIGNED:
        assert state.assignment is not None
        assert state.assignment.status is AssignmentStatus.PROPOSED
    if state.status is S.MEDIATING:
        assert state.assignment is not None
        assert state.assignment.status is AssignmentStatus.ACCEPTED
        assert state.period_ends_at is not None
    if state.assignment is not None:
        assert state.assignment.mediator_id not in state.excluded_mediators
    assert state.declined_by <= state.excluded_mediators
    if state.open_session is not None:
        assert state.status is S.MEDIATING
        assert state.open_session not in state.scheduled_sessions | state.held_sessions
    assert not state.scheduled_sessions & state.held_sessions
    if state.status is S.FAILED:
        assert state.termination_grounds and state.termination_grounds <= FAILURE_GROUNDS
    if state.status in (S.AGREEMENT_SIGNED, S.CONFIRMATION, S.CONFIRMED):
        assert state.signed_at is not None
        assert state.termination_grounds == {TerminationGround.AGREEMENT_REACHED}
    if state.status is S.FILED:
        assert state.case_number


@settings(max_examples=300)
@given(st.lists(st.tuples(commands, gaps), max_size=40))
def test_random_sequences_stay_within_the_defined_states(
    moves: list[tuple[Command, timedelta]],
) -> None:
    state, now = DisputeState(), START
    for command, gap in moves:
        now += gap
        state = step(state, command, now)


def fitting(state: DisputeState, wanted: type[Command]) -> st.SearchStrategy[Command]:
    """A command of type ``wanted`` whose payload suits this dispute, where that matters."""
    mediator = st.just(state.mediator_id) if state.mediator_id is not None else mediators
    ours = sorted(state.scheduled_sessions | {state.open_session or 0} - {0}) or [1]
    reason = st.just("a reason")
    fitted: dict[type[Command], st.SearchStrategy[Command]] = {
        SubmitApplication: st.builds(SubmitApplication, st.just(True), st.booleans()),
        RecordTriage: st.builds(RecordTriage, complexities, st.integers(0, 9), st.booleans()),
        OverrideTriage: st.builds(OverrideTriage, complexities, reason),
        AcceptAssignment: st.builds(AcceptAssignment, mediator),
        DeclineAssignment: st.builds(DeclineAssignment, mediator, reason),
        DeclareConflict: st.builds(DeclareConflict, mediator, reason),
        OpenSession: st.builds(OpenSession, st.sampled_from(ours)),
        CloseSession: st.builds(CloseSession, st.sampled_from(ours)),
        RecordFailure: st.builds(
            RecordFailure,
            st.frozensets(st.sampled_from(sorted(FAILURE_GROUNDS)), min_size=1),
            reason,
        ),
        RegisterCase: st.builds(RegisterCase, reason),
        RejectConfirmation: st.builds(RejectConfirmation, reason),
    }
    return fitted.get(wanted, STRATEGIES[wanted])


# Moves that turn back or end early; the walks take them now and then, not mostly.
DETOURS = (
    WithdrawApplication,
    SaveDraft,
    DeclineAssignment,
    DeclareConflict,
    RequestReplacement,
    RecordRespondentRefusal,
    MarkRespondentUnreachable,
)


@settings(max_examples=300)
@given(st.data())
def test_walks_along_the_open_moves_stay_within_the_defined_states(data: st.DataObject) -> None:
    """Mostly pick a fitting command of a type open now, so walks reach the far states."""
    state, now = DisputeState(), START
    for _ in range(60):
        open_now = allowed_commands(state)
        if not open_now:
            assert state.status in TERMINAL_STATUSES
            break
        onward = [c for c in open_now if c not in DETOURS] or open_now
        wanted = data.draw(st.sampled_from(onward if data.draw(st.integers(0, 4)) else open_now))
        command = data.draw(fitting(state, wanted) if data.draw(st.integers(0, 9)) else commands)
        now += data.draw(st.integers(0, 3 * 24 * 60).map(lambda m: timedelta(minutes=m)))
        state = step(state, command, now)


@given(
    st.sampled_from(sorted(TERMINAL_STATUSES)),
    commands,
    gaps,
)
def test_terminal_states_accept_nothing(
    status: DisputeStatus, command: Command, gap: timedelta
) -> None:
    state = DisputeState(status=status)
    assert allowed_commands(state) == []
    try:
        decide(state, command, now=START + gap)
    except IllegalTransition as refused:
        assert refused.message == WRONG_STATE and refused.allowed == ()
    else:
        raise AssertionError("a terminal dispute accepted a command")
