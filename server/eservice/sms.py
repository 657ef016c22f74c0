"""Text messages for electronic service: the gateway interface and the embedded default.

A gateway only sends a short text to a phone number and answers with its message id.
The embedded default (``YIZHAN_SMS_GATEWAY=outbox``) sends nothing: it writes the message
to the outbox (channel ``sms``), where the demo outbox page shows it.  A deployment adds
its carrier's gateway here and names it in the setting.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.config import Settings
from server.db.base import utcnow
from server.db.models import OutboxMessage

log = logging.getLogger(__name__)

SMS = "sms"


class SmsGateway(Protocol):
    name: str

    async def send(self, db: AsyncSession, phone: str, text: str) -> str:
        """Send ``text`` to ``phone``; the gateway's message id. Raises on failure."""
        ...


class OutboxSmsGateway:
    """The embedded default: the message goes to the outbox (and its demo page)."""

    name = "outbox"

    async def send(self, db: AsyncSession, phone: str, text: str) -> str:
        message = OutboxMessage(
            channel=SMS, destination=phone, subject="", body=text, sent_at=utcnow()
        )
        db.add(message)
        await db.flush()
        log.info("text message %s to %s put in the outbox", message.id, phone[-4:])
        return f"outbox:{message.id}"


def gateway_for(settings: Settings) -> SmsGateway:
    """The gateway named by ``YIZHAN_SMS_GATEWAY``."""
    if settings.sms_gateway == "outbox":
        return OutboxSmsGateway()
    raise ValueError(f"unknown SMS gateway {settings.sms_gateway!r}")
