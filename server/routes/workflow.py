"""Routes of the dispute workflow: actions (JSON and page forms), next steps, timeline,
filing package, and what the dispute page shows about the workflow.

One URL key per command (``assign_mediator``, ``record_failure``, ...).  Sessions
are scheduled, opened and closed through ``services.sessions``; everything else
through ``services.workflow``.  An illegal move is a 409 whose message names the
state and what is allowed; page forms come back to the dispute page with the
error (or a confirmation) shown there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import access
from server.auth.principal import Principal
from server.context import CHANNEL, db, principal, require_login, settings
from server.db.models import CaseSession, Dispute, DisputeParty
from server.domain import commands as cmd
from server.domain.calendar import Countdown
from server.domain.disputes import (
    COMPLEXITY_LABELS,
    DEADLINE_LABELS,
    FAILURE_GROUNDS,
    GROUND_LABELS,
    Complexity,
    DisputeState,
    DisputeStatus,
    TerminationGround,
    role_label,
    running_deadlines,
    status_label,
)
from server.domain.errors import N_, Conflict, Invalid
from server.i18n import gettext
from server.pagination import page_args
from server.routes.common import Flash, path_id, redirect
from server.services import filing, guidance, notices, roster, sessions, workflow
from server.services.disputes import DisputeFile

FLASH = Flash("yizhan.dispute-page.v1")  # signed notices of the page forms
TIMELINE_ON_PAGE = 100
S = DisputeStatus

# the application's own pages save and submit a draft (with its consents and the
# automatic triage); these actions are not taken here
# done through their own pages and records, never as a bare step: the application form,
# the agreement's signatures, the joint application and the judge's ruling
NOT_ON_PAGE = frozenset(
    {
        cmd.SaveDraft,
        cmd.SubmitApplication,
        cmd.RecordAllSignatures,
        cmd.ApplyForConfirmation,
        cmd.ConfirmAgreement,
        cmd.RejectConfirmation,
    }
)
# fields the service fills from the caller: the acting mediator, the side asking
FROM_CALLER = {
    (cmd.AcceptAssignment, "mediator_id"),
    (cmd.DeclineAssignment, "mediator_id"),
    (cmd.DeclareConflict, "mediator_id"),
    (cmd.RequestReplacement, "side"),
    (cmd.ProposeMediator, "side"),
    (cmd.ScheduleSession, "session_id"),  # the session is created by scheduling it
}

# how each command field is asked for: (kind, label message id)
FIELDS: dict[str, tuple[str, str]] = {
    "reason": ("textarea", N_("Reason")),
    "details": ("textarea", N_("Details of the conflict")),
    "complexity": ("choice", N_("Complexity")),
    "mediator_id": ("mediator", N_("Mediator")),
    "starts_at": ("datetime", N_("Start time")),
    "separate_times": ("checkbox", N_("Separate times for each party")),
    "separate_times_consent": ("checkbox", N_("The parties consent to separate times")),
    "session_id": ("session", N_("Session")),
    "days": ("number", N_("Extra days")),
    "all_parties_consent": ("checkbox", N_("All parties consent")),
    "summary": ("textarea", N_("Agreement summary")),
    "agreed": ("textarea", N_("Agreed terms")),
    "unresolved": ("textarea", N_("Unresolved matters")),
    "grounds": ("grounds", N_("Grounds for ending the mediation (Art. 25)")),
    "report": ("textarea", N_("Mediator's report: why mediation failed")),
    "cost_increasing_conduct": ("textarea", N_("Conduct that increased costs (optional)")),
    "case_number": ("text", N_("Case number")),
    "online_mediation_consent": ("checkbox", N_("I agree to online mediation")),
    "electronic_service_consent": ("checkbox", N_("I agree to electronic service")),
    "settled": ("checkbox", N_("The parties settled between themselves")),
    "all_parties_apply": ("checkbox", N_("All parties apply together")),
}
PARTY_TIMES = ("party_times", N_("Separate start time of each party (optional)"))
TRUE_VALUES = frozenset({"on", "1", "true", "yes"})

SESSION_WORDS = {
    "mediation": N_("Mediation session"),
    "hearing": N_("Hearing"),
    "confirmation_hearing": N_("Confirmation hearing"),
    "scheduled": N_("Scheduled"),
    "open": N_("In progress"),
    "held": N_("Held"),
    "cancelled": N_("Cancelled"),
}
DONE = N_("Done: %(action)s.")


# reading input ------------------------------------------------------------------------


M = TypeVar("M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleIn(_Model):
    starts_at: datetime
    separate_times: bool = False
    separate_times_consent: bool = False
    times: dict[int, datetime] = {}
    party_ids: list[int] | None = None


class SessionIn(_Model):
    session_id: int | None = None


def _validated(model: type[M], values: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "missing":
            raise Invalid(N_("This field is required: %(field)s."), field=name) from None
        raise Invalid(N_("This field is not valid: %(field)s."), field=name) from None


def _in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    """A time without an offset is the court's local time."""
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(settings(request).timezone)


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _iso_local(value: str, zone: ZoneInfo) -> str:
    try:
        return _local(datetime.fromisoformat(value), zone)
    except (TypeError, ValueError):
        return value


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        raw = await request.json()
    except ValueError:
        raise Invalid(N_("The request body is not valid JSON.")) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid(N_("The request body is not valid JSON."))
    return raw


def _form_values(data: MultiDictProxy[Any], command: type[cmd.Command] | None) -> dict[str, Any]:
    """A page form's fields as the JSON body the same action takes."""
    if command is None:
        return {}
    values: dict[str, Any] = {}
    names = [f.name for f in dataclasses.fields(command)]
    if command is cmd.ScheduleSession:
        names = [n for n in names if n != "session_id"]
    for name in names:
        kind = FIELDS.get(name, ("text", ""))[0]
        if kind == "checkbox":
            values[name] = str(data.get(name, "")).lower() in TRUE_VALUES
        elif kind == "grounds":
            values[name] = [str(v) for v in data.getall(name, []) if str(v)]
        else:
            value = str(data.get(name, "")).strip()
            if value:
                values[name] = value
    if command is cmd.ScheduleSession:
        times = {}
        for key, value in data.items():
            if key.startswith("time_") and str(value).strip():
                times[key.removeprefix("time_")] = str(value).strip()
        if times:
            values["times"] = times
        chosen = [str(v) for v in data.getall("party_ids", []) if str(v)]
        if chosen:
            values["party_ids"] = chosen
    return values


# carrying out an action -------------------------------------------------------------------


@dataclass(frozen=True)
class Performed:
    done: workflow.Done
    extra: dict[str, Any] = field(default_factory=dict)


def _links(request: web.Request) -> sessions.Links:
    config = settings(request)
    return sessions.Links(
        secret=config.secret(),
        base_url=config.public_url or f"{request.scheme}://{request.host}",
        valid_days=config.invitation_days,
        zone=_zone(request),
    )


def _session_json(scheduled: sessions.Scheduled) -> dict[str, Any]:
    session = scheduled.session
    return {
        "id": session.id,
        "kind": session.kind,
        "status": session.status,
        "scheduled_start": session.scheduled_start.isoformat(),
        "participants": [
            {
                "user_id": p.user_id,
                "party_id": p.party_id,
                "role": p.role.value,
                "name": p.name,
                "starts_at": (p.starts_at or session.scheduled_start).isoformat(),
                "invited": p.invited_at is not None,
            }
            for p in scheduled.participants
        ],
    }


async def _perform(
    request: web.Request, caller: Principal, dispute_id: int, key: str, body: Mapping[str, Any]
) -> Performed:
    session = db(request)
    calendar = workflow.calendar_for(settings(request))
    if workflow.BY_KEY.get(key) in NOT_ON_PAGE:
        raise Invalid(N_("There is no such action."), field="action")
    if key == cmd.ScheduleSession.key():
        data = _validated(ScheduleIn, body)
        zone = _zone(request)
        plan = sessions.Plan(
            starts_at=_in_zone(data.starts_at, zone),
            separate_times=data.separate_times,
            separate_times_consent=data.separate_times_consent,
            times={pid: _in_zone(at, zone) for pid, at in data.times.items()},
            party_ids=frozenset(data.party_ids) if data.party_ids is not None else None,
        )
        scheduled = await sessions.schedule(
            session,
            caller,
            request.app[CHANNEL],
            dispute_id,
            plan,
            calendar=calendar,
            links=_links(request),
        )
        return Performed(scheduled.done, {"session": _session_json(scheduled)})
    if key in (cmd.OpenSession.key(), cmd.CloseSession.key()):
        session_id = _validated(SessionIn, body).session_id
        move = sessions.open_session if key == cmd.OpenSession.key() else sessions.close_session
        done = await move(session, caller, dispute_id, session_id, calendar=calendar)
        return Performed(done)
    dispute = await access.dispute_for(session, caller, dispute_id)
    command = await workflow.command_for(session, caller, dispute, key, dict(body))
    done = await workflow.execute(session, caller, dispute_id, command, calendar=calendar)
    await notices.after(session, caller, request.app[CHANNEL], done, _links(request))
    built = await filing.record_package(session, caller, done)
    extra = {"filing_package": filing.package_json(built, gettext)} if built else {}
    return Performed(done, extra)


# describing next steps ------------------------------------------------------------------


@dataclass(frozen=True)
class FieldView:
    name: str
    kind: str
    label: str  # message id
    required: bool
    options: list[dict[str, Any]] = field(default_factory=list)
    default: Any = None

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": gettext(self.label),
            "required": self.required,
            "default": self.default,
            "options": self.options,
        }


@dataclass(frozen=True)
class StepView:
    key: str
    label: str  # message id
    fields: list[FieldView]

    def json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": gettext(self.label),
            "fields": [f.json() for f in self.fields],
        }


async def _mediator_options(
    session: AsyncSession, dispute: Dispute, state: DisputeState
) -> list[dict[str, Any]]:
    """Active mediators of the court, those whose case types match first."""
    flt = roster.RosterFilter(court_id=dispute.court_id)
    matching = await roster.search(
        session, dataclasses.replace(flt, case_type=dispute.dispute_type), 1, 100
    )
    everyone = await roster.search(session, flt, 1, 100)
    options: list[dict[str, Any]] = []
    seen: set[int] = set()
    for rows, match in ((matching.items, True), (everyone.items, False)):
        for mediator, user, organisation in rows:
            if user.id in seen or user.id in state.excluded_mediators or not user.active:
                continue
            seen.add(user.id)
            options.append(
                {
                    "value": user.id,
                    "label": f"{user.name} · {organisation.name}",
                    "match": match,
                    "case_types": list(mediator.case_types),
                }
            )
    return options


def _session_options(
    command: type[cmd.Command], state: DisputeState, rows: list[CaseSession], zone: ZoneInfo
) -> list[dict[str, Any]]:
    wanted = (
        state.scheduled_sessions
        if command is cmd.OpenSession
        else frozenset({state.open_session} - {None})
    )
    return [
        {"value": s.id, "label": _local(s.scheduled_start, zone)} for s in rows if s.id in wanted
    ]


async def _steps(
    session: AsyncSession,
    caller: Principal,
    dispute: Dispute,
    commands: list[type[cmd.Command]],
    case_sessions: list[CaseSession],
    parties: list[tuple[int, str, str]],
    zone: ZoneInfo,
) -> list[StepView]:
    state = workflow.state_of(dispute)
    mediators: list[dict[str, Any]] | None = None
    steps = []
    now = datetime.now(UTC)
    for command in commands:
        if command in NOT_ON_PAGE or not guidance.offered(command, state, now):
            continue
        views = []
        for f in dataclasses.fields(command):
            if (command, f.name) in FROM_CALLER:
                continue
            kind, label = FIELDS.get(f.name, ("text", f.name))
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            required = not has_default and kind not in ("checkbox", "session")
            options: list[dict[str, Any]] = []
            if kind == "mediator":
                if mediators is None:
                    mediators = await _mediator_options(session, dispute, state)
                options = mediators
            elif kind == "session":
                options = _session_options(command, state, case_sessions, zone)
            elif kind == "grounds":
                options = [
                    {"value": g.value, "label": gettext(GROUND_LABELS[g])}
                    for g in TerminationGround
                    if g in FAILURE_GROUNDS
                ]
            elif kind == "choice" and f.name == "complexity":
                options = [
                    {"value": c.value, "label": gettext(COMPLEXITY_LABELS[c])} for c in Complexity
                ]
            default = None if f.default is dataclasses.MISSING else f.default
            views.append(FieldView(f.name, kind, label, required, options, default))
        if command is cmd.ScheduleSession:
            views.append(
                FieldView(
                    "times",
                    PARTY_TIMES[0],
                    PARTY_TIMES[1],
                    False,
                    [
                        {"value": pid, "label": f"{gettext(side)} {name}"}
                        for pid, side, name in parties
                    ],
                )
            )
        steps.append(StepView(command.key(), guidance.label_for(command, caller), views))
    secondary = {c.key() for c in guidance.SECONDARY}
    return sorted(steps, key=lambda step: step.key in secondary)


def _hint(
    caller: Principal,
    dispute: Dispute,
    commands: list[type[cmd.Command]],
    offered: list[StepView],
    next_session: datetime | None,
    zone: ZoneInfo,
) -> tuple[str, str]:
    """What to tell the caller in plain words: ("act" | "wait" | "none", text)."""
    if caller.role in guidance.PARTY_SIDE:
        hint = guidance.party_hint(
            workflow.state_of(dispute),
            commands,
            now=datetime.now(UTC),
            next_session=_local(next_session, zone) if next_session else None,
        )
        return hint.kind, gettext(hint.message, **hint.params)
    if not offered:
        return "none", gettext(guidance.NOTHING_TO_DO)
    return "act", ""


def _next_session(
    caller: Principal,
    rows: list[CaseSession],
    people: Mapping[int, list[Any]],
    now: datetime,
) -> datetime | None:
    upcoming = []
    for s in rows:
        if s.status not in ("scheduled", "open"):
            continue
        listed = people.get(s.id, [])
        # a session without a participant list is for everyone on the dispute
        mine = [p for p in listed if p.user_id == caller.user_id] if listed else [None]
        for p in mine:
            at = (p.starts_at if p is not None else None) or s.scheduled_start
            if s.status == "open" or at >= now:
                upcoming.append(at)
    return min(upcoming) if upcoming else None


# JSON API ---------------------------------------------------------------------------------


def _event_json(event: Any) -> dict[str, Any]:
    label = filing.EVENT_LABELS.get(type(event), event.name())
    return {
        "name": event.name(),
        "label": gettext(label),
        "from_status": event.from_status.value,
        "to_status": event.to_status.value,
        "details": event.details(),
    }


async def _steps_for(
    request: web.Request, caller: Principal, dispute: Dispute
) -> tuple[list[StepView], tuple[str, str]]:
    session = db(request)
    commands = await workflow.next_steps(session, caller, dispute)
    file_sessions = list(
        await session.scalars(
            select(CaseSession)
            .where(CaseSession.dispute_id == dispute.id)
            .order_by(CaseSession.scheduled_start, CaseSession.id)
        )
    )
    parties = await _parties(session, dispute.id)
    zone = _zone(request)
    steps = await _steps(session, caller, dispute, commands, file_sessions, parties, zone)
    people = await sessions.participants(session, dispute.id)
    upcoming = _next_session(caller, file_sessions, people, datetime.now(UTC))
    return steps, _hint(caller, dispute, commands, steps, upcoming, zone)


async def _parties(session: AsyncSession, dispute_id: int) -> list[tuple[int, str, str]]:
    rows = await session.scalars(
        select(DisputeParty).where(DisputeParty.dispute_id == dispute_id).order_by(DisputeParty.id)
    )
    return [(p.id, role_label(p.side.value), p.name) for p in rows]


def _steps_json(dispute: Dispute, steps: list[StepView], hint: tuple[str, str]) -> dict[str, Any]:
    return {
        "dispute_id": dispute.id,
        "status": dispute.status,
        "status_label": gettext(status_label(dispute.status)),
        "hint": {"kind": hint[0], "text": hint[1]},
        "steps": [s.json() for s in steps],
    }


async def api_action(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    key = request.match_info["key"]
    body = await _json_body(request)
    performed = await _perform(request, caller, dispute_id, key, body)
    dispute = performed.done.dispute
    steps, hint = await _steps_for(request, caller, dispute)
    return web.json_response(
        {
            **_steps_json(dispute, steps, hint),
            "events": [_event_json(e) for e in performed.done.events],
            **performed.extra,
        }
    )


async def api_next_steps(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute = await access.dispute_for(db(request), caller, path_id(request))
    steps, hint = await _steps_for(request, caller, dispute)
    return web.json_response(_steps_json(dispute, steps, hint))


async def api_timeline(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query, default_per_page=50)
    result = await filing.timeline(db(request), caller, path_id(request), page, per_page)
    return web.json_response(
        {"items": [entry.json(gettext) for entry in result.items], **result.meta()}
    )


async def api_filing_package(request: web.Request) -> web.Response:
    caller = require_login(request)
    built = await filing.package(db(request), caller, path_id(request))
    return web.json_response(filing.package_json(built, gettext))


# page forms -------------------------------------------------------------------------------


async def page_action(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    key = request.match_info["key"]
    data = await request.post()
    values = _form_values(data, workflow.BY_KEY.get(key))
    back = f"/disputes/{dispute_id}"
    try:
        # a savepoint: a refused action leaves nothing behind, and the page says why
        async with db(request).begin_nested():
            await _perform(request, caller, dispute_id, key, values)
    except (Invalid, Conflict) as exc:
        if exc.security:
            raise
        message = gettext(exc.message, **exc.localised_params(gettext))
        token = FLASH.dumps(request, {"e": message, "k": key})
        return redirect(f"{back}?{urlencode({'error': token})}#next-steps")
    return redirect(f"{back}?{urlencode({'done': key})}#next-steps")


def _page_notice(request: web.Request) -> tuple[str, str]:
    """The result of the last page action: ("error" | "done" | "", text)."""
    flashed = FLASH.error(request)
    if flashed is not None:
        return "error", flashed["e"]
    done = workflow.BY_KEY.get(request.query.get("done", ""))
    if done is not None:
        caller = principal(request)
        return "done", gettext(DONE, action=gettext(guidance.label_for(done, caller)))
    return "", ""


# what the dispute page shows ----------------------------------------------------------------


@dataclass(frozen=True)
class CountdownView:
    label: str  # message id
    countdown: Countdown


def _countdowns(state: DisputeState, request: web.Request, now: datetime) -> list[CountdownView]:
    calendar = workflow.calendar_for(settings(request))
    return [
        CountdownView(DEADLINE_LABELS[d.kind], calendar.countdown(d.due, now))
        for d in running_deadlines(state)
    ]


def _translated(message: str, params: Mapping[str, str]) -> str:
    return gettext(message, **{k: gettext(v) for k, v in params.items()})


async def dispute_page_context(
    request: web.Request, caller: Principal, file: DisputeFile
) -> dict[str, Any]:
    """The workflow part of the dispute page (status, countdowns, triage reasons,
    timeline, sessions' participants, next steps, filing package)."""
    session = db(request)
    dispute = file.dispute
    state = workflow.state_of(dispute)
    now = datetime.now(UTC)
    steps, hint = await _steps_for(request, caller, dispute)
    triage = await filing.triage_reasons(session, dispute.id)
    triage_view = None
    if triage is not None:
        triage_view = {
            "score": triage.score,
            "reasons": [
                {"text": _translated(r.message, r.params), "points": r.points}
                for r in triage.reasons
            ],
            "unsuitable": [_translated(r.message, r.params) for r in triage.unsuitable],
        }
    package = None
    if caller.role.is_staff and state.status in filing.FILING_STATUSES:
        package = await filing.package(session, caller, dispute.id)
    notice_kind, notice = _page_notice(request)
    return {
        "wf_state": state,
        "wf_countdowns": _countdowns(state, request, now),
        "wf_triage": triage_view,
        "wf_timeline": await filing.latest_events(session, dispute.id, TIMELINE_ON_PAGE),
        "wf_participants": await sessions.participants(session, dispute.id),
        "wf_steps": steps,
        "wf_hint": hint,
        "wf_notice": (notice_kind, notice),
        "wf_package": package,
        "wf_role_text": filing.role_text,
        "wf_system_actor": filing.SYSTEM_ACTOR,
        "wf_fact_labels": filing.FACT_LABELS,
        "wf_ground_labels": {g.value: label for g, label in GROUND_LABELS.items()},
        "wf_session_words": SESSION_WORDS,
        "wf_iso_time": lambda value: _iso_local(value, _zone(request)),
    }


def setup(app: web.Application) -> None:
    """Add this module's routes."""
    r = app.router
    r.add_post("/api/v1/disputes/{id}/actions/{key}", api_action, name="api_dispute_action")
    r.add_get("/api/v1/disputes/{id}/next-steps", api_next_steps, name="api_dispute_next_steps")
    r.add_get("/api/v1/disputes/{id}/timeline", api_timeline, name="api_dispute_timeline")
    r.add_get("/api/v1/disputes/{id}/filing-package", api_filing_package, name="api_filing_package")
    r.add_post("/disputes/{id}/actions/{key}", page_action, name="dispute_action")
