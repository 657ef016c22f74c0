"""Signing the mediation agreement (page and JSON API) and the public check of a PDF the
platform issued (/verify)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.context import OUTBOX, SPOOL, STORE, client, db, require_login, settings
from server.domain.documents import DEFAULT_LIMITS, DocumentKind
from server.domain.errors import N_, Invalid
from server.i18n import gettext
from server.openapi import documented
from server.routes.common import path_id
from server.routes.documents import check_in_store
from server.routes.multipart import received_file, streams_body
from server.services import agreement_final, documents, signatures
from server.services.signatures import Expected, SigningState
from server.signing import pades
from server.signing.keys import platform_key
from server.templating import render

M = TypeVar("M", bound=BaseModel)
TAGS = ("agreement signing",)
# the JSON body of a signature: the PNG as base64 plus a little room for the rest
MAX_SIGNATURE_BODY = (signatures.MAX_IMAGE_BYTES * 4) // 3 + 4096
MAX_REFUSAL_BODY = 16 * 1024
MAX_VERIFY_BYTES = DEFAULT_LIMITS[DocumentKind.AGREEMENT]

# what a checked file is, in plain words
VERDICTS = {
    "valid": N_(
        "Valid: this is a document the platform issued, and it has not been changed since it was signed."
    ),
    pades.CHANGED: N_(
        "Changed: this file was altered after it was signed. Do not rely on it; ask the court for the original."
    ),
    pades.APPENDED: N_(
        "Changed: something was added to this file after the platform signed it. The signed part is intact, but this is not the file that was issued."
    ),
    pades.INVALID: N_("Not signed by the platform: this file's signature does not check out."),
    pades.UNTRUSTED: N_(
        "Not signed by the platform: this file is signed, but by someone else. It was not issued here."
    ),
    pades.UNSIGNED: N_(
        "Not signed by the platform: this PDF has no electronic signature. It was not issued here."
    ),
    pades.NOT_PDF: N_("This is not a PDF file, or it is too damaged to read."),
    "unknown": N_(
        "Unknown file: it carries the platform's intact signature, but it is not among the documents the platform issued."
    ),
}


def verdict_key(verdict: pades.Verdict) -> str:
    if verdict.problem:
        return verdict.problem
    return "valid" if verdict.ok else "unknown"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AgreementSignatureIn(_Body):
    document_sha256: str = Field(max_length=64, description="the SHA-256 of the PDF read")
    image: str = Field(
        max_length=MAX_SIGNATURE_BODY,
        description="the drawn signature: a PNG, base64 (a data:image/png;base64, URL is fine)",
    )


class AgreementRefusalIn(_Body):
    reason: str = Field(max_length=signatures.MAX_REASON * 4, description="why the party refuses")


class AgreementCapacityOut(BaseModel):
    role: str = Field(description="party, agent or mediator")
    seat: str
    name: str
    party_name: str


class AgreementAnswerOut(BaseModel):
    id: int
    decision: str = Field(description="signed or refused")
    decision_label: str
    name: str = Field(description="who signed or refused")
    signer_role: str
    at: str
    document_sha256: str
    image_sha256: str


class AgreementSignerOut(BaseModel):
    party_id: int | None = Field(description="None: the mediator")
    name: str
    seat: str
    signed: bool
    answer: AgreementAnswerOut | None


class AgreementSigningOut(BaseModel):
    dispute_id: int
    number: str
    state: str = Field(description="signing, signed or refused")
    version: int
    pdf_sha256: str = Field(description="the SHA-256 of the PDF out for signing")
    text_sha256: str
    may_sign: bool
    may_refuse: bool
    reverified: bool = Field(description="the caller's one-time code is fresh enough")
    me: AgreementCapacityOut | None
    mine: AgreementAnswerOut | None
    signers: list[AgreementSignerOut]
    missing: list[str]
    signed_at: str | None
    final_document_id: int | None
    final_sha256: str


class AgreementSignedOut(AgreementSigningOut):
    signature: AgreementAnswerOut
    complete: bool = Field(description="the last signature: the agreement took effect")


class PdfSignatureCheckOut(BaseModel):
    field: str
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_file: bool
    signer: str = Field(description="shown only for the platform's own signatures")
    signed_at: str | None


class PdfVerdictOut(BaseModel):
    ok: bool = Field(description="issued by the platform, intact, trusted, unchanged")
    verdict: str = Field(
        description="valid, changed, appended, invalid, untrusted, unsigned, not_pdf, unknown"
    )
    message: str
    sha256: str
    size: int
    issued: bool
    title: str
    number: str
    issued_at: str | None
    signatures: list[PdfSignatureCheckOut]


# --- JSON ---------------------------------------------------------------------------


def answer_json(answer: Any) -> dict[str, Any]:
    return {
        "id": answer.id,
        "decision": answer.decision,
        "decision_label": gettext(signatures.decision_label(answer.decision)),
        "name": answer.name,
        "signer_role": answer.signer_role,
        "at": answer.at.isoformat(),
        "document_sha256": answer.document_sha256,
        "image_sha256": answer.image_sha256,
    }


def _signer_json(expected: Expected) -> dict[str, Any]:
    return {
        "party_id": expected.party_id,
        "name": expected.name,
        "seat": gettext(expected.seat),
        "signed": expected.signed,
        "answer": answer_json(expected.answer) if expected.answer else None,
    }


def signing_json(view: SigningState) -> dict[str, Any]:
    me = view.me
    return {
        "dispute_id": view.dispute_id,
        "number": view.number,
        "state": view.state,
        "version": view.version,
        "pdf_sha256": view.pdf_sha256,
        "text_sha256": view.text_sha256,
        "may_sign": view.may_sign,
        "may_refuse": view.may_refuse,
        "reverified": view.reverified,
        "me": (
            {
                "role": me.role,
                "seat": gettext(me.seat),
                "name": me.name,
                "party_name": me.party_name,
            }
            if me
            else None
        ),
        "mine": answer_json(view.mine) if view.mine else None,
        "signers": [_signer_json(e) for e in view.expected],
        "missing": [e.name for e in view.missing],
        "signed_at": view.signed_at.isoformat() if view.signed_at else None,
        "final_document_id": view.final_document_id,
        "final_sha256": view.final_sha256,
    }


def verdict_json(verdict: pades.Verdict) -> dict[str, Any]:
    key = verdict_key(verdict)
    issued = verdict.issued
    return {
        "ok": verdict.ok,
        "verdict": key,
        "message": gettext(VERDICTS[key]),
        "sha256": verdict.sha256,
        "size": verdict.size,
        "issued": issued is not None,
        "title": issued.title if issued else "",
        "number": issued.number if issued else "",
        "issued_at": issued.issued_at.isoformat() if issued else None,
        "signatures": [
            {
                "field": check.field,
                "intact": check.intact,
                "valid": check.valid,
                "trusted": check.trusted,
                "covers_whole_file": check.covers_whole_file,
                "signer": check.signer if check.trusted else "",
                "signed_at": check.signed_at.isoformat() if check.signed_at else None,
            }
            for check in verdict.signatures
        ],
    }


async def _limited(request: web.Request, limit: int) -> bytes:
    """The request body, refused (before reading it, where its length is known) past
    ``limit`` bytes."""
    too_large = Invalid(signatures.IMAGE_TOO_LARGE, field="image", kb=limit // 1024)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = bytearray()
    while chunk := await request.content.read(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


def _parse(raw: bytes, model: type[M]) -> M:
    try:
        value = json.loads(raw)
    except ValueError:
        raise Invalid(N_("The request body is not valid JSON.")) from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "missing":
            raise Invalid(N_("This field is required: %(field)s."), field=field) from None
        raise Invalid(N_("This field is not valid: %(field)s."), field=field) from None


# --- the API ------------------------------------------------------------------------


async def _state(request: web.Request, dispute_id: int) -> SigningState:
    caller = require_login(request)
    return await signatures.state(
        db(request), caller, dispute_id, reverify_minutes=settings(request).reverify_minutes
    )


@documented(
    "Who signs the agreement, who has signed and who has not",
    response=AgreementSigningOut,
    tags=TAGS,
)
async def signing_state(request: web.Request) -> web.Response:
    return web.json_response(signing_json(await _state(request, path_id(request))))


@documented(
    "Sign the agreement out for signing (needs a fresh one-time code)",
    body=AgreementSignatureIn,
    response=AgreementSignedOut,
    status=201,
    tags=TAGS,
)
async def sign(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    data = _parse(await _limited(request, MAX_SIGNATURE_BODY), AgreementSignatureIn)
    image = signatures.decode_image(data.image)
    who = client(request)
    done = await signatures.sign(
        db(request),
        request.app[SPOOL],
        caller,
        dispute_id,
        document_sha256=data.document_sha256,
        image_png=image,
        ip=who.ip,
        user_agent=who.user_agent,
        store=request.app[STORE],
        settings=settings(request),
    )
    request.app[OUTBOX].wake()
    view = await _state(request, dispute_id)
    return web.json_response(
        {**signing_json(view), "signature": answer_json(done.signature), "complete": done.complete},
        status=201,
    )


@documented(
    "Refuse to sign the agreement: the mediation ends (调解规则 Art. 25 (七))",
    body=AgreementRefusalIn,
    response=AgreementSigningOut,
    tags=TAGS,
)
async def refuse(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    data = _parse(await _limited(request, MAX_REFUSAL_BODY), AgreementRefusalIn)
    who = client(request)
    await signatures.refuse(
        db(request),
        caller,
        dispute_id,
        data.reason,
        ip=who.ip,
        user_agent=who.user_agent,
        settings=settings(request),
    )
    return web.json_response(signing_json(await _state(request, dispute_id)))


# --- the pages ------------------------------------------------------------------------


async def sign_page(request: web.Request) -> web.Response:
    dispute_id = path_id(request)
    view = await _state(request, dispute_id)
    if view.may_sign and not view.reverified:
        raise web.HTTPSeeOther(f"/reverify?next={quote(request.path_qs)}")
    return render(
        request,
        "agreement_sign.html",
        {
            "view": view,
            "draft_url": f"/disputes/{dispute_id}/agreement/draft.pdf",
            "max_reason": signatures.MAX_REASON,
        },
    )


async def draft_pdf(request: web.Request) -> web.StreamResponse:
    """The PDF out for signing, shown inline (and embedded in the signing page)."""
    caller = require_login(request)
    dispute_id = path_id(request)
    stored = await signatures.draft_pdf(db(request), caller, dispute_id)
    await check_in_store(request, stored, dispute_id)
    response = web.StreamResponse()
    response.content_type = "application/pdf"
    response.content_length = stored.size
    response.headers["ETag"] = f'"{stored.sha256}"'
    response.headers["Content-Disposition"] = "inline; filename=agreement-draft.pdf"
    # shown in a frame of the signing page (the site's pages may not be framed at all)
    response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    await response.prepare(request)
    async for chunk in documents.open_bytes(request.app[STORE], request.app[SPOOL], stored, None):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _check_upload(request: web.Request) -> pades.Verdict:
    async with received_file(request, MAX_VERIFY_BYTES) as upload:
        data = await asyncio.to_thread(upload.spooled.path.read_bytes)
    key = await asyncio.to_thread(platform_key, settings(request))
    verdict = await asyncio.to_thread(pades.verify_pdf, data, key.roots)
    found = await agreement_final.issued(db(request), verdict.sha256)
    return verdict.with_issued(found)


async def verify_page(request: web.Request) -> web.Response:
    return render(request, "verify_pdf.html", {"verdict": None, "max_mb": MAX_VERIFY_BYTES >> 20})


@streams_body
async def verify_upload(request: web.Request) -> web.Response:
    verdict = await _check_upload(request)
    return render(
        request,
        "verify_pdf.html",
        {
            "verdict": verdict,
            "key": verdict_key(verdict),
            "message": VERDICTS[verdict_key(verdict)],
            "max_mb": MAX_VERIFY_BYTES >> 20,
        },
    )


@documented(
    "Check a PDF: issued by the platform and unchanged? (multipart form, field file)",
    response=PdfVerdictOut,
    tags=TAGS,
)
@streams_body
async def verify_api(request: web.Request) -> web.Response:
    return web.json_response(verdict_json(await _check_upload(request)))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/disputes/{id}/agreement/sign", sign_page, name="agreement_sign")
    r.add_get("/disputes/{id}/agreement/draft.pdf", draft_pdf, name="agreement_draft_pdf")
    base = "/api/v1/disputes/{id}/agreement"
    r.add_get(f"{base}/signatures", signing_state, name="api_agreement_signatures")
    r.add_post(f"{base}/signatures", sign, name="api_agreement_sign")
    r.add_post(f"{base}/refusal", refuse, name="api_agreement_refusal")
    r.add_get("/verify", verify_page, name="verify_pdf")
    r.add_post("/verify", verify_upload, name="verify_pdf_upload")
    r.add_post("/api/v1/verify", verify_api, name="api_verify_pdf")
