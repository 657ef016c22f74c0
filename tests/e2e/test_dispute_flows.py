"""Disputes driven through the pages by everyone who works on them, each in their own browser.

The demo court is migrated and seeded into a fresh data folder and served on a free port
(``serve --demo``, so that parties read their one-time codes from /outbox).  Then:

1. 王五 applies online (draft saved, resumed, submitted); the triage officer accepts the
   triage and assigns 陈调解; the respondent, who had no account, opens the link the court
   sent him; the mediator accepts from the work queue; the respondent consents on his
   page; the mediator schedules, opens and closes a session and records the failure;
   王五 chooses filing; the clerk registers the case from the filing queue.
2. On the demo loan dispute 郑调解 opens and closes the scheduled session and records the
   agreement; both parties are told the agreement is being prepared for signing.

At each stage every role's dispute page must show the right next step: the plain-Chinese
hint, and only the action forms that role may use.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from server.demo import DEMO_PASSWORD
from server.domain.identity import check_character
from tests.e2e.processes import kill_group, stop_group
from tests.e2e.test_first_command import (
    CHROMIUM_ARGS,
    CODE,
    HOST,
    REPO_ROOT,
    STOP_SECONDS,
    DemoLogin,
    free_port,
    log_in_as_staff,
    new_context,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

STARTUP_SECONDS = 60.0
COURT_ZONE = ZoneInfo("Asia/Shanghai")
NUMBER = re.compile(r"（\d{4}）演0101诉前调\d+号")
WORKING_DAYS_LEFT = re.compile(r"剩余 \d+ 个工作日")

# the demo's people
WANG = ("王五", "13800000003", "110101199208150031")  # the demo's own 王五 and his ID
ZHANG_PHONE = "13800000001"
LI_PHONE = "13800000002"
TRIAGE_OFFICER = DemoLogin("triage_officer", "吴分流", "fenliu", DEMO_PASSWORD)
MEDIATOR = DemoLogin("mediator", "郑调解", "tiaojie", DEMO_PASSWORD)
MEDIATOR3 = DemoLogin("mediator", "陈调解", "tiaojie3", DEMO_PASSWORD)
CLERK = DemoLogin("clerk", "卫书记员", "shujiyuan", DEMO_PASSWORD)
DEMO_LOAN = 1

# the action forms of the dispute page (data-action), by who may use them
MEDIATOR_FORMS = frozenset(
    {
        "accept_assignment",
        "decline_assignment",
        "declare_conflict",
        "schedule_session",
        "open_session",
        "close_session",
        "extend_period",
        "record_agreement",
        "record_partial_agreement",
        "record_failure",
        "record_all_signatures",
        "mark_respondent_unreachable",
    }
)
COURT_FORMS = frozenset(
    {
        "accept_triage",
        "override_triage",
        "route_to_filing",
        "choose_mediator_jointly",
        "assign_mediator",
        "register_case",
        "record_judgment",
        "confirm_agreement",
        "reject_confirmation",
        "serve_documents",
        "close_dispute",
    }
)
APPLICANT_FORMS = frozenset(
    {"withdraw_application", "request_replacement", "choose_filing", "decline_filing"}
)
RESPONDENT_ANSWERS = frozenset({"record_respondent_consent", "record_respondent_refusal"})
NOT_FOR_PARTIES = MEDIATOR_FORMS | COURT_FORMS
ONLY_THE_APPLICANT = frozenset(
    {"withdraw_application", "choose_filing", "decline_filing", "submit_application"}
)


def resident_id(first17: str) -> str:
    """A mainland resident ID with a valid check character."""
    return first17 + check_character(first17)


# a respondent with no account yet: the court's invitation gives him one
RESPONDENT = ("孙七", "13700000008", resident_id("11010219880521003"))


def court_time(days: int, hour: int) -> datetime:
    """``days`` from now at ``hour`` o'clock, in the court's time zone."""
    day = datetime.now(COURT_ZONE) + timedelta(days=days)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


# --- the server --------------------------------------------------------------------------


@dataclass
class DemoServer:
    """``python -m server serve --demo`` in its own process group."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict, repr=False)
    port: int = 0

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        """SIGTERM the server; its exit status, or None if it did not exit in time."""
        return stop_group(self.process, STOP_SECONDS)

    def kill(self) -> None:
        kill_group(self.process, STOP_SECONDS)

    def restart(self) -> None:
        """The same server again on the same port and data, after it died."""
        self.process = launch_server(self.env, self.port, self.log).process


def _yizhan(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"yizhan {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def _wait_until_serving(server: DemoServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            pytest.fail(
                f"the server exited with status {server.process.returncode} while starting:\n"
                f"{server.output()}"
            )
        try:
            with urllib.request.urlopen(server.url + "login", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not answer within {timeout:.0f} s:\n{server.output()}")
        time.sleep(0.2)


def launch_server(env: dict[str, str], port: int, log: Path) -> DemoServer:
    """``serve --demo`` on ``port`` with ``env``, its output appended to ``log``."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "serve",
                "--demo",
                "--host",
                HOST,
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DemoServer(f"http://{HOST}:{port}/", process, log, env, port)
    try:
        _wait_until_serving(server, STARTUP_SECONDS)
    except BaseException:
        server.kill()
        raise
    return server


@contextmanager
def serve_demo(folder: Path, **settings: str) -> Iterator[DemoServer]:
    """The demo court, migrated and seeded into ``folder``, served on a free port; extra
    ``YIZHAN_*`` settings (e.g. ``YIZHAN_ASR_MODEL="tiny.en"``) go to every command."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")},
        "YIZHAN_DATA_DIR": str(folder / "data"),
        "YIZHAN_LOG_FORMAT": "text",
        "YIZHAN_LOGIN_SLOWDOWN_SECONDS": "0",
        **settings,
    }
    _yizhan(env, "migrate")
    _yizhan(env, "demo")
    server = launch_server(env, free_port(), folder / "serve.log")
    try:
        yield server
    finally:
        server.kill()
        # shown by pytest only when the test failed
        print(f"--- output of the server ---\n{server.output()}")


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[DemoServer]:
    """The demo court on its embedded defaults."""
    with serve_demo(tmp_path) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the e2e tests need a `chromium` executable on PATH "
            "(Debian/Ubuntu: apt-get install chromium); none was found"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def stop(server: DemoServer) -> None:
    status = server.stop()
    assert status is not None, f"the server did not exit within {STOP_SECONDS:.0f} s of SIGTERM"
    assert status == 0, f"the server exited with status {status}:\n{server.output()}"


# --- people ------------------------------------------------------------------------------


def staff_page(browser: Browser, url: str, login: DemoLogin) -> Page:
    page = new_context(browser).new_page()
    log_in_as_staff(page, url, login)
    expect(page.locator(".welcome h1")).to_have_text(f"您好，{login.name}")
    return page


def party_page(browser: Browser, url: str, phone: str, name: str) -> Page:
    """A party logged in with the one-time code the demo outbox shows."""
    context = new_context(browser)
    page = context.new_page()
    page.goto(url)
    page.locator("#party-login summary").click()
    form = page.locator("#party-login form")
    form.locator("input[name=account]").fill(phone)
    form.locator("button[type=submit]").click()
    code_field = page.locator('form[action="/login/code/verify"] input[name=code]')
    expect(code_field).to_be_visible()

    outbox = context.new_page()
    outbox.goto(url + "outbox")
    row = outbox.locator("table.list tbody tr", has_text=phone).filter(has_text="验证码").first
    expect(row).to_be_visible()
    found = CODE.search(row.inner_text())
    assert found is not None, f"no 6-digit code in the outbox message: {row.inner_text()!r}"
    outbox.close()

    code_field.fill(found.group("code"))
    page.locator('form[action="/login/code/verify"] button[type=submit]').click()
    expect(page).to_have_url(url)
    expect(page.locator(".welcome h1")).to_have_text(f"您好，{name}")
    return page


def outbox_link(page: Page, url: str, phone: str) -> str:
    """The newest invitation link the demo outbox shows for phone, read in a new tab."""
    outbox = page.context.new_page()
    try:
        outbox.goto(url + "outbox")
        row = outbox.locator("table.list tbody tr", has_text=phone).filter(has_text="/invite/")
        expect(row.first).to_be_visible()
        found = re.search(r"https?://\S+/invite/\S+", row.first.inner_text())
        assert found is not None, row.first.inner_text()
        return found.group(0)
    finally:
        outbox.close()


# --- the dispute page --------------------------------------------------------------------


def open_dispute(page: Page, url: str, dispute_id: int) -> None:
    page.goto(f"{url}disputes/{dispute_id}")
    expect(page.locator("#next-steps")).to_be_visible()


def actions(page: Page) -> set[str]:
    """The action forms the page offers in "what to do next"."""
    keys: list[str] = page.locator("#next-steps details[data-action]").evaluate_all(
        "steps => steps.map(step => step.dataset.action)"
    )
    return set(keys)


def expect_status(page: Page, status: str, label: str) -> None:
    expect(page.locator("#status")).to_have_attribute("data-status", status)
    expect(page.locator("#status")).to_have_text(label)


def expect_hint(page: Page, kind: str, text: str | re.Pattern[str]) -> None:
    expect(page.locator("#next-steps")).to_have_attribute("data-hint", kind)
    expect(page.locator("#next-step-hint")).to_have_text(text)


def expect_offers(page: Page, wanted: set[str], forbidden: frozenset[str] = frozenset()) -> None:
    offered = actions(page)
    assert wanted <= offered, f"{page.url}: missing {wanted - offered}; offered {offered}"
    assert not offered & forbidden, f"{page.url}: must not offer {offered & forbidden}"


def expect_party_view(page: Page, hint: str | re.Pattern[str], kind: str = "wait") -> None:
    """A party's page: a plain-words hint, none of the staff's forms or workings."""
    expect_hint(page, kind, hint)
    expect_offers(page, set(), NOT_FOR_PARTIES)
    expect(page.locator("#triage")).to_have_count(0)
    expect(page.locator("#filing-package")).to_have_count(0)


def act(page: Page, key: str, label: str, fill: Callable[[Locator], None] | None = None) -> None:
    """Fill in and send one action form; the page must come back saying it was done."""
    step = page.locator(f'#next-steps details[data-action="{key}"]')
    expect(step).to_have_count(1)
    expect(step.locator("summary")).to_have_text(label)
    if step.get_attribute("open") is None:
        step.locator("summary").click()
    form = step.locator("form")
    if fill is not None:
        fill(form)
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"[?&](done|error)="))
    if "error=" in page.url:
        pytest.fail(f"{key} was refused: {page.locator('#next-steps .alert').inner_text()}")
    expect(page).to_have_url(re.compile(rf"[?&]done={key}(#|$)"))
    expect(page.locator("#next-steps p.ok")).to_have_text(f"已完成：{label}。")


def timeline(page: Page) -> list[tuple[str, str]]:
    """(event, who) for each row of the dispute page's timeline, oldest first."""
    rows: list[list[str]] = page.locator("#timeline tbody tr").evaluate_all(
        "rows => rows.map(row => [row.dataset.event, row.cells[1].innerText])"
    )
    return [(event, " ".join(who.split())) for event, who in rows]


def timeline_row(page: Page, event: str) -> Locator:
    return page.locator(f'#timeline tbody tr[data-event="{event}"]').last


def queue_row(page: Page, url: str, dispute_id: int) -> Locator:
    page.goto(url + "queue")
    row = page.locator(f'table.queue tr[data-dispute="{dispute_id}"]')
    expect(row).to_be_visible()
    return row


def screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=path, full_page=True)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG"
    assert len(data) > 10_000, f"the screenshot is suspiciously small ({len(data)} bytes)"


# --- 1. application -> triage -> assignment -> session -> failure -> filing ----------------


def test_an_online_application_fails_in_mediation_and_is_filed_as_a_case(
    demo_server: DemoServer, browser: Browser, tmp_path: Path
) -> None:
    url = demo_server.url
    name, phone, id_number = WANG
    applicant = party_page(browser, url, phone, name)

    # --- the online application: a draft saved, resumed and submitted ---------------------
    applicant.locator("nav").get_by_role("link", name="申请调解").click()
    expect(applicant).to_have_url(url + "applications/new")
    form = applicant.locator("#application-form")
    expect(form.locator('input[name="applicant.name"]')).to_have_value(name)
    form.locator("select[name=dispute_type]").select_option(label="民间借贷纠纷")
    form.locator("input[name=claim_amount]").fill("30000")
    summary = "申请人于今年三月借给被申请人三万元，约定两个月归还，至今未还。"
    form.locator("textarea[name=summary]").fill(summary)
    form.locator("textarea[name=requests]").fill("请求被申请人归还借款三万元。")
    form.locator('select[name="applicant.kind"]').select_option(label="自然人")
    form.locator('input[name="applicant.id_number"]').fill(id_number)
    form.locator('input[name="applicant.phone"]').fill(phone)
    form.locator('input[name="applicant.service_address"]').fill("wangwu@example.cn")
    respondent_name, respondent_phone, respondent_id = RESPONDENT
    form.locator('input[name="respondents.0.name"]').fill(respondent_name)
    form.locator('input[name="respondents.0.id_number"]').fill(respondent_id)
    form.locator('input[name="respondents.0.phone"]').fill(respondent_phone)
    form.locator('input[name="respondents.0.service_address"]').fill("北京市西城区某路2号")
    form.get_by_role("button", name="保存草稿").click()

    applicant.wait_for_url(re.compile(r"/applications/\d+/edit\?saved=1$"))
    found = re.search(r"/applications/(\d+)/edit", applicant.url)
    assert found is not None
    dispute_id = int(found.group(1))
    expect(applicant.locator("p.ok[role=status]")).to_have_text("草稿已保存。")
    heading = applicant.locator("h1").inner_text()
    numbered = NUMBER.search(heading)
    assert numbered is not None and "草稿" in heading, heading
    number = numbered.group(0)

    # later: from the home page back to the draft
    applicant.goto(url)
    row = applicant.locator(f'tr[data-dispute="{dispute_id}"]')
    expect(row).to_contain_text(number)
    expect(row).to_contain_text("草稿")
    expect(row.locator(".next-step")).to_contain_text("请在申请页面完善并提交您的申请。")
    row.get_by_role("link", name=number).click()
    expect_status(applicant, "draft", "草稿")
    expect_party_view(applicant, "请在申请页面完善并提交您的申请。", kind="act")
    applicant.get_by_role("link", name="打开申请").click()
    expect(applicant).to_have_url(f"{url}applications/{dispute_id}/edit")
    form = applicant.locator("#application-form")
    expect(form.locator("select[name=dispute_type]")).to_have_value("loan")
    expect(form.locator("input[name=claim_amount]")).to_have_value("30000.00")
    expect(form.locator("textarea[name=summary]")).to_have_value(summary)
    expect(form.locator('input[name="applicant.id_number"]')).to_have_value(id_number)
    expect(form.locator('input[name="respondents.0.name"]')).to_have_value(respondent_name)
    expect(form.locator('input[name="respondents.0.id_number"]')).to_have_value(respondent_id)
    form.get_by_label("我同意在线调解。").check()
    form.get_by_label("我同意通过上述地址以电子方式接收送达的文书。").check()
    form.get_by_role("button", name="提交申请").click()

    # submitted: the dispute page says the court has it
    expect(applicant).to_have_url(f"{url}disputes/{dispute_id}")
    expect(applicant.locator("h1")).to_have_text(number)
    expect_status(applicant, "triaged", "已分流")
    expect_party_view(applicant, "法院正在审查您的申请，您目前无需操作。")
    expect_offers(applicant, {"withdraw_application"}, RESPONDENT_ANSWERS)
    expect(applicant.locator("table.list", has_text="诉讼地位")).to_contain_text(respondent_name)

    # --- triage: the officer accepts the automatic result and assigns a mediator ----------
    officer = staff_page(browser, url, TRIAGE_OFFICER)
    row = queue_row(officer, url, dispute_id)
    expect(row).to_contain_text("已分流")
    expect(row).to_contain_text("法院指派调解员")
    expect(row).to_contain_text(WORKING_DAYS_LEFT)
    row.get_by_role("link", name=number).click()
    expect_status(officer, "triaged", "已分流")
    expect(officer.locator("#triage")).to_contain_text("繁简分值")
    expect_offers(
        officer,
        {"accept_triage", "override_triage", "route_to_filing"},
        MEDIATOR_FORMS | APPLICANT_FORMS,
    )
    act(officer, "accept_triage", "确认分流结果")
    expect_status(officer, "awaiting_mediator", "待确定调解员")
    expect_offers(officer, {"assign_mediator"}, MEDIATOR_FORMS | APPLICANT_FORMS)

    applicant.reload()
    expect_status(applicant, "awaiting_mediator", "待确定调解员")
    # within two working days the parties may choose a mediator together
    expect_party_view(
        applicant,
        "您可以与对方当事人共同选定调解员：请在下方提议。如未能在期限内达成一致，由法院指派。",
        kind="act",
    )
    expect_offers(applicant, {"propose_mediator"}, RESPONDENT_ANSWERS)

    # the court has asked the respondent: he follows the link it sent to his phone
    respondent = new_context(browser).new_page()
    respondent.goto(outbox_link(respondent, url, respondent_phone))
    expect(respondent).to_have_url(f"{url}disputes/{dispute_id}")
    expect(respondent.locator(".who")).to_contain_text(respondent_name)
    expect_status(respondent, "awaiting_mediator", "待确定调解员")
    respondent_asked = "法院询问您是否同意在线调解本纠纷，请在下方答复。"
    expect_party_view(respondent, respondent_asked, kind="act")
    expect_offers(respondent, set(RESPONDENT_ANSWERS), ONLY_THE_APPLICANT)

    mediators = officer.locator(
        '#next-steps details[data-action="assign_mediator"] select[name=mediator_id]'
    )
    # the roster puts those for loan disputes first; 陈调解 (family, labour) is among the others
    expect(mediators.locator('optgroup[label="擅长此类纠纷的调解员"]')).to_contain_text("郑调解")
    expect(mediators.locator('optgroup[label="其他调解员"]')).to_contain_text(MEDIATOR3.name)

    def choose_chen(form: Locator) -> None:
        form.locator("select[name=mediator_id]").select_option(
            label=f"{MEDIATOR3.name} · 演示区人民调解委员会"
        )

    act(officer, "assign_mediator", "指派调解员", choose_chen)
    expect_status(officer, "mediator_assigned", "已指派调解员")
    expect_hint(officer, "none", "您目前无需对该纠纷进行操作。")
    assert actions(officer) == set()
    expect(officer.locator("section.card", has_text="法院及调解工作人员")).to_contain_text(
        f"调解员: {MEDIATOR3.name}"
    )

    applicant.reload()
    expect_status(applicant, "mediator_assigned", "已指派调解员")
    expect_party_view(applicant, "调解员正在决定是否接受委派，您目前无需操作。")

    # --- the mediator finds it in the work queue, with the countdown, and accepts ---------
    mediator = staff_page(browser, url, MEDIATOR3)
    row = queue_row(mediator, url, dispute_id)
    expect(row).to_contain_text("已指派调解员")
    expect(row).to_contain_text("调解员答复是否接受委派")
    expect(row).to_contain_text(WORKING_DAYS_LEFT)
    row.get_by_role("link", name=number).click()
    expect_status(mediator, "mediator_assigned", "已指派调解员")
    expect_offers(
        mediator, {"accept_assignment", "decline_assignment"}, COURT_FORMS | APPLICANT_FORMS
    )
    act(mediator, "accept_assignment", "接受委派")
    expect_status(mediator, "mediating", "调解中")
    deadlines = mediator.locator("#deadlines")
    expect(deadlines).to_contain_text("被申请人答复是否同意调解")
    expect(deadlines).to_contain_text("调解期限届满")
    expect_offers(
        mediator,
        {"record_respondent_consent", "record_respondent_refusal", "schedule_session"},
        COURT_FORMS | APPLICANT_FORMS | {"accept_assignment"},
    )

    waiting_for_a_session = "正在等待调解员安排调解，届时您会收到附有链接的邀请。"
    applicant.reload()
    expect_status(applicant, "mediating", "调解中")
    expect_party_view(applicant, waiting_for_a_session)
    expect_offers(applicant, set(), RESPONDENT_ANSWERS)

    # --- the respondent consents on his own page --------------------------------------------
    respondent.reload()
    expect_status(respondent, "mediating", "调解中")
    expect_party_view(respondent, respondent_asked, kind="act")
    act(respondent, "record_respondent_consent", "我同意调解")
    expect_party_view(respondent, waiting_for_a_session)
    expect_offers(respondent, set(), RESPONDENT_ANSWERS | ONLY_THE_APPLICANT)
    mediator.reload()
    expect_offers(mediator, {"schedule_session"}, RESPONDENT_ANSWERS)
    expect(deadlines).not_to_contain_text("被申请人答复是否同意调解")

    # --- a session: scheduled, opened, closed ----------------------------------------------
    starts = court_time(3, 10)
    shown = starts.strftime("%Y-%m-%d %H:%M")
    act(
        mediator,
        "schedule_session",
        "安排调解场次",
        lambda form: form.locator("input[name=starts_at]").fill(starts.strftime("%Y-%m-%dT%H:%M")),
    )
    session = mediator.locator("#sessions > li").last
    expect(session).to_have_attribute("data-session-status", "scheduled")
    expect(session).to_contain_text(f"{shown} · 调解 · 已安排")
    expect(session).to_contain_text(f"申请人: {name} · 已邀请")
    expect(session).to_contain_text(f"被申请人: {respondent_name} · 已邀请")
    expect(session).to_contain_text(f"调解员: {MEDIATOR3.name} · 已邀请")
    expect_offers(mediator, {"open_session"}, frozenset({"close_session"}))

    for party in (applicant, respondent):
        party.reload()
        expect_party_view(
            party, f"您的下一场调解于 {shown} 开始，请打开我们发送给您的邀请中的链接进入。"
        )
    invitation = applicant.context.new_page()
    invitation.goto(url + "outbox")
    expect(
        invitation.locator("table.list tbody tr", has_text=phone).filter(has_text="/invite/")
    ).not_to_have_count(0)
    invitation.close()

    act(mediator, "open_session", "开始调解场次")
    expect(session).to_have_attribute("data-session-status", "open")
    expect(session).to_contain_text("进行中")
    expect_offers(mediator, {"close_session"}, frozenset({"open_session"}))
    act(mediator, "close_session", "结束调解场次")
    expect(session).to_have_attribute("data-session-status", "held")
    expect(session).to_contain_text("已结束")

    # --- failure, with the Art. 25 grounds and the mediator's report ------------------------
    report = "双方对还款期限分歧较大，经两次沟通仍难以达成一致。"
    conduct = "被申请人无故迟到四十分钟，增加了申请人的误工成本。"

    def failure(form: Locator) -> None:
        form.get_by_label("当事人分歧较大且难以达成调解协议").check()
        form.get_by_label("当事人一方明确表示不愿意继续调解").check()
        form.locator("textarea[name=report]").fill(report)
        form.locator("textarea[name=cost_increasing_conduct]").fill(conduct)

    act(mediator, "record_failure", "记录调解不成", failure)
    expect_status(mediator, "failed", "调解不成")
    expect_hint(mediator, "none", "您目前无需对该纠纷进行操作。")
    assert actions(mediator) == set()

    # --- the applicant is asked, in plain words, whether to file; chooses filing ----------
    applicant.goto(url)
    row = applicant.locator(f'tr[data-dispute="{dispute_id}"]')
    expect(row).to_contain_text("调解不成")
    expect(row.locator("ul.steps")).to_contain_text("选择立案")
    open_dispute(applicant, url, dispute_id)
    expect_status(applicant, "failed", "调解不成")
    expect_party_view(
        applicant, "调解未能达成协议，已经终结。请在下方选择是否申请法院立案。", kind="act"
    )
    expect_offers(applicant, {"choose_filing", "decline_filing"})
    expect(applicant.locator('#next-steps details[data-action="choose_filing"]')).to_have_attribute(
        "open", ""
    )
    respondent.reload()
    expect_party_view(respondent, "调解未能达成协议，已经终结。正在等待申请人决定是否申请立案。")
    expect_offers(respondent, set(), ONLY_THE_APPLICANT)
    act(applicant, "choose_filing", "选择立案")
    expect_status(applicant, "filing_pending", "已转立案")
    expect_party_view(applicant, "本纠纷已转入法院立案队列，正在等待书记员登记立案。")
    assert actions(applicant) == set()

    # --- the clerk registers the case from the filing queue ---------------------------------
    clerk = staff_page(browser, url, CLERK)
    row = queue_row(clerk, url, dispute_id)
    expect(row).to_contain_text("已转立案")
    row.get_by_role("link", name=number).click()
    expect_status(clerk, "filing_pending", "已转立案")
    package = clerk.locator("#filing-package")
    expect(package).to_contain_text(report)
    expect(package).to_contain_text(conduct)
    expect(package).to_contain_text("当事人一方明确表示不愿意继续调解")
    expect(package).to_contain_text(MEDIATOR3.name)
    expect_offers(clerk, {"register_case"}, MEDIATOR_FORMS | APPLICANT_FORMS)
    case_number = f"（{datetime.now(COURT_ZONE).year}）演0101民初88号"
    act(
        clerk,
        "register_case",
        "登记立案",
        lambda form: form.locator("input[name=case_number]").fill(case_number),
    )
    expect_status(clerk, "filed", "已立案")
    expect(clerk.locator("dl.facts").first).to_contain_text(case_number)

    # --- the applicant: registered, with the case number; the timeline names every actor --
    open_dispute(applicant, url, dispute_id)
    expect_status(applicant, "filed", "已立案")
    expect(applicant.locator("dl.facts").first).to_contain_text(case_number)
    expect_party_view(
        applicant, f"已登记立案，案号 {case_number}，将进入速裁审理，请等待法院通知。"
    )
    applicant_who = f"{name} 当事人"
    officer_who = f"{TRIAGE_OFFICER.name} 程序分流员"
    mediator_who = f"{MEDIATOR3.name} 调解员"
    assert timeline(applicant) == [
        ("draft_saved", applicant_who),
        ("application_submitted", applicant_who),
        ("dispute_triaged", "平台 系统"),
        ("triage_accepted", officer_who),
        ("mediator_assigned", officer_who),
        ("assignment_accepted", mediator_who),
        ("respondent_consented", f"{respondent_name} 当事人"),
        ("session_scheduled", mediator_who),
        ("session_opened", mediator_who),
        ("session_closed", mediator_who),
        ("mediation_failed", mediator_who),
        ("filing_chosen", applicant_who),
        ("case_registered", f"{CLERK.name} 书记员"),
    ]
    expect(timeline_row(applicant, "mediator_assigned")).to_contain_text(
        f"调解员: {MEDIATOR3.name}"
    )
    expect(timeline_row(applicant, "session_scheduled")).to_contain_text(f"开始时间: {shown}")
    failed = timeline_row(applicant, "mediation_failed")
    expect(failed).to_contain_text("当事人分歧较大且难以达成调解协议")
    expect(failed).to_contain_text(report)
    expect(timeline_row(applicant, "case_registered")).to_contain_text(f"案号: {case_number}")

    screenshot(applicant, tmp_path / "failure-and-filing.png")
    for page in (applicant, respondent, officer, mediator, clerk):
        page.context.close()
    stop(demo_server)


# --- 2. the demo loan dispute -> agreement reached ------------------------------------------


def test_the_demo_loan_dispute_reaches_an_agreement(
    demo_server: DemoServer, browser: Browser, tmp_path: Path
) -> None:
    url = demo_server.url
    mediator = staff_page(browser, url, MEDIATOR)
    applicant = party_page(browser, url, ZHANG_PHONE, "张三")
    respondent = party_page(browser, url, LI_PHONE, "李四")

    row = queue_row(mediator, url, DEMO_LOAN)
    expect(row).to_contain_text("调解中")
    expect(row).to_contain_text("调解期限届满")
    expect(row).to_contain_text(WORKING_DAYS_LEFT)
    row.locator("a").first.click()
    expect_status(mediator, "mediating", "调解中")
    expect_offers(
        mediator,
        {"open_session", "schedule_session", "record_agreement", "record_failure"},
        COURT_FORMS | APPLICANT_FORMS | RESPONDENT_ANSWERS,
    )
    session = mediator.locator("#sessions > li").first
    expect(session).to_have_attribute("data-session-status", "scheduled")

    for party in (applicant, respondent):
        open_dispute(party, url, DEMO_LOAN)
        expect_status(party, "mediating", "调解中")
        expect_party_view(party, re.compile(r"^您的下一场调解于 \S+ \S+ 开始"))

    act(mediator, "open_session", "开始调解场次")
    expect(session).to_have_attribute("data-session-status", "open")
    act(mediator, "close_session", "结束调解场次")
    expect(session).to_have_attribute("data-session-status", "held")
    terms = "被申请人于下月底前归还借款五万元，申请人放弃利息主张。"
    act(
        mediator,
        "record_agreement",
        "记录调解协议",
        lambda form: form.locator("textarea[name=summary]").fill(terms),
    )
    expect_status(mediator, "agreement_reached", "已达成协议，待签署")
    # the signatures are collected on the agreement's own pages, never as a bare step
    expect_offers(
        mediator,
        set(),
        frozenset(
            {
                "open_session",
                "close_session",
                "schedule_session",
                "record_agreement",
                "record_all_signatures",
            }
        ),
    )
    expect(mediator.locator('#next-steps a[data-action="agreement"]')).to_be_visible()
    agreed = timeline_row(mediator, "agreement_reached")
    expect(agreed).to_contain_text(f"{MEDIATOR.name} 调解员")
    expect(agreed).to_contain_text(terms)
    assert [event for event, _ in timeline(mediator)][-3:] == [
        "session_opened",
        "session_closed",
        "agreement_reached",
    ]

    # the parties: the agreement is being prepared for them to sign
    for party in (applicant, respondent):
        open_dispute(party, url, DEMO_LOAN)
        expect_status(party, "agreement_reached", "已达成协议，待签署")
        expect_party_view(party, "调解协议正在准备签署，届时会通知您签署。")
        assert actions(party) == set()

    # the mediator's queue and the party's home page follow
    row = queue_row(mediator, url, DEMO_LOAN)
    expect(row).to_contain_text("已达成协议，待签署")
    tabs = mediator.locator("nav.tabs")
    expect(tabs).to_contain_text("调解中 (0)")
    expect(tabs).to_contain_text("已达成协议，待签署 (1)")
    applicant.goto(url)
    home_row = applicant.locator(f'tr[data-dispute="{DEMO_LOAN}"]')
    expect(home_row).to_contain_text("已达成协议，待签署")
    expect(home_row.locator("ul.steps")).to_have_count(0)

    open_dispute(applicant, url, DEMO_LOAN)
    screenshot(applicant, tmp_path / "agreement.png")
    for page in (mediator, applicant, respondent):
        page.context.close()
    stop(demo_server)
