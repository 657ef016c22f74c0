"""Kinds of stored files: size limits, accepted types, write-once rules, who may read them."""

from __future__ import annotations

from enum import StrEnum

from server.domain.errors import N_
from server.domain.roles import Role

MIB = 1024 * 1024


class DocumentKind(StrEnum):
    EVIDENCE = "evidence"
    RECORDING_SEGMENT = "recording_segment"
    RECORDING = "recording"
    TRANSCRIPT_EXPORT = "transcript_export"
    AGREEMENT = "agreement"
    RULING = "ruling"
    JUDGMENT = "judgment"  # of a fast-track hearing after case filing
    SERVICE_CERTIFICATE = "service_certificate"
    STATEMENT_RECORDING = "statement_recording"  # a recorded statement, asynchronous hearing


KIND_LABELS = {
    DocumentKind.EVIDENCE: N_("Evidence"),
    DocumentKind.RECORDING_SEGMENT: N_("Recording segment"),
    DocumentKind.RECORDING: N_("Recording"),
    DocumentKind.TRANSCRIPT_EXPORT: N_("Transcript"),
    DocumentKind.AGREEMENT: N_("Mediation agreement"),
    DocumentKind.RULING: N_("Ruling"),
    DocumentKind.JUDGMENT: N_("Judgment"),
    DocumentKind.SERVICE_CERTIFICATE: N_("Service certificate"),
    DocumentKind.STATEMENT_RECORDING: N_("Recorded statement (asynchronous hearing)"),
}

DEFAULT_LIMITS = {
    DocumentKind.EVIDENCE: 100 * MIB,
    DocumentKind.RECORDING_SEGMENT: 512 * MIB,
    DocumentKind.RECORDING: 8192 * MIB,
    DocumentKind.TRANSCRIPT_EXPORT: 50 * MIB,
    DocumentKind.AGREEMENT: 20 * MIB,
    DocumentKind.RULING: 20 * MIB,
    DocumentKind.JUDGMENT: 20 * MIB,
    DocumentKind.SERVICE_CERTIFICATE: 20 * MIB,
    DocumentKind.STATEMENT_RECORDING: 500 * MIB,
}

# signed documents and recordings are evidence of what happened: never replaced
WRITE_ONCE = frozenset(
    {
        DocumentKind.RECORDING_SEGMENT,
        DocumentKind.RECORDING,
        DocumentKind.AGREEMENT,
        DocumentKind.RULING,
        DocumentKind.JUDGMENT,
        DocumentKind.SERVICE_CERTIFICATE,
        DocumentKind.STATEMENT_RECORDING,
    }
)

# file types (storage.sniff names) each kind accepts
ACCEPTED_TYPES = {
    DocumentKind.EVIDENCE: frozenset(
        {"pdf", "jpeg", "png", "docx", "mp3", "m4a", "wav", "mp4", "webm", "txt"}
    ),
    DocumentKind.RECORDING_SEGMENT: frozenset({"webm"}),
    DocumentKind.RECORDING: frozenset({"webm", "mp4"}),
    DocumentKind.TRANSCRIPT_EXPORT: frozenset({"pdf", "docx", "txt"}),
    DocumentKind.AGREEMENT: frozenset({"pdf"}),
    DocumentKind.RULING: frozenset({"pdf"}),
    DocumentKind.JUDGMENT: frozenset({"pdf"}),
    DocumentKind.SERVICE_CERTIFICATE: frozenset({"pdf"}),
    DocumentKind.STATEMENT_RECORDING: frozenset({"wav", "mp3", "m4a", "mp4", "webm"}),
}

STAFF_READERS = frozenset({Role.MEDIATOR, Role.JUDGE, Role.CLERK, Role.COURT_ADMIN})
EVERYONE_ON_THE_DISPUTE = frozenset(Role)

# who, among the people who may see the dispute, may read each kind
READERS = {
    DocumentKind.EVIDENCE: EVERYONE_ON_THE_DISPUTE,
    DocumentKind.RECORDING_SEGMENT: STAFF_READERS,
    DocumentKind.RECORDING: EVERYONE_ON_THE_DISPUTE,
    DocumentKind.TRANSCRIPT_EXPORT: EVERYONE_ON_THE_DISPUTE,
    DocumentKind.AGREEMENT: EVERYONE_ON_THE_DISPUTE,
    DocumentKind.RULING: EVERYONE_ON_THE_DISPUTE,
    DocumentKind.JUDGMENT: EVERYONE_ON_THE_DISPUTE,
    DocumentKind.SERVICE_CERTIFICATE: EVERYONE_ON_THE_DISPUTE,
    DocumentKind.STATEMENT_RECORDING: EVERYONE_ON_THE_DISPUTE,
}

# who may upload evidence to a dispute they are on (walk-ins: the clerk on a party's behalf)
EVIDENCE_UPLOADERS = frozenset({Role.PARTY, Role.AGENT, Role.MEDIATOR, Role.CLERK})


def may_read(role: Role, kind: DocumentKind) -> bool:
    return role in READERS[kind]


def kind_label(value: str) -> str:
    try:
        return KIND_LABELS[DocumentKind(value)]
    except ValueError:
        return value
