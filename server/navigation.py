"""Role-aware navigation: which links each role sees."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth.principal import Principal
from server.domain.errors import N_
from server.domain.roles import Permission, has_permission


@dataclass(frozen=True)
class NavItem:
    label: str  # a message id, translated in the template
    href: str
    permission: Permission | None = None


ITEMS = (
    NavItem(N_("Home"), "/"),
    NavItem(N_("Disputes"), "/disputes", Permission.VIEW_DISPUTE),
    NavItem(N_("Work queue"), "/queue", Permission.WORK_QUEUE),
    NavItem(N_("Judicial confirmations"), "/confirmations", Permission.DECIDE_CONFIRMATION),
    NavItem(N_("Apply for mediation"), "/applications/new", Permission.APPLY),
    NavItem(N_("Served documents"), "/inbox", Permission.RECEIVE_SERVICE),
    NavItem(N_("Mediator roster"), "/roster", Permission.VIEW_ROSTER),
    NavItem(N_("Users"), "/admin/users", Permission.MANAGE_USERS),
    NavItem(N_("Agreement templates"), "/admin/agreement-templates", Permission.MANAGE_USERS),
    NavItem(N_("Audit log"), "/admin/audit", Permission.VIEW_AUDIT),
    NavItem(N_("Storage"), "/admin/storage", Permission.MANAGE_STORAGE),
    NavItem(N_("Manage the roster"), "/admin/roster", Permission.MANAGE_ROSTER),
    NavItem(N_("Check a document"), "/verify"),
    NavItem(N_("Account"), "/account"),
)


def navigation(principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    return [
        item
        for item in ITEMS
        if item.permission is None or has_permission(principal.role, item.permission)
    ]
