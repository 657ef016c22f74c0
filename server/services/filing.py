"""A dispute's record as the audit log holds it, and the filing package built from it.

The timeline is the dispute's workflow events (audit actions ``dispute.<event>``)
with who acted and why; the triage reasons and the mediator's report are read from
the same log.  When a dispute is pushed to case filing, the package (documents,
the mediator's report, the transcript, the timeline) is listed in the log for the
clerk (调解规则 Art. 21: the electronic materials go with the dispute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import (
    AuditEvent,
    CaseSession,
    Dispute,
    Document,
    Recording,
    RecordingFile,
    TranscriptLine,
    TranscriptReview,
)
from server.domain import events as ev
from server.domain.disputes import DisputeStatus, ground_label, role_label, status_label
from server.domain.documents import DocumentKind, may_read
from server.domain.errors import N_, Forbidden
from server.pagination import Page, paginate
from server.services import workflow
from server.services.users import user_names

PACKAGE_ACTION = "dispute.filing_package"
TRIAGE_REASONS_ACTION = "dispute.triage_reasons"
FAILURE_ACTION = "dispute." + ev.MediationFailed.name()

EVENT_LABELS: dict[type[ev.Event], str] = {
    ev.DraftSaved: N_("Draft saved"),
    ev.ApplicationSubmitted: N_("Application submitted"),
    ev.ApplicationWithdrawn: N_("Application withdrawn"),
    ev.DisputeTriaged: N_("Automatic triage recorded"),
    ev.TriageAccepted: N_("Triage accepted"),
    ev.TriageOverridden: N_("Triage overridden"),
    ev.RoutedToFiling: N_("Routed to case filing"),
    ev.MediatorChosenJointly: N_("Mediator chosen by the parties"),
    ev.MediatorProposed: N_("Mediator proposed by a party"),
    ev.MediatorAssigned: N_("Mediator assigned by the court"),
    ev.AssignmentAccepted: N_("Assignment accepted"),
    ev.AssignmentDeclined: N_("Assignment declined"),
    ev.ConflictDeclared: N_("Conflict of interest declared"),
    ev.ReplacementRequested: N_("Another mediator requested"),
    ev.RespondentConsented: N_("Respondent consented to mediation"),
    ev.RespondentRefused: N_("Respondent refused mediation"),
    ev.RespondentNotReached: N_("Respondent could not be reached"),
    ev.SessionScheduled: N_("Session scheduled"),
    ev.SessionOpened: N_("Session opened"),
    ev.SessionClosed: N_("Session closed"),
    ev.PeriodExtended: N_("Mediation period extended"),
    ev.AgreementReached: N_("Agreement reached"),
    ev.PartialAgreementReached: N_("Partial agreement reached"),
    ev.MediationFailed: N_("Mediation failed"),
    ev.AgreementSigned: N_("Agreement signed by all parties"),
    ev.FilingChosen: N_("Case filing chosen"),
    ev.FilingDeclined: N_("Case filing declined"),
    ev.CaseRegistered: N_("Case registered"),
    ev.JudgmentRecorded: N_("Judgment recorded"),
    ev.ConfirmationApplied: N_("Judicial confirmation applied for"),
    ev.AgreementConfirmed: N_("Agreement confirmed"),
    ev.ConfirmationRejected: N_("Confirmation rejected"),
    ev.DocumentsServed: N_("Documents served"),
    ev.DisputeClosed: N_("Dispute closed"),
}
EVENTS_BY_ACTION: dict[str, type[ev.Event]] = {
    "dispute." + e.name(): e for e in (*EVENT_LABELS, *ev.Event.__subclasses__())
}
SYSTEM_ACTOR = N_("The platform")
SYSTEM_ROLE = N_("System")

# free-text facts an event may carry, shown under the event (message ids of their labels)
FACT_LABELS = {
    "reason": N_("Reason"),
    "report": N_("Mediator's report"),
    "cost_increasing_conduct": N_("Conduct that increased costs"),
    "summary": N_("Agreement summary"),
    "agreed": N_("Agreed terms"),
    "unresolved": N_("Unresolved matters"),
    "case_number": N_("Case number"),
    "starts_at": N_("Start time"),
    "days": N_("Extra days"),
    "complexity": N_("Complexity"),
    "mediator": N_("Mediator"),
}


@dataclass(frozen=True)
class TimelineEntry:
    seq: int
    at: datetime
    actor_name: str  # "" for the platform itself
    actor_role: str  # a Role value, or "system"
    event: str  # the event name, e.g. "assignment_declined"
    label: str  # message id
    from_status: str
    to_status: str
    reason: str
    grounds: list[str]  # TerminationGround values
    facts: dict[str, str] = field(default_factory=dict)  # FACT_LABELS keys

    def json(self, translate: Any) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": {
                "name": self.actor_name or translate(SYSTEM_ACTOR),
                "role": self.actor_role,
                "role_label": translate(role_text(self.actor_role)),
            },
            "event": self.event,
            "label": translate(self.label),
            "from_status": self.from_status,
            "to_status": self.to_status,
            "to_status_label": translate(status_label(self.to_status)),
            "reason": self.reason,
            "grounds": [{"key": g, "label": translate(ground_label(g))} for g in self.grounds],
            "facts": self.facts,
        }


def role_text(role: str) -> str:
    """The message id of an actor's role, the platform itself included."""
    return SYSTEM_ROLE if role == "system" else role_label(role)


def _entry(row: AuditEvent, names: dict[int, str]) -> TimelineEntry:
    event = EVENTS_BY_ACTION[row.action]
    details = row.details or {}
    facts: dict[str, str] = {}
    for key in FACT_LABELS:
        value = details.get(key)
        if value not in (None, "", []):
            facts[key] = str(value)
    if "mediator_id" in details:
        mediator = details["mediator_id"]
        facts["mediator"] = names.get(int(mediator), str(mediator))
    facts.pop("reason", None)
    grounds = details.get("grounds") or []
    return TimelineEntry(
        seq=row.seq,
        at=row.at,
        actor_name=row.actor_name,
        actor_role=row.actor_role,
        event=event.name(),
        label=EVENT_LABELS.get(event, event.name()),
        from_status=str(details.get("from_status", "")),
        to_status=str(details.get("to_status", "")),
        reason=str(details.get("reason") or ""),
        grounds=[str(g) for g in grounds] if isinstance(grounds, list) else [],
        facts=facts,
    )


async def _entries(db: AsyncSession, rows: Sequence[AuditEvent]) -> list[TimelineEntry]:
    names = await user_names(
        db, (int(r.details["mediator_id"]) for r in rows if "mediator_id" in (r.details or {}))
    )
    return [_entry(row, names) for row in rows]


async def timeline(
    db: AsyncSession, principal: Principal, dispute_id: int, page: int, per_page: int
) -> Page[TimelineEntry]:
    """The dispute's workflow events, oldest first, one page."""
    await access.dispute_for(db, principal, dispute_id)
    query = (
        select(AuditEvent)
        .where(AuditEvent.dispute_id == dispute_id, AuditEvent.action.in_(EVENTS_BY_ACTION))
        .order_by(AuditEvent.seq)
    )
    result = await paginate(db, query, page, per_page)
    return Page(await _entries(db, result.items), result.page, result.per_page, result.total)


async def latest_events(db: AsyncSession, dispute_id: int, limit: int) -> list[TimelineEntry]:
    """The last ``limit`` workflow events, oldest first (for a page the caller may see)."""
    rows = list(
        await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.dispute_id == dispute_id, AuditEvent.action.in_(EVENTS_BY_ACTION))
            .order_by(AuditEvent.seq.desc())
            .limit(limit)
        )
    )
    rows.reverse()
    return await _entries(db, rows)


# triage reasons and the mediator's report -------------------------------------------


@dataclass(frozen=True)
class TriageReason:
    message: str  # message id
    params: dict[str, str]  # values may be message ids (a type label)
    points: int


@dataclass(frozen=True)
class TriageReasons:
    score: int
    reasons: list[TriageReason]
    unsuitable: list[TriageReason]


def _reasons(raw: object) -> list[TriageReason]:
    found = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            params = item.get("params") or {}
            found.append(
                TriageReason(
                    item["message"],
                    {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {},
                    int(item.get("points") or 0),
                )
            )
    return found


async def triage_reasons(db: AsyncSession, dispute_id: int) -> TriageReasons | None:
    """The reasons of the latest automatic triage (for a dispute the caller may see)."""
    row = await db.scalar(
        select(AuditEvent)
        .where(AuditEvent.dispute_id == dispute_id, AuditEvent.action == TRIAGE_REASONS_ACTION)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    if row is None:
        return None
    details = row.details or {}
    return TriageReasons(
        score=int(details.get("score") or 0),
        reasons=_reasons(details.get("reasons")),
        unsuitable=_reasons(details.get("unsuitable")),
    )


@dataclass(frozen=True)
class MediatorReport:
    """The mediator's report on a failed mediation (调解规则 Arts. 21, 25)."""

    at: datetime
    mediator: str
    grounds: list[str]
    report: str
    cost_increasing_conduct: str


async def mediator_report(db: AsyncSession, dispute_id: int) -> MediatorReport | None:
    row = await db.scalar(
        select(AuditEvent)
        .where(AuditEvent.dispute_id == dispute_id, AuditEvent.action == FAILURE_ACTION)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    if row is None:
        return None
    details = row.details or {}
    grounds = details.get("grounds") or []
    return MediatorReport(
        at=row.at,
        mediator=row.actor_name,
        grounds=[str(g) for g in grounds] if isinstance(grounds, list) else [],
        report=str(details.get("report") or ""),
        cost_increasing_conduct=str(details.get("cost_increasing_conduct") or ""),
    )


# the filing package ---------------------------------------------------------------------

FILING_STATUSES = frozenset(
    {DisputeStatus.FILING_PENDING, DisputeStatus.FILED, DisputeStatus.JUDGED}
)


@dataclass(frozen=True)
class SessionRecord:
    """A held session's electronic transcript and recording, as the package lists them."""

    session: CaseSession
    lines: int  # visible transcript lines
    review: str  # the parties' review: "" (not opened), open, frozen
    transcript_sha256: str  # the frozen transcript's hash, once frozen
    recording: str  # "" (none), recording, paused, stopped, purged
    composite_document_id: int | None
    composite_sha256: str


@dataclass(frozen=True)
class FilingPackage:
    """What goes to the case-filing queue with a dispute."""

    dispute: Dispute
    documents: list[Document]
    report: MediatorReport | None
    held_sessions: list[CaseSession]  # their transcripts belong in the package
    sessions: list[SessionRecord]  # each held session's transcript and recording
    timeline: list[TimelineEntry]
    routed_reason: str | None  # not suitable for mediation: the triage officer's reason


async def _session_record(db: AsyncSession, session: CaseSession) -> SessionRecord:
    lines = await db.scalar(
        select(func.count())
        .select_from(TranscriptLine)
        .where(TranscriptLine.session_id == session.id, TranscriptLine.hidden.is_(False))
    )
    review = await db.scalar(
        select(TranscriptReview).where(TranscriptReview.session_id == session.id)
    )
    recording = await db.scalar(select(Recording).where(Recording.session_id == session.id))
    composite = None
    if recording is not None:
        composite = await db.scalar(
            select(RecordingFile).where(
                RecordingFile.recording_id == recording.id, RecordingFile.role == "composite"
            )
        )
    return SessionRecord(
        session=session,
        lines=int(lines or 0),
        review=review.state if review is not None else "",
        transcript_sha256=review.sha256 if review is not None and review.state == "frozen" else "",
        recording=recording.state if recording is not None else "",
        composite_document_id=composite.document_id if composite is not None else None,
        composite_sha256=composite.sha256 if composite is not None else "",
    )


async def _package(db: AsyncSession, dispute: Dispute, readable: Any) -> FilingPackage:
    documents = [
        d
        for d in await db.scalars(
            select(Document).where(Document.dispute_id == dispute.id).order_by(Document.id)
        )
        if readable(DocumentKind(d.kind))
    ]
    sessions = list(
        await db.scalars(
            select(CaseSession)
            .where(CaseSession.dispute_id == dispute.id, CaseSession.status == "held")
            .order_by(CaseSession.scheduled_start)
        )
    )
    rows = list(
        await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.dispute_id == dispute.id, AuditEvent.action.in_(EVENTS_BY_ACTION))
            .order_by(AuditEvent.seq)
        )
    )
    return FilingPackage(
        dispute=dispute,
        documents=documents,
        report=await mediator_report(db, dispute.id),
        held_sessions=sessions,
        sessions=[await _session_record(db, session) for session in sessions],
        timeline=await _entries(db, rows),
        routed_reason=workflow.state_of(dispute).filing_reason,
    )


async def package(db: AsyncSession, principal: Principal, dispute_id: int) -> FilingPackage:
    """The filing package, for court and mediation staff on the dispute."""
    dispute = await access.dispute_for(db, principal, dispute_id)
    if not principal.role.is_staff:
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", dispute_id=dispute_id, permission="filing.package"
        )
    return await _package(db, dispute, lambda kind: may_read(principal.role, kind))


async def record_package(
    db: AsyncSession, principal: Principal | None, done: workflow.Done
) -> FilingPackage | None:
    """When a move has just pushed the dispute to case filing, list its package in the log."""
    pushed = any(
        e.to_status is DisputeStatus.FILING_PENDING and e.from_status != e.to_status
        for e in done.events
    )
    if not pushed:
        return None
    built = await _package(db, done.dispute, lambda kind: True)
    await audit.append(
        db,
        AuditEntry(
            PACKAGE_ACTION,
            principal.actor() if principal else audit.SYSTEM,
            "dispute",
            done.dispute.id,
            dispute_id=done.dispute.id,
            details=package_json(built, str),
        ),
    )
    return built


def package_json(built: FilingPackage, translate: Any) -> dict[str, Any]:
    report = built.report
    return {
        "dispute_id": built.dispute.id,
        "number": built.dispute.number,
        "status": built.dispute.status,
        "documents": [
            {"id": d.id, "kind": d.kind, "title": d.title, "filename": d.filename}
            for d in built.documents
        ],
        "report": None
        if report is None
        else {
            "at": report.at.isoformat(),
            "mediator": report.mediator,
            "grounds": report.grounds,
            "report": report.report,
            "cost_increasing_conduct": report.cost_increasing_conduct,
        },
        "sessions": [
            {
                "session_id": r.session.id,
                "transcript_lines": r.lines,
                "transcript_review": r.review,
                "transcript_sha256": r.transcript_sha256,
                "recording": r.recording,
                "recording_document_id": r.composite_document_id,
                "recording_sha256": r.composite_sha256,
            }
            for r in built.sessions
        ],
        "routed_reason": built.routed_reason,
        "timeline_events": len(built.timeline),
    }
