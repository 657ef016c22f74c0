"""The channels a served document reaches its recipient through.

Each channel delivers a :class:`Notice` and says whether the delivery reached the
recipient's system (Art. 31 of 人民法院在线诉讼规则: service is complete when the
document reaches the recipient's specific system):

- ``inbox``: the platform inbox of the recipient's account.  Putting the service there
  is reaching the recipient's system, at once.
- ``email``: a notice with a link to the inbox item, through the court's SMTP server
  (aiosmtplib).  The delivery reached the recipient's mail system when the SMTP server
  accepted the message.  The document itself is not attached: it stays behind the
  platform's access check, so that opening and downloading it are traced, and no mail
  server refuses it for its size.
- ``sms``: a short notice to look in the inbox (a link, never the document), through the
  SMS gateway (:mod:`server.eservice.sms`).  It serves nothing by itself, so it never
  makes a service complete: it only tells the recipient where to look.

A failure is a :class:`DeliveryError` whose text says why (for the trace and the clerk);
the delivery job decides whether to try again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

import aiosmtplib

from server.config import Settings
from server.db.base import utcnow
from server.db.engine import Database
from server.domain.errors import N_
from server.eservice.sms import SmsGateway, gateway_for
from server.i18n import translate_in

log = logging.getLogger(__name__)

INBOX, EMAIL, SMS = "inbox", "email", "sms"
CHANNELS = (INBOX, EMAIL, SMS)
# channels that carry the document to the recipient's system (the SMS only points to it)
SERVING = frozenset({INBOX, EMAIL})

CHANNEL_LABELS = {
    INBOX: N_("Platform inbox"),
    EMAIL: N_("Email"),
    SMS: N_("Text message"),
}

EMAIL_SUBJECT = N_("Document served: %(title)s (%(number)s)")
EMAIL_GREETING = N_("Dear %(name)s,")
EMAIL_SERVED = N_("%(court)s has served a document on you electronically in %(number)s: %(title)s.")
EMAIL_LINK = N_("Read it in your inbox on the platform: %(url)s")
EMAIL_HASH = N_("SHA-256 of the document: %(sha256)s")
EMAIL_NOTE = N_(
    "This email is a notice. The document is in your inbox on the platform, where opening, "
    "downloading and acknowledging it are recorded."
)
SMS_TEXT = N_(
    "%(court)s: a document of %(number)s has been served on you. Read it in your inbox: %(url)s"
)


@dataclass(frozen=True)
class Notice:
    """What one delivery of a service sends."""

    service_id: int
    delivery_id: int
    channel: str
    address: str  # an email address or a phone number; "" for the inbox
    recipient_name: str
    court_name: str
    dispute_number: str
    document_title: str
    document_sha256: str
    inbox_url: str  # the absolute link to the inbox item
    locale: str  # the recipient's language


@dataclass(frozen=True)
class Outcome:
    """A delivery the channel took."""

    reached: bool  # in the recipient's system now (Art. 31); False: handed on only
    reference: str = ""  # the channel's message id


class DeliveryError(Exception):
    """The channel could not deliver; the text says why."""


class ServiceChannel(Protocol):
    name: str

    async def deliver(self, database: Database, notice: Notice) -> Outcome: ...


class InboxChannel:
    """The platform inbox: the service row is the inbox item, so it is there at once."""

    name = INBOX

    async def deliver(self, database: Database, notice: Notice) -> Outcome:
        return Outcome(reached=True, reference=f"inbox:{notice.service_id}")


def _text(notice: Notice, message: str) -> str:
    return translate_in(
        notice.locale,
        message,
        name=notice.recipient_name,
        court=notice.court_name,
        number=notice.dispute_number,
        title=notice.document_title,
        url=notice.inbox_url,
        sha256=notice.document_sha256,
    )


def email_message(notice: Notice, sender: str) -> EmailMessage:
    """The notice as an email: plain text, with a link to the inbox item."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notice.address
    message["Subject"] = _text(notice, EMAIL_SUBJECT)
    message["Date"] = format_datetime(utcnow())
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "localhost"
    message["Message-ID"] = make_msgid(f"service{notice.service_id}.d{notice.delivery_id}", domain)
    lines = [EMAIL_GREETING, EMAIL_SERVED, EMAIL_LINK, EMAIL_HASH, EMAIL_NOTE]
    body = "\n\n".join(_text(notice, line) for line in lines)
    message.set_content(body + "\n\n" + notice.court_name + "\n")
    return message


class EmailChannel:
    """Email through the court's SMTP server (STARTTLS and login when configured)."""

    name = EMAIL

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def deliver(self, database: Database, notice: Notice) -> Outcome:
        s = self.settings
        if not notice.address:
            raise DeliveryError("no email address")
        message = email_message(notice, s.smtp_from)
        password = s.smtp_password.get_secret_value()
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=password if s.smtp_username else None,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryError(f"the mail server refused: {error.code} {error.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryError(
                f"the mail server {s.smtp_host}:{s.smtp_port} could not be reached: "
                f"{type(error).__name__}: {error}"
            ) from None
        # accepted by the SMTP server: it reached the recipient's mail system
        return Outcome(reached=True, reference=str(message["Message-ID"]))


class SmsChannel:
    """A text-message notice through the SMS gateway."""

    name = SMS

    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    async def deliver(self, database: Database, notice: Notice) -> Outcome:
        if not notice.address:
            raise DeliveryError("no phone number")
        text = _text(notice, SMS_TEXT)
        try:
            async with database.transaction() as db:
                reference = await self.gateway.send(db, notice.address, text)
        except DeliveryError:
            raise
        except Exception as error:
            raise DeliveryError(
                f"the SMS gateway {self.gateway.name} failed: {type(error).__name__}: {error}"
            ) from None
        return Outcome(reached=False, reference=reference)


def build_channels(settings: Settings) -> dict[str, ServiceChannel]:
    """The channels this deployment has: the inbox and SMS always, email with an SMTP host."""
    channels: dict[str, ServiceChannel] = {
        INBOX: InboxChannel(),
        SMS: SmsChannel(gateway_for(settings)),
    }
    if settings.smtp_host:
        channels[EMAIL] = EmailChannel(settings)
    return channels


def email_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def mask_email(address: str) -> str:
    """zhangsan@example.com -> zh******@example.com"""
    if "@" not in address:
        return mask_phone(address)
    local, domain = address.rsplit("@", 1)
    keep = 2 if len(local) > 3 else 1
    return local[:keep] + "*" * max(3, len(local) - keep) + "@" + domain


def mask_phone(number: str) -> str:
    """13800000001 -> 138****0001"""
    if len(number) <= 7:
        return number[:1] + "*" * max(0, len(number) - 1)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_address(channel: str, address: str) -> str:
    if channel == EMAIL:
        return mask_email(address)
    if channel == SMS:
        return mask_phone(address)
    return address
