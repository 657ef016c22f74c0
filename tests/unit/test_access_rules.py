"""Role permissions and the re-verification rule, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.auth.access import require, require_reverified
from server.auth.principal import Principal
from server.domain.errors import Forbidden, ReverificationRequired
from server.domain.roles import Permission, Role
from server.navigation import navigation


def caller(role: Role, reverified_minutes_ago: float | None = None) -> Principal:
    at = (
        None
        if reverified_minutes_ago is None
        else datetime.now(UTC) - timedelta(minutes=reverified_minutes_ago)
    )
    return Principal(1, role, "测试", 1, 1, "password", at)


def test_a_sensitive_step_needs_a_recent_reverification() -> None:
    with pytest.raises(ReverificationRequired):
        require_reverified(caller(Role.PARTY), minutes=10)
    with pytest.raises(ReverificationRequired):
        require_reverified(caller(Role.PARTY, reverified_minutes_ago=11), minutes=10)
    require_reverified(caller(Role.PARTY, reverified_minutes_ago=2), minutes=10)


@pytest.mark.parametrize("role", [Role.PARTY, Role.AGENT, Role.MEDIATOR, Role.CLERK])
def test_only_admins_manage_users(role: Role) -> None:
    with pytest.raises(Forbidden) as refused:
        require(caller(role), Permission.MANAGE_USERS)
    assert refused.value.security and refused.value.audit_action == "access.denied"
    require(caller(Role.COURT_ADMIN), Permission.MANAGE_USERS)


def test_navigation_follows_the_role() -> None:
    assert [i.href for i in navigation(caller(Role.PARTY))] == [
        "/",
        "/disputes",
        "/applications/new",
        "/inbox",
        "/verify",
        "/account",
    ]
    assert "/admin/users" in [i.href for i in navigation(caller(Role.COURT_ADMIN))]
    assert navigation(None) == []
