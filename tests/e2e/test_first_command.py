"""The README's first command, as a person on a fresh machine would use it.

``bash scripts/run`` installs, migrates, seeds the demo court, prints the demo logins and
serves.  We read the URL and the logins from what it prints, then drive headless Chromium
through it: a mediator logs in with a password and switches the interface to English; a
party logs in with a one-time code read from the demo outbox.  Finally the server is
stopped and must exit promptly.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.e2e.processes import kill_group, stop_group

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
STARTUP_SECONDS = 240.0
STOP_SECONDS = 10.0
UI_TIMEOUT_MS = 15_000

URL_LINE = re.compile(r"一站 Yizhan: (?P<url>http://\S+/)\s+\(Ctrl\+C to stop\)")
LOGINS_HEADER = "演示账号 Demo logins:"
# "  mediator        郑调解    tiaojie      Yizhan-demo-2026"
LOGIN_ROW = re.compile(
    r"^\s+(?P<role>[a-z_]+)\s+(?P<name>\S+)\s+(?P<login>\S+)\s+(?P<how>\S.*?)\s*$"
)
CODE = re.compile(r"验证码\s*(?P<code>\d{6})")

PARTY_PHONE = "13800000001"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass(frozen=True)
class DemoLogin:
    role: str
    name: str
    login: str
    how: str  # the password, or a note that the account uses a one-time code


@dataclass
class RunningScript:
    """``bash scripts/run`` in its own process group, its output collected by a thread."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url_seen: threading.Event = field(default_factory=threading.Event)

    def output(self) -> str:
        with self.lock:
            return "".join(self.lines)

    def collect(self, stream: IO[str]) -> None:
        for line in stream:
            with self.lock:
                self.lines.append(line)
            if URL_LINE.search(line):
                self.url_seen.set()

    def wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not self.url_seen.wait(0.5):
            if self.process.poll() is not None:
                pytest.fail(
                    f"scripts/run exited with status {self.process.returncode} before printing "
                    f"its URL; its output:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"scripts/run printed no URL line within {timeout:.0f} s; its output:\n"
                    f"{self.output()}"
                )
        match = URL_LINE.search(self.output())
        assert match is not None
        return match.group("url")

    def stop(self, timeout: float) -> int | None:
        """SIGTERM the process group; the exit status, or None if it did not exit in time."""
        return stop_group(self.process, timeout)

    def kill(self) -> None:
        kill_group(self.process, STOP_SECONDS)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def parse_logins(output: str) -> list[DemoLogin]:
    """The rows of the table that ``yizhan demo`` prints under its header."""
    lines = output.splitlines()
    assert LOGINS_HEADER in lines, f"no demo logins table in the output:\n{output}"
    rows: list[DemoLogin] = []
    for line in lines[lines.index(LOGINS_HEADER) + 1 :]:
        match = LOGIN_ROW.match(line)
        if match is None:
            break
        rows.append(DemoLogin(**match.groupdict()))
    assert rows, f"the demo logins table is empty:\n{output}"
    return rows


def find_login(logins: list[DemoLogin], role: str, login: str | None = None) -> DemoLogin:
    for entry in logins:
        if entry.role == role and (login is None or entry.login == login):
            return entry
    pytest.fail(f"no {role} {login or ''} in the printed demo logins: {logins}")


@pytest.fixture
def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the e2e tests need a `chromium` executable on PATH "
            "(Debian/Ubuntu: apt-get install chromium); none was found"
        )
    return path


@pytest.fixture
def first_command(tmp_path: Path) -> Iterator[RunningScript]:
    """Start ``bash scripts/run`` on a free port with its data under tmp_path."""
    env = {
        # a fresh machine's first command: no YIZHAN_* configuration but the data folder
        **{k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")},
        "YIZHAN_DATA_DIR": str(tmp_path / "data"),
        "YIZHAN_LOG_FORMAT": "text",
    }
    process = subprocess.Popen(
        ["bash", "scripts/run", "--port", str(free_port()), "--host", HOST],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # its own process group, so that stopping it reaches serve
    )
    assert process.stdout is not None
    script = RunningScript(process)
    reader = threading.Thread(target=script.collect, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        yield script
    finally:
        script.kill()
        reader.join(timeout=STOP_SECONDS)
        # shown by pytest only when the test failed
        print(f"--- output of scripts/run ---\n{script.output()}")


@pytest.fixture
def browser(chromium_executable: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context


def log_in_as_staff(page: Page, url: str, login: DemoLogin) -> None:
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))
    staff = page.locator("#staff-login")
    staff.locator("input[name=account]").fill(login.login)
    staff.locator("input[name=password]").fill(login.how)
    staff.locator("button[type=submit]").click()
    expect(page).to_have_url(url)


def read_code_from_outbox(context: BrowserContext, url: str, phone: str) -> str:
    """Open the demo outbox in another tab and read the newest code sent to phone."""
    outbox = context.new_page()
    try:
        outbox.goto(url + "outbox")
        row = outbox.locator("table.list tbody tr", has_text=phone).first
        expect(row).to_be_visible()
        match = CODE.search(row.inner_text())
        assert match is not None, f"no 6-digit code in the outbox message: {row.inner_text()!r}"
        return match.group("code")
    finally:
        outbox.close()


def test_first_command_serves_a_working_bilingual_demo(
    first_command: RunningScript, browser: Browser, tmp_path: Path
) -> None:
    started = time.monotonic()
    url = first_command.wait_for_url(STARTUP_SECONDS)
    startup_seconds = time.monotonic() - started
    assert urlsplit(url).hostname == HOST
    assert (tmp_path / "data" / "yizhan.db").is_file(), "the database is not under YIZHAN_DATA_DIR"

    logins = parse_logins(first_command.output())
    mediator = find_login(logins, "mediator")
    party = find_login(logins, "party", PARTY_PHONE)
    assert mediator.how and "one-time code" not in mediator.how
    assert "one-time code" in party.how

    # --- a mediator: password login, Chinese by default, then English ---------------------
    staff_context = new_context(browser)
    page = staff_context.new_page()
    log_in_as_staff(page, url, mediator)

    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator(".welcome h1")).to_have_text(f"您好，{mediator.name}")
    expect(page.locator(".welcome .role")).to_have_text("调解员")
    expect(page.locator(".who")).to_contain_text("调解员")
    expect(page.locator("table.list")).to_contain_text("民间借贷纠纷")

    page.locator('a[data-lang="en"]').click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(url)
    expect(page.locator(".welcome h1")).to_have_text(f"Welcome, {mediator.name}")
    expect(page.locator(".welcome .role")).to_have_text("Mediator")
    expect(page.locator("table.list")).to_contain_text("Private lending")
    expect(page.locator("body")).not_to_contain_text("您好")
    expect(page.locator('a[data-lang="zh_CN"]')).to_be_visible()

    screenshot = tmp_path / "home-en.png"
    page.screenshot(path=screenshot, full_page=True)
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG"
    assert len(data) > 10_000, f"the screenshot is suspiciously small ({len(data)} bytes)"
    staff_context.close()

    # --- a party: one-time code from the demo outbox ---------------------------------------
    party_context = new_context(browser)
    page = party_context.new_page()
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))
    page.locator("#party-login summary").click()
    form = page.locator("#party-login form")
    form.locator("input[name=account]").fill(party.login)
    form.locator("button[type=submit]").click()

    code_field = page.locator('form[action="/login/code/verify"] input[name=code]')
    expect(code_field).to_be_visible()
    code_field.fill(read_code_from_outbox(party_context, url, party.login))
    page.locator('form[action="/login/code/verify"] button[type=submit]').click()

    expect(page).to_have_url(url)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator(".welcome h1")).to_have_text(f"您好，{party.name}")
    disputes = page.locator("table.list tbody tr")
    expect(disputes).to_have_count(1)
    expect(disputes.first).to_contain_text("民间借贷纠纷")
    expect(disputes.first).to_contain_text("诉前调1号")
    party_context.close()

    # --- stop: the script exec'd serve, so the group's SIGTERM reaches it ------------------
    status = first_command.stop(STOP_SECONDS)
    assert status is not None, f"the server did not exit within {STOP_SECONDS:.0f} s of SIGTERM"
    assert status == 0, f"the server exited with status {status}:\n{first_command.output()}"
    print(f"scripts/run printed its URL after {startup_seconds:.1f} s")
