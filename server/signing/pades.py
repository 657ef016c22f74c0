"""PAdES baseline signatures of PDF files (pyHanko) and checking them, offline.

``sign_pdf`` appends a signature in an incremental update; ``verify_pdf`` checks every
signature in a file against the platform's roots, with no network (no certificate or
revocation fetching): whether the signed bytes are intact, the signature valid, the
signer trusted, and whether the last signature covers the whole file (nothing added
after it). Both are synchronous and CPU-bound: call them from a worker thread in the
server (pyHanko runs its own event loop inside).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.keys.internal import translate_pyca_cryptography_key_to_asn1
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from server.signing.keys import PlatformKey

log = logging.getLogger("yizhan.signing")

Signer = signers.Signer

# what went wrong with a file, from worst to least bad
NOT_PDF = "not_pdf"  # not a PDF, or damaged beyond reading
UNSIGNED = "unsigned"  # a PDF with no signature
CHANGED = "changed"  # the signed bytes were changed after signing
INVALID = "invalid"  # the signature itself does not check out
UNTRUSTED = "untrusted"  # signed, intact, but not by a key the platform trusts
APPENDED = "appended"  # something was added to the file after the last signature


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def signer_for(key: PlatformKey) -> signers.SimpleSigner:
    """A pyHanko signer of the platform key, with its chain embedded in each signature."""
    registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
    for certificate in key.chain:
        registry.register(_asn1(certificate))
    return signers.SimpleSigner(
        signing_cert=_asn1(key.certificate),
        signing_key=translate_pyca_cryptography_key_to_asn1(key.key),
        cert_registry=registry,
    )


def sign_pdf(
    data: bytes,
    *,
    field: str,
    reason: str,
    location: str,
    signer: Signer,
    certify: bool = False,
) -> bytes:
    """``data`` with a PAdES baseline (B-B) signature in a new incremental update.

    ``certify``: a certification signature that allows no later change (DocMDP), for
    documents the platform issues as final."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        certify=certify,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
    )
    pdf_signer = signers.PdfSigner(meta, signer=signer)
    output = io.BytesIO()
    pdf_signer.sign_pdf(writer, output=output)
    return output.getvalue()


@dataclass(frozen=True)
class SignatureCheck:
    """One signature in a file, as checked."""

    field: str
    intact: bool  # the signed bytes are as they were signed
    valid: bool  # the signature over them is cryptographically valid
    trusted: bool  # the signer's chain leads to a trusted root
    signer: str  # the signing certificate's subject
    signed_at: datetime | None  # as the signer reported it
    coverage: str  # pyHanko's coverage level: entire_file, entire_revision, ...
    covers_whole_file: bool
    docmdp_ok: bool | None  # later changes allowed by a certification signature
    modification: str  # pyHanko's modification level of what came after, if anything

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted


@dataclass(frozen=True)
class Issued:
    """The stored document a file's SHA-256 matches (looked up by the caller)."""

    document_id: int
    title: str
    number: str
    issued_at: datetime


@dataclass(frozen=True)
class Verdict:
    """What a file is: its SHA-256, each signature as checked, and what is wrong."""

    sha256: str
    size: int
    signatures: tuple[SignatureCheck, ...] = ()
    problem: str = ""  # one of the constants above; "" when the signatures check out
    issued: Issued | None = None  # filled in by the caller
    details: tuple[str, ...] = field(default=())

    @property
    def signed_ok(self) -> bool:
        """Signed, every signature intact, valid and trusted, and the last one
        covers the whole file."""
        return not self.problem and bool(self.signatures)

    @property
    def ok(self) -> bool:
        """Signed as above, and the very file the platform issued."""
        return self.signed_ok and self.issued is not None

    def with_issued(self, issued: Issued | None) -> Verdict:
        return replace(self, issued=issued)


def validation_context(roots: Iterable[x509.Certificate]) -> ValidationContext:
    """Trust exactly ``roots``; fetch nothing (certificates, CRLs, OCSP) from anywhere."""
    return ValidationContext(
        trust_roots=[_asn1(root) for root in roots],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


def verify_pdf(data: bytes, trust_roots: Sequence[x509.Certificate]) -> Verdict:
    """Check every signature in ``data`` against ``trust_roots``, offline."""
    digest = hashlib.sha256(data).hexdigest()
    base = Verdict(sha256=digest, size=len(data))
    if b"%PDF-" not in data[:1024]:
        return replace(base, problem=NOT_PDF)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_regular_signatures)
    except Exception as exc:  # pyHanko's parse errors vary with the damage
        log.info("unreadable PDF %s: %s", digest, exc)
        # a file that was signed but no longer even parses has been changed since
        problem = CHANGED if b"/ByteRange" in data else NOT_PDF
        return replace(base, problem=problem, details=(str(exc)[:200],))
    if not embedded:
        return replace(base, problem=UNSIGNED)
    checks: list[SignatureCheck] = []
    details: list[str] = []
    for signature in embedded:
        try:
            status = validate_pdf_signature(signature, validation_context(trust_roots))
        except Exception as exc:  # a damaged signature dictionary or CMS blob
            log.info("signature %s of %s not checkable: %s", signature.field_name, digest, exc)
            details.append(f"{signature.field_name}: {str(exc)[:200]}")
            checks.append(_unreadable(signature.field_name))
            continue
        checks.append(_check(signature.field_name, status))
    return replace(base, signatures=tuple(checks), problem=_problem(checks), details=tuple(details))


def _unreadable(name: str) -> SignatureCheck:
    return SignatureCheck(
        field=name,
        intact=False,
        valid=False,
        trusted=False,
        signer="",
        signed_at=None,
        coverage="unclear",
        covers_whole_file=False,
        docmdp_ok=False,
        modification="",
    )


def _check(name: str, status: PdfSignatureStatus) -> SignatureCheck:
    level = status.modification_level
    return SignatureCheck(
        field=name,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        signer=_common_name(status),
        signed_at=status.signer_reported_dt,
        coverage=status.coverage.name.lower() if status.coverage else "unclear",
        covers_whole_file=status.coverage is SignatureCoverageLevel.ENTIRE_FILE,
        docmdp_ok=status.docmdp_ok,
        modification=level.name.lower() if level is not None else "",
    )


def _common_name(status: PdfSignatureStatus) -> str:
    subject = status.signing_cert.subject
    name = subject.native.get("common_name") if isinstance(subject.native, dict) else None
    return str(name) if name else str(subject.human_friendly)


def _problem(checks: Sequence[SignatureCheck]) -> str:
    if any(not check.intact for check in checks):
        return CHANGED
    if any(not check.valid for check in checks):
        return INVALID
    if any(not check.trusted for check in checks):
        return UNTRUSTED
    last = checks[-1]
    if not last.covers_whole_file or any(check.docmdp_ok is False for check in checks):
        return APPENDED
    return ""
