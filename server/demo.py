"""The demo court: an account for each role, a mediator roster and two sample disputes.

Seeding is idempotent: run twice, it finds the court and only prints the logins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import SYSTEM, AuditEntry
from server.db.models import (
    CaseSession,
    Consent,
    Court,
    Dispute,
    DisputeAgent,
    DisputeParty,
    DisputeStaff,
    MediationOrganisation,
    Mediator,
    User,
)
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar
from server.domain.disputes import DisputeStatus, DisputeType
from server.domain.roles import DisputeRole, Role
from server.services import workflow
from server.services.users import NewUser, create_user

DEMO_COURT_CODE = "DEMO"
DEMO_PASSWORD = "Yizhan-demo-2026"  # noqa: S105 (printed for the demo court only)


@dataclass(frozen=True)
class DemoAccount:
    key: str
    role: Role
    name: str
    username: str | None = None
    phone: str | None = None


ACCOUNTS = (
    DemoAccount("admin", Role.COURT_ADMIN, "周管理", "admin", "13900000001"),
    DemoAccount("triage", Role.TRIAGE_OFFICER, "吴分流", "fenliu", "13900000002"),
    DemoAccount("mediator", Role.MEDIATOR, "郑调解", "tiaojie", "13900000003"),
    DemoAccount("mediator2", Role.MEDIATOR, "冯调解", "tiaojie2", "13900000004"),
    DemoAccount("mediator3", Role.MEDIATOR, "陈调解", "tiaojie3", "13900000005"),
    DemoAccount("judge", Role.JUDGE, "褚法官", "faguan", "13900000006"),
    DemoAccount("clerk", Role.CLERK, "卫书记员", "shujiyuan", "13900000007"),
    DemoAccount("applicant", Role.PARTY, "张三", phone="13800000001"),
    DemoAccount("respondent", Role.PARTY, "李四", phone="13800000002"),
    DemoAccount("applicant2", Role.PARTY, "王五", phone="13800000003"),
    DemoAccount("agent", Role.AGENT, "蒋律师", phone="13800000005"),
)


@dataclass(frozen=True)
class DemoLogin:
    role: Role
    name: str
    login: str
    password: str | None  # None: the account logs in with a one-time code


async def seed(db: AsyncSession) -> tuple[bool, list[DemoLogin]]:
    """Create the demo court if it is missing; return (created, logins)."""
    court = await db.scalar(select(Court).where(Court.code == DEMO_COURT_CODE))
    created = court is None
    if court is None:
        await _create(db)
    return created, logins()


def logins() -> list[DemoLogin]:
    result = []
    for account in ACCOUNTS:
        if account.role.uses_password:
            result.append(
                DemoLogin(account.role, account.name, account.username or "", DEMO_PASSWORD)
            )
        else:
            result.append(DemoLogin(account.role, account.name, account.phone or "", None))
    return result


async def _create(db: AsyncSession) -> None:
    court = Court(
        code=DEMO_COURT_CODE,
        name="演示区人民法院",
        name_en="Demo District People's Court",
        case_code="演0101",
    )
    db.add(court)
    await db.flush()
    await audit.append(
        db, AuditEntry("court.created", SYSTEM, "court", court.id, details={"demo": True})
    )
    users: dict[str, User] = {}
    for account in ACCOUNTS:
        users[account.key] = await create_user(
            db,
            NewUser(
                role=account.role,
                name=account.name,
                phone=account.phone,
                username=account.username,
                password=DEMO_PASSWORD if account.role.uses_password else None,
                court_id=court.id if account.role.is_staff else None,
            ),
            SYSTEM,
        )
    people = MediationOrganisation(court_id=court.id, name="演示区人民调解委员会", kind="people")
    traffic = MediationOrganisation(
        court_id=court.id, name="道路交通事故纠纷调解中心", kind="industry"
    )
    db.add_all([people, traffic])
    await db.flush()
    db.add_all(
        [
            Mediator(
                user_id=users["mediator"].id,
                organisation_id=people.id,
                specialities=["民间借贷", "买卖合同"],
                case_types=["loan", "sale", "consumer"],
                languages=["zh", "en"],
            ),
            Mediator(
                user_id=users["mediator2"].id,
                organisation_id=traffic.id,
                specialities=["交通事故", "保险理赔"],
                case_types=["traffic"],
                languages=["zh"],
            ),
            Mediator(
                user_id=users["mediator3"].id,
                organisation_id=people.id,
                specialities=["婚姻家庭", "劳动争议"],
                case_types=["family", "labour"],
                languages=["zh"],
            ),
        ]
    )
    now = datetime.now(UTC)
    year = now.year

    loan = Dispute(
        court_id=court.id,
        number=f"（{year}）{court.case_code}诉前调1号",
        dispute_type=DisputeType.LOAN.value,
        status=DisputeStatus.DRAFT.value,
        claim_amount=Decimal("50000.00"),
        summary="申请人于去年借给被申请人人民币五万元，约定半年归还，至今未还。",
        requests="请求被申请人归还借款五万元及利息。",
        created_by_id=users["applicant"].id,
    )
    traffic_case = Dispute(
        court_id=court.id,
        number=f"（{year}）{court.case_code}诉前调2号",
        dispute_type=DisputeType.TRAFFIC.value,
        status=DisputeStatus.DRAFT.value,
        claim_amount=Decimal("128000.00"),
        summary="两车在路口相撞，申请人受伤住院，双方对责任比例和赔偿数额有争议。",
        requests="请求赔偿医疗费、误工费、护理费等共计十二万八千元。",
        created_by_id=users["agent"].id,
    )
    db.add_all([loan, traffic_case])
    await db.flush()
    zhang = DisputeParty(
        dispute_id=loan.id,
        side=DisputeRole.APPLICANT,
        name="张三",
        id_number="110101199003077571",
        phone="13800000001",
        user_id=users["applicant"].id,
    )
    li = DisputeParty(
        dispute_id=loan.id,
        side=DisputeRole.RESPONDENT,
        name="李四",
        id_number="110101198512120019",
        phone="13800000002",
        user_id=users["respondent"].id,
    )
    wang = DisputeParty(
        dispute_id=traffic_case.id,
        side=DisputeRole.APPLICANT,
        name="王五",
        id_number="110101199208150031",
        phone="13800000003",
        user_id=users["applicant2"].id,
    )
    insurer = DisputeParty(
        dispute_id=traffic_case.id,
        side=DisputeRole.RESPONDENT,
        kind="legal",
        name="演示财产保险股份有限公司",
        id_number="91110000600037341L",
    )
    db.add_all([zhang, li, wang, insurer])
    await db.flush()
    db.add(
        DisputeAgent(
            dispute_id=traffic_case.id,
            party_id=wang.id,
            name="蒋律师",
            phone="13800000005",
            authority="special",
            user_id=users["agent"].id,
        )
    )
    db.add_all(
        [
            DisputeStaff(dispute_id=loan.id, user_id=users["judge"].id, role=DisputeRole.JUDGE),
            DisputeStaff(dispute_id=loan.id, user_id=users["clerk"].id, role=DisputeRole.CLERK),
        ]
    )
    for party in (zhang, li, wang):
        for matter in ("online_handling", "electronic_service"):
            db.add(
                Consent(
                    dispute_id=party.dispute_id,
                    party_id=party.id,
                    stage="mediation",
                    matter=matter,
                    granted=True,
                    recorded_by_id=party.user_id,
                )
            )
    for dispute in (loan, traffic_case):
        await audit.append(
            db,
            AuditEntry(
                "dispute.created",
                SYSTEM,
                "dispute",
                dispute.id,
                dispute_id=dispute.id,
                details={"after": {"status": dispute.status, "demo": True}},
            ),
        )
    await db.flush()
    # both disputes go through the real workflow, so their state is one it can reach
    calendar = WorkingCalendar()
    consent = cmd.SubmitApplication(online_mediation_consent=True, electronic_service_consent=True)
    for dispute in (loan, traffic_case):
        await workflow.execute(db, None, dispute.id, consent, calendar=calendar)
        await workflow.run_triage(db, dispute.id, calendar=calendar)
    session = CaseSession(
        dispute_id=loan.id,
        kind="mediation",
        status="scheduled",
        scheduled_start=(now + timedelta(days=1)).replace(
            hour=2, minute=0, second=0, microsecond=0
        ),
        host_user_id=users["mediator"].id,
    )
    db.add(session)
    await db.flush()
    mediator = users["mediator"].id
    for command in (
        cmd.AcceptTriage(),
        cmd.AssignMediator(mediator_id=mediator),
        cmd.AcceptAssignment(mediator_id=mediator),
        cmd.RecordRespondentConsent(),
        cmd.ScheduleSession(session_id=session.id, starts_at=session.scheduled_start),
    ):
        await workflow.execute(db, None, loan.id, command, calendar=calendar)
