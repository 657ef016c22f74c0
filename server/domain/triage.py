"""Automatic triage (繁简分流): simple or complex, with the reasons shown.

Each rule that applies adds points and a ``Reason`` (a message id, its params and
the points); a score of ``COMPLEX_FROM`` or more is complex.  The triage officer
sees the reasons and accepts or overrides the result (``workflow``).  Separately,
matters the law does not let a court mediate make the dispute unsuitable for
mediation; it then goes to case filing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from server.domain.disputes import TYPE_LABELS, Complexity, DisputeType
from server.domain.errors import N_, Invalid

COMPLEX_FROM = 3

# Types that usually need more work: traffic (liability shares, injury and loss
# assessments), property (ownership, neighbour relations, site inspection), labour
# (statutory arbitration first, several claims at once) and family (personal
# relations, children, joint property); "other" is unknown ground.
TYPE_POINTS = {
    DisputeType.LOAN: 0,
    DisputeType.SALE: 0,
    DisputeType.CONSUMER: 0,
    DisputeType.TRAFFIC: 1,
    DisputeType.OTHER: 1,
    DisputeType.PROPERTY: 2,
    DisputeType.LABOUR: 2,
    DisputeType.FAMILY: 2,
}

# Claim amount tiers in yuan, highest first.  The lowest is about the small-claims
# ceiling (民事诉讼法, 小额诉讼: half of the province's average annual wage).
AMOUNT_TIERS = ((Decimal(5_000_000), 4), (Decimal(500_000), 2), (Decimal(50_000), 1))
UNSTATED_AMOUNT_POINTS = 1

PARTIES_USUAL = 2
PARTIES_MAX_POINTS = 3

# Foreign-related disputes (涉外, and by analogy Hong Kong, Macao, Taiwan) are not
# simple: service abroad, foreign law, no small-claims procedure.
FOREIGN_POINTS = COMPLEX_FROM

EVIDENCE_FILE_TIERS = ((50, 2), (20, 1))
EVIDENCE_MB_LIMIT = 200
MB = 1024 * 1024

PRIOR_DISPUTE_TIERS = ((3, 2), (1, 1))


class ExcludedMatter(StrEnum):
    """Matters a court does not mediate (最高人民法院关于人民法院民事调解工作若干问题的
    规定 Art. 2: cases under the special, payment-order or public-summons procedure,
    confirmation of marriage or other personal status, and others that by their
    nature cannot be mediated)."""

    STATUS_CONFIRMATION = "status_confirmation"
    SPECIAL_PROCEDURE = "special_procedure"
    PAYMENT_ORDER = "payment_order"
    PUBLIC_SUMMONS = "public_summons"


EXCLUDED_MESSAGES = {
    ExcludedMatter.STATUS_CONFIRMATION: N_(
        "Confirming a marriage or another personal status relationship cannot be mediated."
    ),
    ExcludedMatter.SPECIAL_PROCEDURE: N_("Cases under the special procedure cannot be mediated."),
    ExcludedMatter.PAYMENT_ORDER: N_("Cases under the payment-order procedure cannot be mediated."),
    ExcludedMatter.PUBLIC_SUMMONS: N_(
        "Cases under the public summons procedure cannot be mediated."
    ),
}


@dataclass(frozen=True)
class TriageFacts:
    dispute_type: DisputeType
    claim_amount: Decimal | None  # None: nothing in money is claimed
    parties: int = 2  # every applicant, respondent and third party
    foreign_element: bool = False
    evidence_files: int = 0
    evidence_bytes: int = 0
    prior_disputes: int = 0  # earlier disputes between the same parties
    excluded_matters: frozenset[ExcludedMatter] = frozenset()


@dataclass(frozen=True)
class Reason:
    rule: str  # a stable key: "type", "amount", "parties", "foreign", ...
    message: str  # an English message id
    params: dict[str, str] = field(default_factory=dict)
    points: int = 0


@dataclass(frozen=True)
class TriageResult:
    complexity: Complexity
    score: int
    reasons: list[Reason]
    suitable_for_mediation: bool
    unsuitable_reasons: list[Reason]


def classify(facts: TriageFacts) -> TriageResult:
    _check(facts)
    reasons = [
        reason
        for reason in (
            _type(facts),
            _amount(facts),
            _parties(facts),
            _foreign(facts),
            _evidence_files(facts),
            _evidence_size(facts),
            _prior_disputes(facts),
        )
        if reason is not None
    ]
    score = sum(reason.points for reason in reasons)
    unsuitable = [
        Reason("excluded." + matter.value, EXCLUDED_MESSAGES[matter])
        for matter in ExcludedMatter
        if matter in facts.excluded_matters
    ]
    return TriageResult(
        complexity=Complexity.COMPLEX if score >= COMPLEX_FROM else Complexity.SIMPLE,
        score=score,
        reasons=reasons,
        suitable_for_mediation=not unsuitable,
        unsuitable_reasons=unsuitable,
    )


def _check(facts: TriageFacts) -> None:
    if facts.claim_amount is not None and facts.claim_amount < 0:
        raise Invalid(N_("This field is not valid: %(field)s."), field="claim_amount")
    if facts.parties < 2:
        raise Invalid(N_("This field is not valid: %(field)s."), field="parties")
    for name in ("evidence_files", "evidence_bytes", "prior_disputes"):
        if getattr(facts, name) < 0:
            raise Invalid(N_("This field is not valid: %(field)s."), field=name)


def _type(facts: TriageFacts) -> Reason | None:
    points = TYPE_POINTS[facts.dispute_type]
    if not points:
        return None
    return Reason(
        "type",
        N_("Disputes of this type usually need more work: %(type)s."),
        {"type": TYPE_LABELS[facts.dispute_type]},
        points,
    )


def _amount(facts: TriageFacts) -> Reason | None:
    if facts.claim_amount is None:
        return Reason(
            "amount",
            N_("No amount is claimed; the value of the claim must be assessed."),
            points=UNSTATED_AMOUNT_POINTS,
        )
    for limit, points in AMOUNT_TIERS:
        if facts.claim_amount > limit:
            return Reason(
                "amount",
                N_("The claim is over %(amount)s yuan."),
                {"amount": f"{limit:,}"},
                points,
            )
    return None


def _parties(facts: TriageFacts) -> Reason | None:
    extra = min(facts.parties - PARTIES_USUAL, PARTIES_MAX_POINTS)
    if extra <= 0:
        return None
    return Reason(
        "parties", N_("%(count)s parties take part."), {"count": str(facts.parties)}, extra
    )


def _foreign(facts: TriageFacts) -> Reason | None:
    if not facts.foreign_element:
        return None
    return Reason(
        "foreign",
        N_("A party or the matter is foreign-related (including Hong Kong, Macao and Taiwan)."),
        points=FOREIGN_POINTS,
    )


def _evidence_files(facts: TriageFacts) -> Reason | None:
    for limit, points in EVIDENCE_FILE_TIERS:
        if facts.evidence_files > limit:
            return Reason(
                "evidence.files",
                N_("%(count)s evidence files, more than %(limit)s."),
                {"count": str(facts.evidence_files), "limit": str(limit)},
                points,
            )
    return None


def _evidence_size(facts: TriageFacts) -> Reason | None:
    if facts.evidence_bytes <= EVIDENCE_MB_LIMIT * MB:
        return None
    return Reason(
        "evidence.size",
        N_("%(size)s MB of evidence, more than %(limit)s MB."),
        {"size": str(-(-facts.evidence_bytes // MB)), "limit": str(EVIDENCE_MB_LIMIT)},
        1,
    )


def _prior_disputes(facts: TriageFacts) -> Reason | None:
    for least, points in PRIOR_DISPUTE_TIERS:
        if facts.prior_disputes >= least:
            return Reason(
                "prior_disputes",
                N_("The same parties have had %(count)s earlier disputes."),
                {"count": str(facts.prior_disputes)},
                points,
            )
    return None
