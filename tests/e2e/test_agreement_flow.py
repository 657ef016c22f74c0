"""From a mediation agreement to its electronic service, in headless Chromium.

The demo court is served with a real SMTP server (aiosmtpd on 127.0.0.1) for the email
channel of electronic service.  On the demo loan dispute:

1. 郑调解 starts the agreement from the court's template, fills the terms (payer, payee,
   total, two instalments, how it is paid, the costs), saves a new version and puts it up
   for signing: every signer is shown the same PDF hash.
2. 张三 and 李四 each draw their signature with the mouse on their own signing page and
   sign; 郑调解 confirms his identity with a new one-time code and signs last.  The
   agreement takes effect: the page links the signed PDF with its SHA-256; the PDF has
   the signatures page (the drawn images, every signer's name, the hash they signed) and
   the platform's PAdES signature checks out against the root in the server's data dir.
3. Both parties apply for judicial confirmation; 褚法官 takes the application and, after
   a new one-time code, confirms the agreement.  The ruling is served on both parties:
   to their platform inbox, and to 张三's email address on record through the SMTP server
   (the message carries the link to the inbox item).
4. 张三 opens the item in his inbox, downloads the ruling and acknowledges receipt.
5. 卫书记员's page of the dispute's services shows both services complete, the effective
   channel and 张三's steps; a new service certificate, downloaded with the clerk's
   session, shows every step (sent, reached, opened, downloaded, acknowledged) and the
   channel that made the service effective.

Set up outside the pages: the demo parties have no email address and no page lets a party
give one for an existing dispute (only the application form does), so 张三's address is
written into the database before any page is opened.  Everyone reads the pages in English
(``/lang/en``), so that the assertions do not depend on the Chinese catalog.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import pypdf
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from server.demo import DEMO_PASSWORD
from server.signing.keys import FOLDER, SIGNING_CERT, read_roots
from server.signing.pades import Verdict, verify_pdf
from tests.e2e.test_dispute_flows import (
    CLERK,
    DEMO_LOAN,
    LI_PHONE,
    MEDIATOR,
    ZHANG_PHONE,
    DemoServer,
    party_page,
    serve_demo,
    staff_page,
)
from tests.e2e.test_first_command import CHROMIUM_ARGS, CODE, HOST, DemoLogin, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

T = TypeVar("T")

JUDGE = DemoLogin("judge", "褚法官", "faguan", DEMO_PASSWORD)
MEDIATOR_PHONE = "13900000003"
JUDGE_PHONE = "13900000006"
ZHANG_EMAIL = "zhangsan@example.com"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
# steps that make PDFs (WeasyPrint, pyHanko) or wait for the job runner
SLOW_MS = 90_000
JOB_SECONDS = 90.0


# --- the SMTP server -------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for rcpt, message in list(self.messages) if address in rcpt]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname=HOST, port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def court(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> Iterator[DemoServer]:
    """The demo court, serving by email through the test's SMTP server."""
    _, port = mailbox
    with serve_demo(
        tmp_path,
        YIZHAN_CAPTIONS="false",
        YIZHAN_SMTP_HOST=HOST,
        YIZHAN_SMTP_PORT=str(port),
        YIZHAN_SERVICE_RETRY_SECONDS="0.5",
    ) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("the e2e tests need a `chromium` executable on PATH; none was found")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def give_email(data_dir: Path, phone: str, email: str) -> None:
    """The party's email address on the demo dispute (no page sets it for an existing
    dispute; an application gives it when it is made)."""
    db = sqlite3.connect(data_dir / "yizhan.db", timeout=30)
    try:
        with db:
            changed = db.execute(
                "UPDATE dispute_parties SET email = ? WHERE dispute_id = ? AND phone = ?",
                (email, DEMO_LOAN, phone),
            ).rowcount
    finally:
        db.close()
    assert changed == 1, f"no party with phone {phone} on dispute {DEMO_LOAN}"


# --- helpers ---------------------------------------------------------------------------------


def in_english(page: Page) -> None:
    page.locator('a[data-lang="en"]').click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def newest_code(context: BrowserContext, url: str, phone: str) -> str:
    """The newest one-time code the demo outbox shows for ``phone``."""
    outbox = context.new_page()
    try:
        outbox.goto(url + "outbox")
        row = outbox.locator("table.list tbody tr", has_text=phone).filter(has_text="验证码")
        expect(row.first).to_be_visible()
        found = CODE.search(row.first.inner_text())
        assert found is not None, row.first.inner_text()
        return found.group("code")
    finally:
        outbox.close()


def reverify(page: Page, url: str, phone: str) -> None:
    """Confirm the identity with a new one-time code; the page goes back where it was."""
    expect(page).to_have_url(re.compile(r"/reverify\?next="))
    page.locator('form[action="/reverify/send"] button[type=submit]').click()
    code_field = page.locator('form[action="/reverify"] input[name=code]')
    expect(code_field).to_be_visible()
    code_field.fill(newest_code(page.context, url, phone))
    page.locator('form[action="/reverify"] button[type=submit]').click()
    expect(page).not_to_have_url(re.compile(r"/reverify"))


def draw_signature(page: Page, tilt: float) -> None:
    """Two strokes with the mouse across the signature box, each signer's their own."""
    canvas = page.locator("#signature-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None, "the signature box is not shown"
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    strokes = [
        [(0.10, 0.65), (0.20, 0.30), (0.30, 0.70), (0.40, 0.35), (0.50, 0.65)],
        [(0.55, 0.40), (0.65, 0.55), (0.75, 0.35), (0.88, 0.60)],
    ]
    strokes = [[(fx, fy + tilt * (fx - 0.5)) for fx, fy in stroke] for stroke in strokes]
    for stroke in strokes:
        (fx, fy), rest = stroke[0], stroke[1:]
        page.mouse.move(x + fx * w, y + fy * h)
        page.mouse.down()
        for tx, ty in rest:
            page.mouse.move(x + tx * w, y + ty * h, steps=8)
        page.mouse.up()


def sign(page: Page, url: str, phone: str, expected_sha256: str, tilt: float) -> None:
    """Open the signing page (with a new code if the login's is not fresh), draw and sign."""
    page.goto(f"{url}disputes/{DEMO_LOAN}/agreement/sign")
    if "/reverify" in page.url:
        reverify(page, url, phone)
    root = page.locator("#signing")
    expect(root).to_have_attribute("data-state", "signing")
    expect(root).to_have_attribute("data-sha256", expected_sha256)
    expect(page.locator("#signing-hash")).to_have_text(expected_sha256)
    form = page.locator("#signing-form")
    submit = form.locator("button[type=submit]")
    expect(submit).to_be_disabled()  # nothing drawn yet
    draw_signature(page, tilt)
    expect(submit).to_be_enabled()
    page.locator("#signing-consent").check()
    submit.click()
    # the page reloads once the signature is recorded (the last one also issues the PDF)
    expect(form).to_have_count(0, timeout=SLOW_MS)
    expect(page.locator("#signing p.signing-ok").last).to_contain_text("You signed")


def pdf_text(data: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [page.extract_text() or "" for page in reader.pages]


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def platform_signed(server: DemoServer, data: bytes) -> Verdict:
    """The PDF's signatures checked against the platform root in the server's data dir
    (in a thread of its own: pyHanko runs an event loop, and Playwright's is running)."""
    pem = Path(server.env["YIZHAN_DATA_DIR"]) / FOLDER / SIGNING_CERT
    roots = [c for c in read_roots(pem) if c.subject == c.issuer]
    assert roots, f"no self-signed root in {pem}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(verify_pdf, data, roots).result()


def download(page: Page, url: str, link: Locator) -> bytes:
    """The file a link points to, fetched with the page's session."""
    href = link.get_attribute("href")
    assert href, "the link has no address"
    response = page.request.get(url + href.lstrip("/"))
    assert response.ok, f"{href}: {response.status} {response.text()[:300]}"
    return response.body()


def check_certificate(pages: list[str], effective: str, sha256: str) -> None:
    """The certificate's text shows every step of each delivery, and the channel that made
    the service effective.  Compared without whitespace: the text extracted from the PDF
    wraps long labels, splits ligatures ("certif icate") and carries page footers."""
    shown = "\n".join(pages)
    flat = squeezed(shown)
    at = r"\d{4}-\d{2}-\d{2}\d{2}:\d{2}:\d{2}"  # a time, its space squeezed out
    assert "Electronicservicecertificate" in flat, shown
    assert "Recipient张三" in flat and sha256 in flat, shown
    assert re.search(rf"Servicetookeffect{squeezed(effective)}·{at}", flat), shown
    sections = re.search(
        r"Platforminbox(State.*?)Email(Address.*?)Textmessage(Address.*?)Failuresandretries", flat
    )
    assert sections is not None, f"no section per channel: {shown}"
    inbox, email, sms = sections.groups()
    reached = "StateReachedtherecipient'ssystem"
    steps = ("Sentat", "Reachedtherecipient'ssystemat")
    for label in (*steps, "Openedat", "Downloadedat", "Receiptacknowledgedat"):
        assert re.search(label + at, inbox), f"inbox: no time for {label}: {shown}"
    for label in steps:
        assert re.search(label + at, email), f"email: no time for {label}: {shown}"
    assert reached in inbox and reached in email, shown
    assert "@example.com" in email, shown
    assert "StateSent" in sms and re.search("Sentat" + at, sms), shown
    assert "Failuresandretries" + "None." in flat, shown
    assert "version2." in flat, "the certificate asked for is not the second one"


def until(what: str, check: Callable[[], T | None], seconds: float = JOB_SECONDS) -> T:
    """Poll ``check`` from the test until it returns something true (and return that)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.5)


def dispute_status(page: Page, url: str) -> str:
    page.goto(f"{url}disputes/{DEMO_LOAN}")
    return page.locator("#status").get_attribute("data-status") or ""


def confirmation_action(page: Page, action: str) -> None:
    """Send one of the confirmation page's forms; it must come back saying it was done."""
    page.locator(f'form[action="/disputes/{DEMO_LOAN}/confirmation/{action}"] button').click()
    expect(page).to_have_url(re.compile(rf"/confirmation\?done={action}$"))


# --- the test --------------------------------------------------------------------------------


def test_an_agreement_is_signed_confirmed_and_served(
    court: DemoServer, browser: Browser, mailbox: tuple[Mailbox, int]
) -> None:
    url = court.url
    box, _ = mailbox
    give_email(Path(court.env["YIZHAN_DATA_DIR"]), ZHANG_PHONE, ZHANG_EMAIL)

    mediator = staff_page(browser, url, MEDIATOR)
    zhang = party_page(browser, url, ZHANG_PHONE, "张三")
    li = party_page(browser, url, LI_PHONE, "李四")
    for page in (mediator, zhang, li):
        in_english(page)
    mediator.on("dialog", lambda dialog: dialog.accept())  # "put up for signing?"

    # --- 1. the mediator drafts the agreement and puts it up for signing -----------------------
    mediator.goto(f"{url}disputes/{DEMO_LOAN}")
    expect(mediator.locator("#status")).to_have_attribute("data-status", "mediating")
    mediator.locator('a[data-action="agreement"]').click()
    expect(mediator).to_have_url(f"{url}disputes/{DEMO_LOAN}/agreement")
    mediator.locator('#agreement button[data-action="start"]').click()
    form = mediator.locator("#agreement-form")
    expect(form).to_be_visible(timeout=SLOW_MS)
    expect(mediator.locator("#agreement")).to_have_attribute("data-base-version", "1")
    expect(form.locator("textarea[name=text]")).not_to_have_value("")

    def party_option(select: str, name: str) -> str:
        value = form.locator(f"select[name={select}] option", has_text=name).get_attribute("value")
        assert value, f"{name} is not offered as {select}"
        return value

    form.locator("select[name=payer]").select_option(party_option("payer", "李四"))
    form.locator("select[name=payee]").select_option(party_option("payee", "张三"))
    form.locator("input[name=total]").fill("50000")
    today = date.today()
    for _ in range(2):
        form.locator('button[data-action="add-instalment"]').click()
    rows = form.locator("#instalment-rows li.instalment")
    expect(rows).to_have_count(2)
    for index, (days, amount) in enumerate(((30, "30000"), (60, "20000"))):
        rows.nth(index).locator("input[name=due]").fill((today + timedelta(days=days)).isoformat())
        rows.nth(index).locator("input[name=amount]").fill(amount)
    form.locator("input[name=method]").fill("银行转账至申请人名下账户")
    form.locator("select[name=costs_borne_by]").select_option("waived")
    form.locator("input[name=note]").fill("terms agreed at the session")
    form.locator("button[type=submit]").click()
    expect(mediator.locator("#agreement")).to_have_attribute(
        "data-base-version", "2", timeout=SLOW_MS
    )
    expect(form.locator("#instalment-rows li.instalment")).to_have_count(2)
    expect(form.locator("input[name=total]")).to_have_value("50000.00")
    expect(mediator.locator("table.agreement-versions tbody tr")).to_have_count(2)

    form.locator('button[data-action="signing"]').click()
    signing = mediator.locator("#agreement .agreement-signing")
    expect(signing).to_be_visible(timeout=SLOW_MS)
    pdf_sha256 = signing.locator("code.agreement-hash").inner_text().strip()
    assert SHA256.match(pdf_sha256), pdf_sha256
    draft = download(mediator, url, signing.locator("a.button.secondary"))
    assert hashlib.sha256(draft).hexdigest() == pdf_sha256
    draft_pages = len(pypdf.PdfReader(io.BytesIO(draft)).pages)
    assert dispute_status(mediator, url) == "agreement_reached"

    # --- 2. both parties, then the mediator, draw their signatures and sign --------------------
    sign(zhang, url, ZHANG_PHONE, pdf_sha256, tilt=-0.3)
    sign(li, url, LI_PHONE, pdf_sha256, tilt=0.0)
    expect(li.locator("#signing table.signing-signers tr.done")).to_have_count(2)
    sign(mediator, url, MEDIATOR_PHONE, pdf_sha256, tilt=0.3)

    signed = mediator.locator("#signing")
    expect(signed).to_have_attribute("data-state", "signed")
    expect(signed.locator("table.signing-signers tr.done")).to_have_count(3)
    expect(signed.locator("table.signing-signers tr.waiting")).to_have_count(0)
    final_link = signed.locator('a[href^="/api/v1/documents/"]')
    expect(final_link).to_be_visible()
    final_sha256 = signed.locator("p.hint code.signing-hash").inner_text().strip()
    assert SHA256.match(final_sha256) and final_sha256 != pdf_sha256
    final = download(mediator, url, final_link)
    assert hashlib.sha256(final).hexdigest() == final_sha256

    pages = pdf_text(final)
    assert len(pages) > draft_pages, "no pages were added to the agreement that was signed"
    appended = squeezed("".join(pages[draft_pages:]))
    for name in ("张三", "李四", MEDIATOR.name):
        assert name in appended, f"{name} is not on the signatures page"
    assert pdf_sha256 in appended, "the signatures page does not name the PDF that was signed"
    signatures_page = pypdf.PdfReader(io.BytesIO(final)).pages[draft_pages]
    assert len(signatures_page.images) >= 3, "the three drawn signatures are not on the page"
    verdict = platform_signed(court, final)
    assert verdict.signed_ok, verdict
    assert dispute_status(mediator, url) == "agreement_signed"

    # --- 3. both parties apply for confirmation; the judge confirms --------------------------
    for party in (zhang, li):
        party.goto(f"{url}disputes/{DEMO_LOAN}")
        expect(party.locator("#status")).to_have_attribute("data-status", "agreement_signed")
        party.locator('a[data-action="confirmation"]').click()
        expect(
            party.locator("#confirmation"), f"no judicial confirmation page at {party.url}"
        ).to_be_visible()
        expect(party.locator("#agreement-sha256")).to_have_text(final_sha256)
        confirmation_action(party, "apply")
    expect(li.locator("#applicants tbody tr")).to_have_count(2)
    expect(li.locator("#confirmation")).to_have_attribute("data-state", "applied")

    judge = staff_page(browser, url, JUDGE)
    in_english(judge)
    judge.goto(url + "confirmations")
    judge.locator(f'#confirmation-queue tr[data-dispute="{DEMO_LOAN}"] a').click()
    expect(judge).to_have_url(f"{url}disputes/{DEMO_LOAN}/confirmation")
    confirmation_action(judge, "take")
    expect(judge.locator("#confirmation dl.facts")).to_contain_text(JUDGE.name)

    def decide() -> None:
        decision = judge.locator("#decide form")
        decision.locator('input[name=decision][value="confirmed"]').check()
        decision.locator("button[type=submit]").click()

    decide()  # a password login is not fresh: a new code first, then the decision again
    reverify(judge, url, JUDGE_PHONE)
    expect(judge).to_have_url(re.compile(rf"/disputes/{DEMO_LOAN}/confirmation"))
    decide()
    expect(judge).to_have_url(re.compile(r"/confirmation\?done=decide$"), timeout=SLOW_MS)
    decided = judge.locator("#decision")
    expect(decided).to_have_attribute("data-decision", "confirmed")
    expect(decided.locator("#ruling-link")).to_be_visible()
    expect(decided.locator("#ruling-services tbody tr")).to_have_count(2)
    expect(decided.locator('#ruling-services tbody tr[data-served="yes"]')).to_have_count(2)
    ruling_sha256 = judge.locator("#ruling-sha256").inner_text().strip()
    assert SHA256.match(ruling_sha256), ruling_sha256

    # --- 4. served: by email to 张三's address, and to his inbox ------------------------------
    mails = until(f"an email to {ZHANG_EMAIL}", lambda: box.to(ZHANG_EMAIL))
    assert len(mails) == 1, [m["Subject"] for m in mails]

    def inbox_row() -> Locator | None:
        zhang.goto(url + "inbox")
        row = zhang.locator("#inbox tr[data-service]")
        return row.first if row.count() else None

    row = until("the ruling in 张三's inbox", inbox_row)
    expect(row).to_have_attribute("data-unread", "true")
    service_id = row.get_attribute("data-service")
    assert service_id
    body = mails[0].get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert f"{url}inbox/{service_id}" in text, text
    assert ruling_sha256 in text, text

    row.locator("a").click()
    expect(zhang).to_have_url(f"{url}inbox/{service_id}")
    item = zhang.locator("#inbox-item")
    expect(item.locator("dl.facts code")).to_have_text(ruling_sha256)
    not_yet = re.compile(r"^\s*—\s*$")
    expect(zhang.locator("#opened-at")).to_have_text(re.compile(TIME))
    expect(zhang.locator("#downloaded-at")).to_have_text(not_yet)
    with zhang.expect_download() as started:
        zhang.locator("#download").click()
    ruling = Path(started.value.path()).read_bytes()
    assert hashlib.sha256(ruling).hexdigest() == ruling_sha256
    assert platform_signed(court, ruling).signed_ok
    zhang.reload()
    expect(zhang.locator("#downloaded-at")).to_have_text(re.compile(TIME))
    expect(zhang.locator("#acknowledged-at")).to_have_text(not_yet)
    zhang.locator("#acknowledge button[type=submit]").click()
    expect(zhang.locator("#acknowledged")).to_be_visible()
    expect(zhang.locator("#acknowledged-at")).to_have_text(re.compile(TIME))
    expect(zhang.locator('#trace tr[data-channel="email"]')).to_have_attribute(
        "data-state", "reached"
    )

    # --- 5. the clerk: both services complete; the certificate shows every step ------------
    clerk = staff_page(browser, url, CLERK)
    in_english(clerk)
    assert until("the dispute served", lambda: dispute_status(clerk, url) == "served")
    clerk.locator('a[data-action="services"]').click()
    expect(clerk).to_have_url(f"{url}disputes/{DEMO_LOAN}/services")
    services = clerk.locator("#services article.service")
    expect(services).to_have_count(2)
    expect(clerk.locator('#services article.service[data-state="complete"]')).to_have_count(2)
    mine = clerk.locator(f'#services article.service[data-service="{service_id}"]')
    expect(mine.locator("h3")).to_contain_text("张三")
    effective = mine.locator("dd.effective").inner_text()
    channel = re.match(rf"^(Platform inbox|Email) · {TIME}$", effective.strip())
    assert channel is not None, effective
    inbox = mine.locator('tr[data-channel="inbox"]')
    expect(inbox).to_have_attribute("data-state", "reached")
    expect(inbox.locator("td").nth(6)).to_have_text(re.compile(rf"^{TIME} / {TIME} / {TIME}$"))
    email = mine.locator('tr[data-channel="email"]')
    expect(email).to_have_attribute("data-state", "reached")
    expect(email.locator("td").nth(1)).to_have_text(ZHANG_EMAIL)

    mine.locator(f'form[action="/services/{service_id}/certificate"] button').click()
    expect(clerk).to_have_url(re.compile(r"[?&]done=certificate"), timeout=SLOW_MS)
    expect(clerk.locator("#notice")).to_be_visible()
    mine = clerk.locator(f'#services article.service[data-service="{service_id}"]')
    certificate = download(clerk, url, mine.locator('a[href^="/api/v1/documents/"]'))
    assert platform_signed(court, certificate).signed_ok
    check_certificate(pdf_text(certificate), channel.group(1), ruling_sha256)

    for page in (mediator, zhang, li, judge, clerk):
        page.context.close()
