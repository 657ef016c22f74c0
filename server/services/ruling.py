"""The ruling (民事裁定书) on an application for judicial confirmation of a mediation
agreement: laid out from a template the court may edit (``web/ruling_templates``,
sandboxed Jinja2, autoescaped), rendered to PDF with the CJK fonts embedded
(``server.pdf``), and sealed with the platform's PAdES signature in the judge's name.

The template holds the wording, the legal basis included; this module only gathers the
facts (court, case number, parties, the agreement, the reasons, the judge, the date) as
plain values, so that a template cannot reach anything else.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from server.config import Settings
from server.pdf import render_pdf

log = logging.getLogger(__name__)

CONFIRMED, REJECTED = "confirmed", "rejected"
DECISIONS = (CONFIRMED, REJECTED)
TEMPLATES = {CONFIRMED: "confirmed.html.j2", REJECTED: "rejected.html.j2"}
TITLE = "民事裁定书"

_DIGITS = "〇一二三四五六七八九"
_ENVIRONMENT = ImmutableSandboxedEnvironment(
    loader=jinja2.PackageLoader("web", "ruling_templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class PartyLine:
    """One applicant as the ruling names them, with their agents."""

    name: str
    legal_person: bool
    address: str
    agents: tuple[str, ...]


@dataclass(frozen=True)
class RulingFacts:
    """Everything a ruling template may show, as plain text."""

    decision: str  # confirmed, rejected
    court: str
    number: str  # the ruling's case number, （2026）演0101民特3号
    dispute_number: str
    dispute_type: str  # in Chinese, e.g. 民间借贷纠纷
    parties: tuple[PartyLine, ...]
    applicant_names: str  # 张三、李四
    applied_on: str  # in Chinese numerals
    agreement_number: str
    agreement_signed_on: str
    agreement_text: tuple[str, ...]  # paragraphs of the signed version
    agreement_sha256: str  # of the signed agreement PDF
    mediated_by: str  # the mediator (and organisation), or empty
    reasons: tuple[str, ...]  # paragraphs; a rejection's grounds
    judge: str
    clerk: str
    decided_on: str
    title: str = TITLE


def chinese_number(n: int) -> str:
    """1..31 as a Chinese numeral (一, 十一, 二十一) for month and day."""
    if not 1 <= n <= 99:
        raise ValueError(n)
    tens, units = divmod(n, 10)
    text = ""
    if tens:
        text = ("" if tens == 1 else _DIGITS[tens]) + "十"
    return text + (_DIGITS[units] if units else "")


def chinese_date(day: date) -> str:
    """A date as courts write it: 二〇二六年十一月二十九日."""
    year = "".join(_DIGITS[int(c)] for c in str(day.year))
    return f"{year}年{chinese_number(day.month)}月{chinese_number(day.day)}日"


def paragraphs(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def markup(facts: RulingFacts, source: str | None = None) -> str:
    """The ruling as HTML: the platform's template for the decision, or ``source`` (a
    court's own template text), rendered in the sandbox."""
    if facts.decision not in DECISIONS:
        raise ValueError(facts.decision)
    template = (
        _ENVIRONMENT.from_string(source)
        if source is not None
        else _ENVIRONMENT.get_template(TEMPLATES[facts.decision])
    )
    values: dict[str, Any] = dataclasses.asdict(facts)
    return template.render(ruling=values)


def render(facts: RulingFacts, source: str | None = None) -> bytes:
    """The ruling as PDF bytes (blocking: run it in a worker thread)."""
    return render_pdf(markup(facts, source))


def signature_field(judge_id: int) -> str:
    return f"yizhan-judge-{judge_id}"


def signature_reason(judge_name: str) -> str:
    return f"{judge_name} 法官作出民事裁定 / Ruling of judge {judge_name}"


def sign(settings: Settings, data: bytes, *, judge_id: int, judge_name: str, court: str) -> bytes:
    """The PDF with the platform's PAdES signature in a field named for the judge
    (blocking: run it in a worker thread)."""
    return _sign(
        settings,
        data,
        field=signature_field(judge_id),
        reason=signature_reason(judge_name),
        location=court,
    )


def _sign(settings: Settings, data: bytes, *, field: str, reason: str, location: str) -> bytes:
    """A certification signature in the judge's name: a ruling is final."""
    from server.signing.issue import certify

    return certify(settings, data, field=field, reason=reason, location=location)
