"""Notification channels: how codes, invitations and notices reach people."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import OutboxMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    destination: str  # a phone number or an email address
    subject: str
    body: str
    user_id: int | None = None


class Channel(Protocol):
    name: str

    async def send(self, db: AsyncSession, message: Message) -> None: ...


class OutboxChannel:
    """The embedded default: messages go to the server log and the demo outbox page.

    Nothing leaves the machine; a deployment sets a real channel instead.
    """

    name = "outbox"

    def __init__(self, *, log_bodies: bool = False) -> None:
        # only a demo prints message bodies (codes) into the server log
        self.log_bodies = log_bodies

    async def send(self, db: AsyncSession, message: Message) -> None:
        db.add(
            OutboxMessage(
                channel=self.name,
                user_id=message.user_id,
                destination=message.destination,
                subject=message.subject,
                body=message.body,
                sent_at=datetime.now(UTC),
            )
        )
        await db.flush()
        # the embedded default has no SMS gateway: a demo reads codes in the log or on /outbox
        body = message.body if self.log_bodies else "(body on the outbox page)"
        log.info("outbox message to %s: %s: %s", message.destination, message.subject, body)
