"""The caller: who is logged in, with which role, through which session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.audit import Actor
from server.domain.roles import Role


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: Role
    name: str
    court_id: int | None
    session_id: int
    method: str
    reverified_at: datetime | None = None
    ip: str = ""

    def actor(self) -> Actor:
        return Actor(id=self.user_id, role=self.role.value, name=self.name, ip=self.ip)
