"""Dispute pages: the caller's list and one dispute's file."""

from __future__ import annotations

from aiohttp import web

from server.context import db, require_login, settings
from server.domain.documents import EVIDENCE_UPLOADERS
from server.domain.roles import Permission, has_permission
from server.pagination import page_args
from server.routes import workflow
from server.routes.common import path_id
from server.services import disputes, service_consent
from server.templating import render


async def dispute_list(request: web.Request) -> web.Response:
    caller = require_login(request)
    page, per_page = page_args(request.query)
    result = await disputes.list_visible(
        db(request), caller, page, per_page, request.query.get("status")
    )
    return render(request, "disputes.html", {"page": result})


async def dispute_detail(request: web.Request) -> web.Response:
    caller = require_login(request)
    file = await disputes.dispute_file(db(request), caller, path_id(request))
    return render(
        request,
        "dispute.html",
        {
            "file": file,
            "mask": disputes.mask_id_number,
            "may_upload": caller.role in EVIDENCE_UPLOADERS,
            "may_invite_guests": has_permission(caller.role, Permission.RUN_SESSION),
            "evidence_max_mb": settings(request).evidence_max_mb,
            # a party's own answer on electronic service, which they may change here
            "service_choice": await service_consent.choice(db(request), caller, file.dispute.id),
            **await workflow.dispute_page_context(request, caller, file),
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/disputes", dispute_list, name="disputes")
    app.router.add_get("/disputes/{id}", dispute_detail, name="dispute")
