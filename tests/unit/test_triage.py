"""Automatic triage: a score, the reasons behind it, and what cannot be mediated."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.disputes import Complexity, DisputeType
from server.domain.errors import Invalid
from server.domain.triage import (
    COMPLEX_FROM,
    MB,
    ExcludedMatter,
    TriageFacts,
    classify,
)


def explained(facts: TriageFacts) -> list[tuple[str, str, int]]:
    """Each reason as (rule, the English text with its params filled in, points)."""
    return [(r.rule, r.message % r.params, r.points) for r in classify(facts).reasons]


def test_a_small_loan_between_two_people_is_simple_with_nothing_to_explain() -> None:
    result = classify(TriageFacts(DisputeType.LOAN, Decimal("20000")))
    assert (result.complexity, result.score, result.reasons) == (Complexity.SIMPLE, 0, [])
    assert result.suitable_for_mediation and result.unsuitable_reasons == []


def test_a_traffic_claim_over_fifty_thousand_is_still_simple_and_says_why() -> None:
    facts = TriageFacts(DisputeType.TRAFFIC, Decimal("128000.00"))
    result = classify(facts)
    assert (result.complexity, result.score) == (Complexity.SIMPLE, 2)
    assert explained(facts) == [
        ("type", "Disputes of this type usually need more work: Traffic accident.", 1),
        ("amount", "The claim is over 50,000 yuan.", 1),
    ]


def test_a_foreign_element_alone_makes_a_dispute_complex() -> None:
    result = classify(TriageFacts(DisputeType.SALE, Decimal("1000"), foreign_element=True))
    assert (result.complexity, result.score) == (Complexity.COMPLEX, COMPLEX_FROM)
    assert [r.rule for r in result.reasons] == ["foreign"]


def test_every_factor_adds_its_points_and_its_reason() -> None:
    facts = TriageFacts(
        DisputeType.LABOUR,
        Decimal("600000"),
        parties=4,
        evidence_files=60,
        evidence_bytes=300 * MB + 1,
        prior_disputes=3,
    )
    result = classify(facts)
    assert (result.complexity, result.score) == (Complexity.COMPLEX, 11)
    assert explained(facts) == [
        ("type", "Disputes of this type usually need more work: Labour.", 2),
        ("amount", "The claim is over 500,000 yuan.", 2),
        ("parties", "4 parties take part.", 2),
        ("evidence.files", "60 evidence files, more than 50.", 2),
        ("evidence.size", "301 MB of evidence, more than 200 MB.", 1),
        ("prior_disputes", "The same parties have had 3 earlier disputes.", 2),
    ]
    assert sum(r.points for r in result.reasons) == result.score


@pytest.mark.parametrize(
    ("amount", "points"),
    [
        (Decimal("50000"), 0),
        (Decimal("50000.01"), 1),
        (Decimal("500000"), 1),
        (Decimal("500000.01"), 2),
        (Decimal("5000001"), 4),
        (None, 1),
    ],
)
def test_the_amount_thresholds(amount: Decimal | None, points: int) -> None:
    assert classify(TriageFacts(DisputeType.LOAN, amount)).score == points


def test_an_unstated_amount_is_explained() -> None:
    assert explained(TriageFacts(DisputeType.LOAN, None)) == [
        ("amount", "No amount is claimed; the value of the claim must be assessed.", 1)
    ]


def test_extra_parties_count_up_to_three_points() -> None:
    assert classify(TriageFacts(DisputeType.LOAN, Decimal(1), parties=3)).score == 1
    assert classify(TriageFacts(DisputeType.LOAN, Decimal(1), parties=9)).score == 3


def test_confirming_a_marriage_cannot_be_mediated_and_the_reason_is_given() -> None:
    facts = TriageFacts(
        DisputeType.FAMILY,
        None,
        excluded_matters=frozenset({ExcludedMatter.STATUS_CONFIRMATION}),
    )
    result = classify(facts)
    assert not result.suitable_for_mediation
    assert [r.message for r in result.unsuitable_reasons] == [
        "Confirming a marriage or another personal status relationship cannot be mediated."
    ]
    assert result.score == 3  # the score is still worked out and shown: type 2, amount 1


def test_a_divorce_over_money_is_family_and_still_suitable() -> None:
    result = classify(TriageFacts(DisputeType.FAMILY, Decimal("300000")))
    assert result.suitable_for_mediation and result.score == 3
    assert result.complexity is Complexity.COMPLEX


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        (TriageFacts(DisputeType.LOAN, Decimal("-1")), "claim_amount"),
        (TriageFacts(DisputeType.LOAN, None, parties=1), "parties"),
        (TriageFacts(DisputeType.LOAN, None, evidence_files=-1), "evidence_files"),
    ],
)
def test_impossible_facts_are_refused_naming_the_field(facts: TriageFacts, field: str) -> None:
    with pytest.raises(Invalid) as refused:
        classify(facts)
    assert refused.value.field == field


facts_strategy = st.builds(
    TriageFacts,
    st.sampled_from(list(DisputeType)),
    st.one_of(st.none(), st.decimals(0, 10**8, places=2)),
    st.integers(2, 12),
    st.booleans(),
    st.integers(0, 200),
    st.integers(0, 10**10),
    st.integers(0, 10),
    st.frozensets(st.sampled_from(list(ExcludedMatter))),
)


@given(facts_strategy)
def test_triage_is_deterministic_and_adds_up(facts: TriageFacts) -> None:
    result = classify(facts)
    assert result == classify(facts)
    assert result.score == sum(r.points for r in result.reasons)
    assert all(r.points > 0 for r in result.reasons)
    assert (result.complexity is Complexity.COMPLEX) == (result.score >= COMPLEX_FROM)
    assert result.suitable_for_mediation == (not facts.excluded_matters)
    for reason in result.reasons + result.unsuitable_reasons:
        assert reason.message % reason.params  # every placeholder has its param
        assert all(isinstance(value, str) for value in reason.params.values())
