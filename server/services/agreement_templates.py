"""Agreement templates: the platform's defaults (files in ``web/agreement_templates``, one per
dispute type and a generic one), a court's own (:class:`AgreementTemplate` rows, kept by the
court's admin), the sandbox they run in and the facts they are filled with.

A template is Jinja2 that writes the agreement's plain text; it runs in an immutable
sandbox with strict undefined names, so it can read the facts it is given and nothing else.
It may name the document with ``{% set title = "人民调解协议书" %}``. The text is escaped
later, where the PDF's HTML layout (autoescaped) places it. A court's template is accepted
only if it compiles and fills sample data (with and without agreed terms); a refusal names
the line.

The facts: ``court``, ``dispute``, ``agreement``, ``parties`` (with ``applicants``,
``respondents``, ``third_parties``), ``agents``, ``mediator``, ``organisation``, ``terms``
and ``today``; the filters ``yuan`` (50,000.00), ``capital`` (伍万元整), ``cn_date``
(2026年3月31日) and ``cn_number`` (十二).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth.principal import Principal
from server.db.models import (
    AgreementTemplate,
    Court,
    Dispute,
    DisputeAgent,
    DisputeParty,
    MediationOrganisation,
    Mediator,
    User,
)
from server.domain.disputes import DisputeType
from server.domain.errors import N_, Conflict, Forbidden, Invalid, NotFound
from server.domain.roles import Role
from web import WEB_DIR

PLATFORM_DIR = WEB_DIR / "agreement_templates"
GENERIC = "generic"
SUFFIX = ".j2"
DEFAULT_TITLE = "调解协议书"
MAX_TITLE = 40
MAX_BODY = 50_000
CENT = Decimal("0.01")

# how court documents print a party's side, an ID's kind and an agent's authority
SIDE_LABELS = {"applicant": "申请人", "respondent": "被申请人", "third_party": "第三人"}
ID_LABELS = {"natural": "公民身份号码", "legal": "统一社会信用代码"}
AUTHORITY_LABELS = {"general": "一般授权", "special": "特别授权"}
TYPE_NAMES = {
    DisputeType.LOAN: "民间借贷纠纷",
    DisputeType.SALE: "买卖合同纠纷",
    DisputeType.TRAFFIC: "机动车交通事故责任纠纷",
    DisputeType.LABOUR: "劳动争议",
    DisputeType.FAMILY: "婚姻家庭纠纷",
    DisputeType.PROPERTY: "财产权属纠纷",
    DisputeType.CONSUMER: "消费者权益纠纷",
    DisputeType.OTHER: "民事纠纷",
}
COSTS_LABELS = {
    "": "",
    "applicant": "由申请人负担",
    "respondent": "由被申请人负担",
    "shared": "由双方当事人各半负担",
    "waived": "免予收取",
}

BODY_ERROR = N_("The template has an error on line %(line)s: %(detail)s")
SAMPLE_ERROR = N_("The template could not be filled with sample data, on line %(line)s: %(detail)s")
FILL_ERROR = N_(
    "The agreement template could not be filled with this dispute's facts, on line "
    "%(line)s: %(detail)s"
)


# amounts and dates as court documents write them -----------------------------------------

CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"
CAPITAL_UNITS = ("", "拾", "佰", "仟")
CAPITAL_GROUPS = ("", "万", "亿", "万亿")
SMALL_NUMBERS = "〇一二三四五六七八九"


def to_cents(amount: Decimal | str | int) -> Decimal:
    """An amount rounded to the fen (0.01)."""
    try:
        return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise ValueError(f"not an amount: {amount!r}") from None


def _capital_group(number: int) -> str:
    """0 < number < 10000 in capital numerals (壹仟零伍拾)."""
    out: list[str] = []
    zero = False
    for position in (3, 2, 1, 0):
        digit = number // 10**position % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(CAPITAL_DIGITS[digit] + CAPITAL_UNITS[position])
    return "".join(out)


def capital_yuan(amount: Decimal | str | int) -> str:
    """An amount in yuan in Chinese capital numerals (大写), as on cheques and court
    documents: 50000.00 → 伍万元整, 12345.67 → 壹万贰仟叁佰肆拾伍元陆角柒分."""
    value = to_cents(amount)
    if value < 0:
        raise ValueError("a negative amount has no capital form")
    cents = int(value * 100)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    if yuan >= 10**16:
        raise ValueError("the amount is too large")
    groups: list[int] = []
    rest = yuan
    while rest:
        groups.append(rest % 10000)
        rest //= 10000
    text = ""
    pending_zero = False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            pending_zero = bool(text)
            continue
        if text and (pending_zero or group < 1000):
            text += "零"
        text += _capital_group(group) + CAPITAL_GROUPS[index]
        pending_zero = False
    if yuan:
        text += "元"
    if jiao == 0 and fen == 0:
        return (text or "零元") + "整"
    if jiao:
        text += CAPITAL_DIGITS[jiao] + "角"
    elif yuan:
        text += "零"
    return text + (CAPITAL_DIGITS[fen] + "分" if fen else "整")


def yuan(amount: Decimal | str | int | None) -> str:
    """50000 → 50,000.00 (empty for no amount)."""
    if amount is None or amount == "":
        return ""
    return f"{to_cents(amount):,.2f}"


def capital(amount: Decimal | str | int | None) -> str:
    if amount is None or amount == "":
        return ""
    return capital_yuan(amount)


def cn_date(value: date | str | None) -> str:
    """2026-03-31 → 2026年3月31日."""
    if value is None or value == "":
        return ""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day.year}年{day.month}月{day.day}日"


def cn_number(number: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十 (clause and instalment numbers, below 100)."""
    if not 0 < number < 100:
        return str(number)
    tens, units = divmod(number, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else SMALL_NUMBERS[tens] + "十")
    return head + (SMALL_NUMBERS[units] if units else "")


def mask_id_number(value: str) -> str:
    """A resident ID as courts print it (110101********7571); other codes are shown whole."""
    value = value.strip()
    if len(value) == 18 and value[:17].isdigit():
        return value[:6] + "*" * 8 + value[-4:]
    return value


# the facts a template is filled with -------------------------------------------------------


@dataclass(frozen=True)
class PartyFact:
    id: int
    side: str
    kind: str
    name: str
    id_number: str
    address: str


@dataclass(frozen=True)
class AgentFact:
    name: str
    party_id: int
    authority: str


@dataclass(frozen=True)
class Facts:
    """What the platform knows of a dispute that an agreement states."""

    court: str
    case_number: str
    agreement_number: str
    dispute_type: str
    summary: str
    requests: str
    claim_amount: Decimal | None
    parties: tuple[PartyFact, ...]
    agents: tuple[AgentFact, ...] = ()
    mediator: str = ""
    organisation: str = ""
    organisation_kind: str = ""
    today: date = field(default_factory=lambda: datetime.now(UTC).date())


def _party(party: PartyFact) -> dict[str, Any]:
    return {
        "id": party.id,
        "side": party.side,
        "side_label": SIDE_LABELS.get(party.side, party.side),
        "kind": party.kind,
        "name": party.name,
        "id_number": (
            mask_id_number(party.id_number) if party.kind == "natural" else party.id_number
        ),
        "id_label": ID_LABELS.get(party.kind, ID_LABELS["natural"]),
        "address": party.address,
    }


def terms_context(terms: Mapping[str, Any], parties: Sequence[PartyFact]) -> dict[str, Any]:
    """The agreed terms (their canonical JSON) as a template reads them: names for party
    ids, amounts in both forms, dates as court documents write them."""
    names = {p.id: p.name for p in parties}
    instalments = [
        {
            "number": index,
            "number_cn": cn_number(index),
            "due": cn_date(item.get("due")),
            "due_iso": str(item.get("due") or ""),
            "amount": yuan(item.get("amount")),
            "amount_capital": capital(item.get("amount")),
        }
        for index, item in enumerate(terms.get("instalments") or [], start=1)
    ]
    total = terms.get("total")
    borne_by = str(terms.get("costs_borne_by") or "")
    return {
        "title": str(terms.get("title") or ""),
        "total": yuan(total),
        "total_capital": capital(total),
        "payer": names.get(terms.get("payer") or 0, ""),
        "payee": names.get(terms.get("payee") or 0, ""),
        "instalments": instalments,
        "deadline": cn_date(terms.get("deadline")),
        "method": str(terms.get("method") or ""),
        "costs_borne_by": borne_by,
        "costs_label": COSTS_LABELS.get(borne_by, ""),
        "costs": str(terms.get("costs") or ""),
        "other_terms": [str(t) for t in terms.get("other_terms") or []],
    }


def context(facts: Facts, terms: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a template may read: plain dicts, lists and strings."""
    parties = [_party(p) for p in facts.parties]
    by_id = {p.id: p.name for p in facts.parties}
    try:
        type_name = TYPE_NAMES[DisputeType(facts.dispute_type)]
    except ValueError:
        type_name = TYPE_NAMES[DisputeType.OTHER]
    return {
        "court": {"name": facts.court},
        "dispute": {
            "number": facts.case_number,
            "type": facts.dispute_type,
            "type_name": type_name,
            "summary": facts.summary,
            "requests": facts.requests,
            "claim_amount": yuan(facts.claim_amount),
            "claim_amount_capital": capital(facts.claim_amount),
        },
        "agreement": {"number": facts.agreement_number},
        "parties": parties,
        "applicants": [p for p in parties if p["side"] == "applicant"],
        "respondents": [p for p in parties if p["side"] == "respondent"],
        "third_parties": [p for p in parties if p["side"] == "third_party"],
        "agents": [
            {
                "name": a.name,
                "party_id": a.party_id,
                "party": by_id.get(a.party_id, ""),
                "authority_label": AUTHORITY_LABELS.get(a.authority, a.authority),
            }
            for a in facts.agents
        ],
        "mediator": {"name": facts.mediator},
        "organisation": {"name": facts.organisation, "kind": facts.organisation_kind},
        "terms": terms_context(terms, facts.parties),
        "today": cn_date(facts.today),
    }


async def dispute_facts(db: AsyncSession, dispute: Dispute, agreement_number: str) -> Facts:
    """The facts of a dispute, read from the database."""
    court = await db.get(Court, dispute.court_id)
    parties = (
        await db.scalars(
            select(DisputeParty)
            .where(DisputeParty.dispute_id == dispute.id)
            .order_by(DisputeParty.id)
        )
    ).all()
    agents = (
        await db.scalars(
            select(DisputeAgent)
            .where(DisputeAgent.dispute_id == dispute.id)
            .order_by(DisputeAgent.id)
        )
    ).all()
    mediator_name = organisation_name = organisation_kind = ""
    if dispute.mediator_user_id is not None:
        user = await db.get(User, dispute.mediator_user_id)
        mediator_name = user.name if user else ""
        row = (
            await db.execute(
                select(MediationOrganisation)
                .join(Mediator, Mediator.organisation_id == MediationOrganisation.id)
                .where(Mediator.user_id == dispute.mediator_user_id)
            )
        ).scalar_one_or_none()
        if row is not None:
            organisation_name, organisation_kind = row.name, row.kind
    return Facts(
        court=court.name if court else "",
        case_number=dispute.number,
        agreement_number=agreement_number,
        dispute_type=dispute.dispute_type,
        summary=dispute.summary,
        requests=dispute.requests,
        claim_amount=dispute.claim_amount,
        parties=tuple(
            PartyFact(
                id=p.id,
                side=p.side.value,
                kind=p.kind,
                name=p.name,
                id_number=p.id_number,
                address=p.service_address,
            )
            for p in parties
        ),
        agents=tuple(AgentFact(a.name, a.party_id, a.authority) for a in agents),
        mediator=mediator_name,
        organisation=organisation_name,
        organisation_kind=organisation_kind,
    )


# sample data every court template must fill ------------------------------------------------

SAMPLE_FACTS = Facts(
    court="演示区人民法院",
    case_number="（2026）演0101诉前调1号",
    agreement_number="（2026）演0101诉前调1号-协议",
    dispute_type="loan",
    summary="申请人借给被申请人人民币五万元，约定半年归还，至今未还。",
    requests="请求被申请人归还借款五万元及利息。",
    claim_amount=Decimal("50000.00"),
    parties=(
        PartyFact(1, "applicant", "natural", "张三", "110101199003077571", "北京市东城区示例路1号"),
        PartyFact(2, "respondent", "legal", "示例科技有限公司", "91110000600037341L", ""),
        PartyFact(3, "third_party", "natural", "王五", "", ""),
    ),
    agents=(AgentFact("赵律师", 1, "special"),),
    mediator="郑调解",
    organisation="演示区人民调解委员会",
    organisation_kind="people",
    today=date(2026, 3, 1),
)
SAMPLE_TERMS: dict[str, Any] = {
    "title": "",
    "total": "12345.67",
    "payer": 2,
    "payee": 1,
    "instalments": [
        {"due": "2026-04-30", "amount": "6000.00"},
        {"due": "2026-05-31", "amount": "6345.67"},
    ],
    "deadline": "2026-05-31",
    "method": "银行转账至申请人指定账户",
    "costs_borne_by": "respondent",
    "costs": "案件受理费减半收取",
    "other_terms": ["双方就本纠纷再无其他争议。"],
}
SAMPLE_EMPTY_FACTS = Facts(
    court="演示区人民法院",
    case_number="（2026）演0101诉前调2号",
    agreement_number="（2026）演0101诉前调2号-协议",
    dispute_type="other",
    summary="",
    requests="",
    claim_amount=None,
    parties=(PartyFact(1, "applicant", "natural", "张三", "", ""),),
    today=date(2026, 3, 1),
)
EMPTY_TERMS: dict[str, Any] = {}


# the sandbox --------------------------------------------------------------------------------


def _environment(
    *, autoescape: bool, loader: jinja2.BaseLoader | None = None
) -> jinja2.Environment:
    env = ImmutableSandboxedEnvironment(
        autoescape=autoescape,
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(yuan=yuan, capital=capital, cn_date=cn_date, cn_number=cn_number)
    return env


TEXT_ENV = _environment(autoescape=False)  # agreement text: plain text, escaped in the layout
LAYOUT_ENV = _environment(autoescape=True, loader=jinja2.FileSystemLoader(PLATFORM_DIR))


@dataclass(frozen=True)
class Filled:
    title: str
    text: str


def _line_of(template: jinja2.Template | None, error: BaseException) -> int:
    """The template line an error happened on (the generated code's line mapped back)."""
    lineno = getattr(error, "lineno", None)
    if isinstance(lineno, int) and lineno > 0:
        return lineno
    traceback, generated = error.__traceback__, None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            generated = traceback.tb_lineno
        traceback = traceback.tb_next
    if template is None or generated is None:
        return 0
    return template.get_corresponding_lineno(generated)


def _detail(error: BaseException) -> str:
    message = str(getattr(error, "message", None) or error) or type(error).__name__
    return message.splitlines()[0][:200]


def compile_body(body: str) -> jinja2.Template:
    """The template compiled in the sandbox; :class:`Invalid` naming the line if it is not
    Jinja2."""
    try:
        return TEXT_ENV.from_string(body)
    except jinja2.TemplateSyntaxError as error:
        raise Invalid(BODY_ERROR, field="body", line=error.lineno, detail=_detail(error)) from None


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def fill(
    template: jinja2.Template, facts: Facts, terms: Mapping[str, Any], *, message: str = FILL_ERROR
) -> Filled:
    """The agreement's title and text from a compiled template; :class:`Invalid` naming the
    line where filling failed."""
    try:
        module = template.make_module(context(facts, terms))
        text = str(module)
        title = str(getattr(module, "title", "") or "").strip()
    except Exception as error:  # a court's template is code we did not write
        raise Invalid(
            message, field="body", line=_line_of(template, error), detail=_detail(error)
        ) from None
    return Filled(title=(title or DEFAULT_TITLE)[:MAX_TITLE], text=_tidy(text))


def check_body(body: str) -> Filled:
    """Compile a template and fill the sample data with and without terms; the filled
    sample (with terms), or :class:`Invalid` naming the line."""
    template = compile_body(body)
    fill(template, SAMPLE_EMPTY_FACTS, EMPTY_TERMS, message=SAMPLE_ERROR)
    fill(template, SAMPLE_FACTS, {**EMPTY_TERMS}, message=SAMPLE_ERROR)
    return fill(template, SAMPLE_FACTS, SAMPLE_TERMS, message=SAMPLE_ERROR)


# the platform's and the court's templates -------------------------------------------------------


def platform_body(dispute_type: str) -> str:
    """The platform's template for a dispute type (the generic one where it has none)."""
    for name in (dispute_type, GENERIC):
        path = PLATFORM_DIR / f"{name}{SUFFIX}"
        if name.isidentifier() and path.is_file():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError(f"no platform agreement template for {dispute_type!r}")


def dispute_type_of(value: str) -> DisputeType:
    try:
        return DisputeType(value)
    except ValueError:
        raise NotFound(N_("There is no such dispute type.")) from None


@dataclass(frozen=True)
class Resolved:
    """The template in force for a court and a dispute type."""

    dispute_type: str
    source: str  # platform, court
    body: str
    version: int  # the court's row's version; 0 for the platform's
    title: str
    updated_at: datetime | None = None
    updated_by: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()


def _platform(dispute_type: str) -> Resolved:
    body = platform_body(dispute_type)
    return Resolved(dispute_type, "platform", body, 0, _title_of(body))


def _title_of(body: str) -> str:
    try:
        return check_body(body).title
    except Invalid:
        return DEFAULT_TITLE


async def _row(db: AsyncSession, court_id: int, dispute_type: str) -> AgreementTemplate | None:
    found: AgreementTemplate | None = await db.scalar(
        select(AgreementTemplate).where(
            AgreementTemplate.court_id == court_id,
            AgreementTemplate.dispute_type == dispute_type,
        )
    )
    return found


async def _resolved(db: AsyncSession, row: AgreementTemplate) -> Resolved:
    by = await db.get(User, row.updated_by_id) if row.updated_by_id else None
    return Resolved(
        row.dispute_type, "court", row.body, row.version, row.title, row.updated_at,
        by.name if by else "",
    )  # fmt: skip


async def resolve(db: AsyncSession, court_id: int, dispute_type: str) -> Resolved:
    """The court's own template for the type if it has one, else the platform's."""
    row = await _row(db, court_id, dispute_type)
    return await _resolved(db, row) if row is not None else _platform(dispute_type)


# the court admin's page -------------------------------------------------------------------------


def _court_of(principal: Principal) -> int:
    if principal.role is not Role.COURT_ADMIN or principal.court_id is None:
        raise Forbidden(
            N_("Only the court's administrator may change agreement templates.")
        ).audited("access.denied", permission="agreement_templates.manage")
    return principal.court_id


async def list_templates(db: AsyncSession, principal: Principal) -> list[Resolved]:
    """Every dispute type with the template in force for the caller's court."""
    court_id = _court_of(principal)
    rows = {
        row.dispute_type: row
        for row in await db.scalars(
            select(AgreementTemplate).where(AgreementTemplate.court_id == court_id)
        )
    }
    return [
        await _resolved(db, rows[kind.value]) if kind.value in rows else _platform(kind.value)
        for kind in DisputeType
    ]


async def template_for(db: AsyncSession, principal: Principal, dispute_type: str) -> Resolved:
    court_id = _court_of(principal)
    return await resolve(db, court_id, dispute_type_of(dispute_type).value)


def default_for(dispute_type: str) -> Resolved:
    return _platform(dispute_type_of(dispute_type).value)


async def save_template(
    db: AsyncSession,
    principal: Principal,
    dispute_type: str,
    body: str,
    base_version: int | None = None,
) -> Resolved:
    """Keep a court's own template for a dispute type: checked against sample data first,
    its version one more than before, audited. ``base_version`` (the version the admin
    edited) guards against overwriting someone else's save."""
    court_id = _court_of(principal)
    kind = dispute_type_of(dispute_type).value
    body = body.replace("\r\n", "\n")
    if not body.strip():
        raise Invalid(N_("This field is required: %(field)s."), field="body")
    if len(body) > MAX_BODY:
        raise Invalid(N_("This field is not valid: %(field)s."), field="body")
    filled = check_body(body)
    row = await db.scalar(
        select(AgreementTemplate)
        .where(AgreementTemplate.court_id == court_id, AgreementTemplate.dispute_type == kind)
        .with_for_update()
    )
    current = row.version if row is not None else 0
    if base_version is not None and base_version != current:
        raise Conflict(
            N_(
                "Someone else saved this template meanwhile (version %(version)s). Your text is "
                "still here: reload, then apply your changes again."
            ),
            version=current,
        )
    now = datetime.now(UTC)
    if row is None:
        row = AgreementTemplate(court_id=court_id, dispute_type=kind, version=1)
        db.add(row)
    else:
        row.version = current + 1
    row.title, row.body = filled.title, body
    row.updated_by_id, row.updated_at = principal.user_id, now
    await db.flush()
    resolved = await _resolved(db, row)
    await audit.append(
        db,
        AuditEntry(
            "agreement_template.saved",
            principal.actor(),
            "agreement_template",
            row.id,
            details={
                "court_id": court_id,
                "dispute_type": kind,
                "version": row.version,
                "title": row.title,
                "sha256": resolved.sha256,
            },
        ),
    )
    return resolved


async def revert_template(db: AsyncSession, principal: Principal, dispute_type: str) -> Resolved:
    """Drop the court's own template: the platform's is used again (audited)."""
    court_id = _court_of(principal)
    kind = dispute_type_of(dispute_type).value
    row = await _row(db, court_id, kind)
    if row is not None:
        details = {"court_id": court_id, "dispute_type": kind, "version": row.version}
        object_id = row.id
        await db.delete(row)
        await db.flush()
        await audit.append(
            db,
            AuditEntry(
                "agreement_template.reverted",
                principal.actor(),
                "agreement_template",
                object_id,
                details=details,
            ),
        )
    return _platform(kind)


def preview(principal: Principal, body: str) -> Filled:
    """A template filled with the sample data, without keeping it."""
    _court_of(principal)
    return check_body(body.replace("\r\n", "\n"))
