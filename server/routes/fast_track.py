"""A registered case's fast-track hearing and judgment (速裁): the judge schedules the
online hearing and issues the judgment PDF (server/services/judgments.py)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel, Field

from server.context import CHANNEL, DATABASE, OUTBOX, SPOOL, db, require_login, settings
from server.domain.documents import DEFAULT_LIMITS, DocumentKind
from server.domain.errors import N_, Conflict, Invalid
from server.i18n import gettext
from server.openapi import documented
from server.routes.api import body
from server.routes.common import court_zone, in_zone, invitation_links, path_id
from server.routes.multipart import received_file, streams_body
from server.routes.workflow import FLASH as PAGE_NOTICES
from server.services import documents, judgments, workflow

TAGS = ("fast-track",)


class HearingIn(BaseModel):
    starts_at: datetime = Field(description="with an offset; without one, the court's time")


class HearingOut(BaseModel):
    session_id: int
    starts_at: datetime
    invited: list[str]


@streams_body
async def upload_judgment(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    await judgments.may_issue(db(request), caller, dispute_id)
    limit = DEFAULT_LIMITS[DocumentKind.JUDGMENT]
    async with (
        received_file(request, limit) as upload,
        request.app[DATABASE].transaction(write=True) as session,
    ):
        document, stored = await judgments.issue(
            session,
            request.app[SPOOL],
            caller,
            dispute_id,
            upload.spooled,
            filename=upload.filename,
            title=upload.title,
            calendar=workflow.calendar_for(settings(request)),
        )
    request.app[OUTBOX].wake()
    return web.json_response(documents.document_json(document, stored), status=201)


async def _schedule(request: web.Request, starts_at: datetime) -> HearingOut:
    caller = require_login(request)
    hearing = await judgments.schedule_hearing(
        db(request),
        caller,
        request.app[CHANNEL],
        path_id(request),
        in_zone(starts_at, court_zone(request)),
        links=invitation_links(request),
    )
    return HearingOut(
        session_id=hearing.session.id,
        starts_at=hearing.session.scheduled_start,
        invited=[r.name for r in hearing.participants if r.invited_at is not None],
    )


@documented(
    "Schedule the online fast-track hearing of a registered case (a judge of the court)",
    body=HearingIn,
    response=HearingOut,
    tags=TAGS,
)
async def api_hearing(request: web.Request) -> web.Response:
    data = await body(request, HearingIn)
    out = await _schedule(request, data.starts_at)
    return web.json_response(out.model_dump(mode="json"), status=201)


async def page_hearing(request: web.Request) -> web.Response:
    """The dispute page's form: back to the page with what happened."""
    dispute_id = path_id(request)
    back = f"/disputes/{dispute_id}"
    form = await request.post()
    try:
        try:
            starts_at = datetime.fromisoformat(str(form.get("starts_at", "")))
        except ValueError:
            raise Invalid(N_("This field is not valid: %(field)s."), field="starts_at") from None
        async with db(request).begin_nested():
            await _schedule(request, starts_at)
    except (Invalid, Conflict) as exc:
        if exc.security:
            raise
        message = gettext(exc.message, **exc.localised_params(gettext))
        token = PAGE_NOTICES.dumps(request, {"e": message})  # shown in "what to do next"
        raise web.HTTPSeeOther(f"{back}?{urlencode({'error': token})}#next-steps") from None
    raise web.HTTPSeeOther(f"{back}#sessions")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/disputes/{id}/judgment", upload_judgment, name="api_judgment")
    r.add_post("/api/v1/disputes/{id}/hearings", api_hearing, name="api_fast_track_hearing")
    r.add_post("/disputes/{id}/hearings", page_hearing, name="fast_track_hearing")
