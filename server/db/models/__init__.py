"""All SQLAlchemy models; importing this module registers every table on ``Base``."""

from server.db.base import Base
from server.db.models.accounts import Court, LoginSession, LoginThrottle, OneTimeCode, User
from server.db.models.agreements import (
    Agreement,
    AgreementSignature,
    AgreementTemplate,
    AgreementVersion,
    Confirmation,
)
from server.db.models.audit import AuditEvent
from server.db.models.disputes import (
    Consent,
    Dispute,
    DisputeAgent,
    DisputeParty,
    DisputeStaff,
)
from server.db.models.documents import Document
from server.db.models.jobs import Job
from server.db.models.notify import OutboxMessage
from server.db.models.recordings import (
    Recording,
    RecordingEvent,
    RecordingFile,
    RecordingSegment,
)
from server.db.models.rooms import ChatLine, RoomLogEntry, SessionGuest
from server.db.models.roster import MediationOrganisation, Mediator
from server.db.models.service import Service, ServiceDelivery
from server.db.models.session_participants import CaseSessionParticipant
from server.db.models.sessions import CaseSession
from server.db.models.storage import StoredObject
from server.db.models.transcript_reviews import TranscriptReview, TranscriptSignoff
from server.db.models.transcripts import TranscriptEdit, TranscriptLine

__all__ = [
    "Agreement",
    "AgreementSignature",
    "AgreementTemplate",
    "AgreementVersion",
    "AuditEvent",
    "Base",
    "CaseSession",
    "CaseSessionParticipant",
    "ChatLine",
    "Confirmation",
    "Consent",
    "Court",
    "Dispute",
    "DisputeAgent",
    "DisputeParty",
    "DisputeStaff",
    "Document",
    "Job",
    "LoginSession",
    "LoginThrottle",
    "MediationOrganisation",
    "Mediator",
    "OneTimeCode",
    "OutboxMessage",
    "Recording",
    "RecordingEvent",
    "RecordingFile",
    "RecordingSegment",
    "RoomLogEntry",
    "Service",
    "ServiceDelivery",
    "SessionGuest",
    "StoredObject",
    "TranscriptEdit",
    "TranscriptLine",
    "TranscriptReview",
    "TranscriptSignoff",
    "User",
]
