"""Platform roles, per-dispute roles and the permissions each role holds."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The account's role on the platform."""

    PARTY = "party"
    AGENT = "agent"
    MEDIATOR = "mediator"
    TRIAGE_OFFICER = "triage_officer"
    JUDGE = "judge"
    CLERK = "clerk"
    COURT_ADMIN = "court_admin"

    @property
    def is_staff(self) -> bool:
        return self not in (Role.PARTY, Role.AGENT)

    @property
    def uses_password(self) -> bool:
        return self.is_staff

    @property
    def may_use_totp(self) -> bool:
        return self in (Role.JUDGE, Role.COURT_ADMIN)


class DisputeRole(StrEnum):
    """A person's part in one dispute."""

    APPLICANT = "applicant"
    RESPONDENT = "respondent"
    THIRD_PARTY = "third_party"
    AGENT = "agent"
    MEDIATOR = "mediator"
    JUDGE = "judge"
    CLERK = "clerk"


class Permission(StrEnum):
    VIEW_DISPUTE = "dispute.view"
    LIST_ALL_DISPUTES = "dispute.list_all"
    VIEW_ROSTER = "roster.view"
    MANAGE_ROSTER = "roster.manage"
    MANAGE_USERS = "users.manage"
    VIEW_AUDIT = "audit.view"
    TRIAGE = "dispute.triage"
    RUN_SESSION = "session.run"
    EDIT_TRANSCRIPT = "transcript.edit"
    DECIDE_CONFIRMATION = "confirmation.decide"
    VIEW_OUTBOX = "outbox.view"
    INVITE = "invitation.issue"
    MANAGE_STORAGE = "storage.manage"
    APPLY = "dispute.apply"  # file an application (a clerk for walk-ins)
    WORK_QUEUE = "queue.view"
    RECEIVE_SERVICE = "service.receive"  # documents served electronically, in an inbox


# Roles whose members see every dispute of their court, not only those they are on.
COURT_WIDE_ROLES = frozenset({Role.COURT_ADMIN, Role.TRIAGE_OFFICER})

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PARTY: frozenset({Permission.VIEW_DISPUTE, Permission.APPLY, Permission.RECEIVE_SERVICE}),
    Role.AGENT: frozenset({Permission.VIEW_DISPUTE, Permission.APPLY, Permission.RECEIVE_SERVICE}),
    Role.MEDIATOR: frozenset(
        {
            Permission.VIEW_DISPUTE,
            Permission.VIEW_ROSTER,
            Permission.RUN_SESSION,
            Permission.INVITE,
            Permission.WORK_QUEUE,
        }
    ),
    Role.TRIAGE_OFFICER: frozenset(
        {
            Permission.VIEW_DISPUTE,
            Permission.LIST_ALL_DISPUTES,
            Permission.VIEW_ROSTER,
            Permission.TRIAGE,
            Permission.INVITE,
            Permission.WORK_QUEUE,
        }
    ),
    Role.JUDGE: frozenset(
        {
            Permission.VIEW_DISPUTE,
            Permission.VIEW_ROSTER,
            Permission.RUN_SESSION,
            Permission.DECIDE_CONFIRMATION,
            Permission.INVITE,
            Permission.WORK_QUEUE,
        }
    ),
    Role.CLERK: frozenset(
        {
            Permission.VIEW_DISPUTE,
            Permission.VIEW_ROSTER,
            Permission.EDIT_TRANSCRIPT,
            Permission.APPLY,
            Permission.WORK_QUEUE,
        }
    ),
    Role.COURT_ADMIN: frozenset(
        {
            Permission.VIEW_DISPUTE,
            Permission.LIST_ALL_DISPUTES,
            Permission.VIEW_ROSTER,
            Permission.MANAGE_ROSTER,
            Permission.MANAGE_USERS,
            Permission.VIEW_AUDIT,
            Permission.VIEW_OUTBOX,
            Permission.INVITE,
            Permission.MANAGE_STORAGE,
            Permission.WORK_QUEUE,
        }
    ),
}


def has_permission(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]
