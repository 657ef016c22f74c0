"""A recording played back in headless Chromium, with its transcript beside it.

The demo court is served; the demo mediation is given a stopped recording whose composite
is a real 20-second MP4 (ffmpeg's test pattern and a tone, stored through the spool like
any document) and transcript lines at 3 s, 9 s and 15 s of the recording. The clerk opens
the playback page: choosing the 15-s line moves the player there and marks the line;
choosing the 3-s line moves it back; a timeline entry seeks too, and while the media plays
the mark moves on to the next line by itself. On a phone-sized screen the transcript sits
below the player. The page's CSP (no inline scripts, no eval) is never violated.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright

from server.config import load_settings
from tests.e2e.test_dispute_flows import CLERK, DemoServer, serve_demo, staff_page
from tests.e2e.test_first_command import CHROMIUM_ARGS
from tests.integration.test_recording_playback import Seeded, make_mp4, seed_recording

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SECONDS = 20
LINES = (
    (3.0, "张三", "Applicant", "我借给他五万元", False),
    (9.0, "李四", "Respondent", "我确实借了钱", False),
    (15.0, "张三", "Applicant", "约定一年后归还", False),
)
NEAR = 0.5  # how close to a line's offset the player must land
CURRENT = re.compile(r"\bis-current\b")


@pytest.fixture
def playback(tmp_path: Path) -> Iterator[tuple[DemoServer, Seeded]]:
    composite = make_mp4(tmp_path / "composite.mp4", SECONDS)
    with serve_demo(tmp_path) as server:
        settings = load_settings(server.env)
        seeded = asyncio.run(
            seed_recording(settings, composite, duration=float(SECONDS), lines=LINES)
        )
        yield server, seeded


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("the e2e tests need a `chromium` executable on PATH; none was found")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        try:
            yield launched
        finally:
            launched.close()


def position(media: Locator) -> float:
    value: float = media.evaluate("(element) => element.currentTime")
    return value


def lands_near(media: Locator, seconds: float, timeout: float = 15) -> float:
    """Poll the player's position from the test until it is within NEAR of ``seconds``
    (``wait_for_function`` would evaluate a string inside the page, which its CSP forbids)."""
    deadline = time.monotonic() + timeout
    seen = position(media)
    while time.monotonic() < deadline:
        seen = position(media)
        if abs(seen - seconds) <= NEAR:
            return seen
        media.page.wait_for_timeout(50)
    raise AssertionError(f"the player stayed at {seen:.2f} s, not near {seconds} s")


def until_positive(media: Locator, function: str, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = media.evaluate(function)
        if isinstance(value, int | float) and value > 0:
            return float(value)
        media.page.wait_for_timeout(50)
    raise AssertionError(f"{function} stayed at nothing for {timeout:.0f} s")


def line(page: Page, offset: float) -> Locator:
    return page.locator(f'#recording-lines .recording-line[data-offset="{offset}"]')


def test_choosing_a_line_seeks_the_player_and_marks_the_line(
    playback: tuple[DemoServer, Seeded], browser: Browser
) -> None:
    server, seeded = playback
    page = staff_page(browser, server.url, CLERK)
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", on_console)
    page.goto(f"{server.url}sessions/{seeded.session_id}/recording")
    media = page.locator("#recording-media")
    expect(media).to_be_visible()
    length = until_positive(media, "(element) => element.duration")
    assert abs(length - SECONDS) < NEAR, length  # the browser has read the real MP4
    expect(page.locator("#recording-lines .recording-line")).to_have_count(len(LINES))
    first, second, third = (line(page, offset) for offset, *_ in LINES)

    third.locator("button.seek").click()
    lands_near(media, 15.0)
    expect(third).to_have_class(CURRENT)
    expect(third).to_have_attribute("aria-current", "true")
    expect(first).not_to_have_class(CURRENT)

    first.locator("button.seek").click()
    lands_near(media, 3.0)
    expect(first).to_have_class(CURRENT)
    expect(third).not_to_have_class(CURRENT)
    expect(third).not_to_have_attribute("aria-current", "true")

    # a timeline entry seeks too (李四 reconnected at 8 s); playing on, the mark follows
    page.locator('#recording-timeline tr[data-kind="reconnected"] button.seek').click()
    lands_near(media, 8.0)
    expect(first).to_have_class(CURRENT)
    expect(second).to_have_class(CURRENT, timeout=10_000)
    assert position(media) >= 9.0 - 0.1
    assert not media.evaluate("(element) => element.paused")

    # on a phone-sized screen the transcript goes below the player
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    player = page.locator(".recording-player").bounding_box()
    transcript = page.locator(".recording-transcript").bounding_box()
    assert player is not None and transcript is not None
    assert transcript["y"] >= player["y"] + player["height"] - 1, (player, transcript)
    assert transcript["width"] >= 0.8 * player["width"]
    assert violations == [], violations
