"""Carrying out workflow commands: who may send which, the one place a dispute's state
changes, the audit row of every event, and what follows an event (staff on the dispute,
the automatic triage)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import SYSTEM, Actor, AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.config import Settings
from server.db import workflow_codec
from server.db.models import (
    Dispute,
    DisputeAgent,
    DisputeParty,
    DisputeStaff,
    Document,
    Mediator,
    User,
)
from server.domain import commands as cmd
from server.domain import events as ev
from server.domain import triage, workflow
from server.domain.calendar import WorkingCalendar
from server.domain.disputes import DisputeState, DisputeType, running_deadlines
from server.domain.errors import N_, Forbidden, Invalid
from server.domain.roles import DisputeRole, Role

STAFF_DESK = frozenset({Role.CLERK, Role.TRIAGE_OFFICER, Role.COURT_ADMIN})
PARTY_SIDE = frozenset({Role.PARTY, Role.AGENT})

# who may send each command (the access check on the dispute comes first)
SENDERS: dict[type[cmd.Command], frozenset[Role]] = {
    cmd.SaveDraft: PARTY_SIDE | {Role.CLERK},
    cmd.SubmitApplication: PARTY_SIDE | {Role.CLERK},
    cmd.WithdrawApplication: PARTY_SIDE | {Role.CLERK},
    cmd.AcceptTriage: frozenset({Role.TRIAGE_OFFICER}),
    cmd.OverrideTriage: frozenset({Role.TRIAGE_OFFICER}),
    cmd.RouteToFiling: frozenset({Role.TRIAGE_OFFICER}),
    cmd.ChooseMediatorJointly: frozenset({Role.TRIAGE_OFFICER, Role.CLERK}),
    cmd.ProposeMediator: PARTY_SIDE,
    cmd.AssignMediator: frozenset({Role.TRIAGE_OFFICER, Role.COURT_ADMIN}),
    cmd.AcceptAssignment: frozenset({Role.MEDIATOR}),
    cmd.DeclineAssignment: frozenset({Role.MEDIATOR}),
    cmd.DeclareConflict: frozenset({Role.MEDIATOR}),
    cmd.RequestReplacement: PARTY_SIDE,
    cmd.RecordRespondentConsent: frozenset({Role.MEDIATOR, Role.CLERK, Role.PARTY, Role.AGENT}),
    cmd.RecordRespondentRefusal: frozenset({Role.MEDIATOR, Role.CLERK, Role.PARTY, Role.AGENT}),
    cmd.MarkRespondentUnreachable: frozenset({Role.MEDIATOR, Role.CLERK}),
    cmd.ScheduleSession: frozenset({Role.MEDIATOR}),
    cmd.OpenSession: frozenset({Role.MEDIATOR, Role.JUDGE}),
    cmd.CloseSession: frozenset({Role.MEDIATOR, Role.JUDGE}),
    cmd.ExtendPeriod: frozenset({Role.MEDIATOR}),
    cmd.RecordAgreement: frozenset({Role.MEDIATOR}),
    cmd.RecordPartialAgreement: frozenset({Role.MEDIATOR}),
    cmd.RecordFailure: frozenset({Role.MEDIATOR}),
    cmd.RecordAllSignatures: frozenset({Role.MEDIATOR, Role.CLERK}),
    cmd.ChooseFiling: PARTY_SIDE | {Role.CLERK},
    cmd.DeclineFiling: PARTY_SIDE | {Role.CLERK},
    cmd.RegisterCase: frozenset({Role.CLERK}),
    cmd.RecordJudgment: frozenset({Role.JUDGE, Role.CLERK}),
    cmd.ApplyForConfirmation: PARTY_SIDE | {Role.CLERK},
    cmd.ConfirmAgreement: frozenset({Role.JUDGE}),
    cmd.RejectConfirmation: frozenset({Role.JUDGE}),
    cmd.ServeDocuments: frozenset({Role.CLERK}),
    cmd.CloseDispute: frozenset({Role.CLERK, Role.JUDGE, Role.COURT_ADMIN}),
}
# commands only the platform sends (the automatic triage)
SYSTEM_COMMANDS = frozenset({cmd.RecordTriage})
# the party side that may send a command, where only one side may
APPLICANT_ONLY = frozenset(
    {
        cmd.SaveDraft,
        cmd.SubmitApplication,
        cmd.WithdrawApplication,
        cmd.ChooseFiling,
        cmd.DeclineFiling,
    }
)
RESPONDENT_ONLY = frozenset({cmd.RecordRespondentConsent, cmd.RecordRespondentRefusal})
BY_KEY: dict[str, type[cmd.Command]] = {c.key(): c for c in SENDERS}


def calendar_for(settings: Settings) -> WorkingCalendar:
    return WorkingCalendar.of(settings.holidays, settings.extra_working_days)


def state_of(dispute: Dispute) -> DisputeState:
    return workflow_codec.load(dispute.workflow)


async def sides_of(db: AsyncSession, dispute_id: int, user_id: int) -> set[DisputeRole]:
    """The party sides a user stands on in a dispute, as a party or an agent."""
    own = await db.scalars(
        select(DisputeParty.side).where(
            DisputeParty.dispute_id == dispute_id, DisputeParty.user_id == user_id
        )
    )
    represented = await db.scalars(
        select(DisputeParty.side)
        .join(DisputeAgent, DisputeAgent.party_id == DisputeParty.id)
        .where(DisputeAgent.dispute_id == dispute_id, DisputeAgent.user_id == user_id)
    )
    return set(own) | set(represented)


async def may_send(
    db: AsyncSession, principal: Principal, dispute: Dispute, command: type[cmd.Command]
) -> bool:
    if command in SYSTEM_COMMANDS or principal.role not in SENDERS.get(command, frozenset()):
        return False
    if principal.role in PARTY_SIDE:
        sides = await sides_of(db, dispute.id, principal.user_id)
        if command in APPLICANT_ONLY:
            return DisputeRole.APPLICANT in sides
        if command in RESPONDENT_ONLY:
            return DisputeRole.RESPONDENT in sides
        return bool(sides)
    if principal.role is Role.MEDIATOR:
        # only the mediator the dispute is with (or is offered to) acts as its mediator
        return dispute.mediator_user_id == principal.user_id
    return True


async def next_steps(
    db: AsyncSession, principal: Principal, dispute: Dispute
) -> list[type[cmd.Command]]:
    """What this caller may do now (the page's "what to do next")."""
    state = state_of(dispute)
    return [
        c for c in workflow.allowed_commands(state) if await may_send(db, principal, dispute, c)
    ]


@dataclass(frozen=True)
class Done:
    dispute: Dispute
    state: DisputeState
    events: list[ev.Event]


async def _locked(db: AsyncSession, dispute_id: int) -> Dispute:
    dispute = await db.scalar(select(Dispute).where(Dispute.id == dispute_id).with_for_update())
    assert dispute is not None
    return dispute


async def execute(
    db: AsyncSession,
    principal: Principal | None,
    dispute_id: int,
    command: cmd.Command,
    *,
    calendar: WorkingCalendar,
    now: datetime | None = None,
) -> Done:
    """Check the sender, decide, store the new state and its events: one unit of work.

    ``principal`` None: the platform itself (the automatic triage).
    """
    if principal is not None:
        await access.dispute_for(db, principal, dispute_id)
    dispute = await _locked(db, dispute_id)
    if principal is None:
        actor = SYSTEM
    else:
        if not await may_send(db, principal, dispute, type(command)):
            raise Forbidden(N_("You may not do this on this dispute.")).audited(
                "access.denied", dispute_id=dispute_id, command=type(command).key()
            )
        actor = principal.actor()
    decision = workflow.decide(
        state_of(dispute), command, now=now or datetime.now(UTC), calendar=calendar
    )
    await _store(db, dispute, decision.new_state)
    for event in decision.events:
        await _follow(db, dispute, event, principal)
        await audit.append(
            db,
            AuditEntry(
                "dispute." + event.name(),
                actor,
                "dispute",
                dispute.id,
                dispute_id=dispute.id,
                details=event.details(),
            ),
        )
    return Done(dispute, decision.new_state, list(decision.events))


async def _store(db: AsyncSession, dispute: Dispute, state: DisputeState) -> None:
    dispute.workflow = workflow_codec.dump(state)
    dispute.status = state.status.value
    dispute.complexity = state.complexity.value if state.complexity else None
    dispute.mediator_user_id = state.mediator_id
    deadlines = running_deadlines(state)
    dispute.next_due_at = deadlines[0].due if deadlines else None
    await db.flush()


async def _follow(
    db: AsyncSession, dispute: Dispute, event: ev.Event, principal: Principal | None
) -> None:
    """What an event means beyond the state: who works on the dispute."""
    if isinstance(event, ev.CaseRegistered) and principal is not None:
        await _add_staff(db, dispute.id, principal.user_id, DisputeRole.CLERK)
    elif isinstance(event, ev.MediatorAssigned | ev.MediatorChosenJointly):
        await _set_mediator(db, dispute.id, event.mediator_id)
    elif isinstance(event, ev.AssignmentDeclined | ev.ConflictDeclared | ev.ReplacementRequested):
        await _set_mediator(db, dispute.id, None)


async def _add_staff(db: AsyncSession, dispute_id: int, user_id: int, role: DisputeRole) -> None:
    on = await db.scalar(
        select(DisputeStaff.id).where(
            DisputeStaff.dispute_id == dispute_id,
            DisputeStaff.user_id == user_id,
            DisputeStaff.role == role,
        )
    )
    if on is None:
        db.add(DisputeStaff(dispute_id=dispute_id, user_id=user_id, role=role))
        await db.flush()


async def _set_mediator(db: AsyncSession, dispute_id: int, user_id: int | None) -> None:
    await db.execute(
        delete(DisputeStaff).where(
            DisputeStaff.dispute_id == dispute_id, DisputeStaff.role == DisputeRole.MEDIATOR
        )
    )
    if user_id is not None:
        db.add(DisputeStaff(dispute_id=dispute_id, user_id=user_id, role=DisputeRole.MEDIATOR))
    await db.flush()


# the automatic triage ----------------------------------------------------------------


async def triage_facts(db: AsyncSession, dispute: Dispute) -> triage.TriageFacts:
    parties = list(
        await db.scalars(select(DisputeParty).where(DisputeParty.dispute_id == dispute.id))
    )
    evidence = (
        await db.execute(
            select(func.count(Document.id)).where(
                Document.dispute_id == dispute.id, Document.kind == "evidence"
            )
        )
    ).scalar_one()
    prior = await _prior_disputes(db, dispute, parties)
    try:
        kind = DisputeType(dispute.dispute_type)
    except ValueError:
        kind = DisputeType.OTHER
    return triage.TriageFacts(
        dispute_type=kind,
        claim_amount=dispute.claim_amount,
        parties=len(parties),
        evidence_files=int(evidence),
        prior_disputes=prior,
    )


async def _prior_disputes(
    db: AsyncSession, dispute: Dispute, parties: Iterable[DisputeParty]
) -> int:
    ids = {p.id_number for p in parties if p.id_number}
    if len(ids) < 2:
        return 0
    shared = (
        select(DisputeParty.dispute_id)
        .where(DisputeParty.id_number.in_(ids), DisputeParty.dispute_id != dispute.id)
        .group_by(DisputeParty.dispute_id)
        .having(func.count(func.distinct(DisputeParty.id_number)) >= 2)
    )
    return int(await db.scalar(select(func.count()).select_from(shared.subquery())) or 0)


async def run_triage(
    db: AsyncSession, dispute_id: int, *, calendar: WorkingCalendar, now: datetime | None = None
) -> triage.TriageResult:
    """Classify a submitted dispute and record the result as the platform."""
    dispute = await _locked(db, dispute_id)
    result = triage.classify(await triage_facts(db, dispute))
    await execute(
        db,
        None,
        dispute_id,
        cmd.RecordTriage(result.complexity, result.score, result.suitable_for_mediation),
        calendar=calendar,
        now=now,
    )
    await audit.append(
        db,
        AuditEntry(
            "dispute.triage_reasons",
            Actor(role="system"),
            "dispute",
            dispute_id,
            dispute_id=dispute_id,
            details={
                "score": result.score,
                "reasons": [_reason(r) for r in result.reasons],
                "unsuitable": [_reason(r) for r in result.unsuitable_reasons],
            },
        ),
    )
    return result


def _reason(reason: triage.Reason) -> dict[str, Any]:
    return {
        "rule": reason.rule,
        "message": reason.message,
        "params": reason.params,
        "points": reason.points,
    }


# building commands from requests ---------------------------------------------------------


async def command_for(
    db: AsyncSession, principal: Principal, dispute: Dispute, key: str, body: dict[str, Any]
) -> cmd.Command:
    """A command from its URL key and JSON body; the sender's own identity fills in
    who is acting (the mediator, the side asking for a replacement)."""
    command_type = BY_KEY.get(key)
    if command_type is None:
        raise Invalid(N_("There is no such action."), field="action")
    values = dict(body)
    fields = set(command_type.__dataclass_fields__)
    if "mediator_id" in fields and command_type in (
        cmd.AcceptAssignment,
        cmd.DeclineAssignment,
        cmd.DeclareConflict,
    ):
        values["mediator_id"] = principal.user_id
    if "side" in fields:
        sides = await sides_of(db, dispute.id, principal.user_id)
        if not sides:
            raise Forbidden(N_("You may not do this on this dispute."))
        values["side"] = sorted(sides)[0].value
    if command_type in (cmd.AssignMediator, cmd.ChooseMediatorJointly, cmd.ProposeMediator):
        await _check_mediator(db, int(values.get("mediator_id") or 0))
    try:
        return TypeAdapter(command_type).validate_python(values)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "missing":
            raise Invalid(N_("This field is required: %(field)s."), field=field) from None
        raise Invalid(N_("This field is not valid: %(field)s."), field=field) from None


async def _check_mediator(db: AsyncSession, user_id: int) -> None:
    found = await db.scalar(
        select(Mediator)
        .join(User, User.id == Mediator.user_id)
        .where(Mediator.user_id == user_id, Mediator.active.is_(True), User.active.is_(True))
    )
    if found is None:
        raise Invalid(N_("Choose an active mediator from the roster."), field="mediator_id")
