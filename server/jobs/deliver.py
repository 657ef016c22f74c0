"""The ``service_delivery`` job: one attempt of one delivery of an electronic service.

The job claims the attempt it was queued for (``params``: ``delivery_id`` and ``due``,
the delivery's planned time when the job was queued: a job whose plan was replaced, by
a clerk's "retry now" for instance, does nothing), sends through the delivery's channel
outside any database transaction (an SMTP server may take its time), and reports the
outcome to :mod:`server.services.e_service`, which records it, plans the next attempt
as another job (with its ``not_before``) or gives up, and completes the service.  When
the attempt completes the service, the service certificate is made.

Run twice (after a crash between sending and reporting), an attempt is sent twice:
delivery is at least once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from server.audit import SYSTEM
from server.db.base import utcnow
from server.eservice.channels import DeliveryError, Outcome, build_channels
from server.jobs.context import JobContext
from server.services import e_service, service_certificate
from server.services.e_service import SERVICE_DELIVERY

log = logging.getLogger(__name__)

__all__ = ["SERVICE_DELIVERY", "deliver"]


async def deliver(ctx: JobContext) -> Mapping[str, Any]:
    delivery_id = int(ctx.params["delivery_id"])
    due = ctx.params.get("due")
    settings = ctx.settings
    async with ctx.database.transaction(write=False) as db:
        attempt = await e_service.begin_attempt(
            db, delivery_id, str(due) if due is not None else None, settings
        )
    if attempt is None:
        return {"delivery_id": delivery_id, "skipped": True}
    channel = build_channels(settings).get(attempt.channel)
    started = utcnow()
    error = ""
    outcome = Outcome(reached=False)
    try:
        if channel is None:
            raise DeliveryError(f"the {attempt.channel} channel is not configured")
        outcome = await channel.deliver(ctx.database, attempt.notice)
    except DeliveryError as failure:
        error = str(failure) or type(failure).__name__
    except Exception as failure:  # a channel's own bug must not leave the delivery stuck
        log.exception("delivery %s (%s) failed unexpectedly", delivery_id, attempt.channel)
        error = f"{type(failure).__name__}: {failure}"
    result: dict[str, Any] = {
        "delivery_id": delivery_id,
        "service_id": attempt.service_id,
        "channel": attempt.channel,
        "attempt": attempt.number,
    }
    if error:
        async with ctx.database.transaction() as db:
            settled = await e_service.record_failure(db, delivery_id, error, settings)
        log.warning(
            "delivery %s (%s) attempt %s failed: %s",
            delivery_id,
            attempt.channel,
            attempt.number,
            error,
        )
        next_at = settled.next_attempt_at
        return {
            **result,
            "state": settled.delivery.state,
            "error": error,
            "next_attempt_at": next_at.isoformat() if next_at else None,
        }
    async with ctx.database.transaction() as db:
        settled = await e_service.record_success(db, delivery_id, outcome, started, settings)
    result["state"] = settled.delivery.state
    if settled.completed:
        try:
            document, _ = await service_certificate.make_certificate(
                ctx.database, ctx.spool, attempt.service_id, settings=settings, actor=SYSTEM
            )
            result["certificate_document_id"] = document.id
        except Exception:
            # the service is complete all the same; a certificate can be asked for again
            log.exception("the certificate of service %s could not be made", attempt.service_id)
    return result
