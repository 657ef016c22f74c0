"""Three headless Chromium pages in one mediation room, with fake cameras and microphones.

郑调解 (the host) and both parties of the demo loan dispute open the session's room; the
parties (whose login code is still fresh, or who confirm with a new one) consent to the recording, then wait
in the lobby until the host admits them.  Every page must then be decoding the others'
video (``getStats``: ``framesDecoded`` growing on the receiver of each member's camera).
The host takes 张三 into a caucus: 李四's page stops receiving 张三's video while the
host's page still does.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.test_dispute_flows import (
    LI_PHONE,
    MEDIATOR,
    ZHANG_PHONE,
    DemoServer,
    party_page,
    staff_page,
)
from tests.e2e.test_first_command import CHROMIUM_ARGS, CODE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MEDIA_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
DEMO_SESSION = 1  # the demo loan dispute's scheduled mediation

# framesDecoded of the receiver that feeds a member's camera tile on this page
FRAMES_OF = """async (memberId) => {
  const video = document.querySelector(
    `.tile[data-member-id="${memberId}"][data-source="camera"] video`);
  const trackId = video && video.dataset.trackId;
  const pc = window.yizhanRoom.pc();
  if (!trackId || !pc) return -1;
  const receiver = pc.getReceivers().find((r) => r.track && r.track.id === trackId);
  if (!receiver) return -1;
  window.__probes = window.__probes || {};
  window.__probes[memberId] = receiver;
  let frames = 0;
  (await receiver.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}"""

# the same receiver as last time, even after its tile has gone
PROBED_FRAMES = """async (memberId) => {
  const receiver = (window.__probes || {})[memberId];
  if (!receiver) return -1;
  let frames = 0;
  (await receiver.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}"""


# what the page has, for a failure message
DIAGNOSIS = """async () => {
  const pc = window.yizhanRoom.pc();
  const tiles = [...document.querySelectorAll(".tile")].map(
    (t) => `${t.dataset.memberId}:${t.dataset.source}:${(t.querySelector("video") || {}).dataset?.trackId || ""}`);
  const receivers = pc ? pc.getTransceivers().map(
    (t) => `${t.mid}:${t.direction}/${t.currentDirection}:${t.receiver.track && t.receiver.track.id}`) : [];
  return {me: window.yizhanRoom.memberId(), ice: pc && pc.iceConnectionState,
          state: window.yizhanRoom.state(), tiles, receivers};
}"""


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("the e2e tests need a `chromium` executable on PATH; none was found")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=MEDIA_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def reverify(page: Page, url: str, phone: str) -> None:
    """The room asks a party for a fresh one-time code first."""
    page.locator('form[action="/reverify/send"] button[type=submit]').click()
    outbox = page.context.new_page()
    try:
        outbox.goto(url + "outbox")
        row = outbox.locator("table.list tbody tr", has_text=phone).first
        expect(row).to_be_visible()
        found = CODE.search(row.inner_text())
        assert found is not None, row.inner_text()
    finally:
        outbox.close()
    page.locator('form[action="/reverify"] input[name=code]').fill(found.group("code"))
    page.locator('form[action="/reverify"] button[type=submit]').click()


def enter(page: Page, url: str, phone: str | None = None) -> str:
    page.goto(f"{url}sessions/{DEMO_SESSION}/room")
    if phone is not None and "/reverify" in page.url:  # the login's code is not fresh any more
        reverify(page, url, phone)
    expect(page.locator("#pj-join")).to_be_visible()
    page.locator("#pj-consent").check()
    page.locator("#pj-join").click()
    return str(until(page, "window.yizhanRoom && window.yizhanRoom.memberId()"))


def until(page: Page, expression: str, seconds: float = 30) -> object:
    """Poll an expression from the test (``wait_for_function`` would evaluate a string
    inside the page, which its CSP rightly forbids)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"{page.url}: {expression} stayed false for {seconds:.0f} s")


def frames(page: Page, member_id: str) -> int:
    value: int = page.evaluate(FRAMES_OF, member_id)
    return value


def wait_decoding(page: Page, member_id: str, more: int = 10, seconds: float = 45) -> None:
    """Until the page has decoded ``more`` further frames of that member's camera."""
    deadline = time.monotonic() + seconds
    start = -1
    while time.monotonic() < deadline:
        now = frames(page, member_id)
        if now >= 0 and start < 0:
            start = now
        if start >= 0 and now >= start + more:
            return
        page.wait_for_timeout(250)
    seen = page.evaluate(DIAGNOSIS)
    raise AssertionError(f"no video decoded from {member_id} ({start} -> {now}); page: {seen}")


def test_three_pages_see_each_other_and_a_caucus_is_private(
    browser: Browser, demo_server: DemoServer
) -> None:
    url = demo_server.url
    host = staff_page(browser, url, MEDIATOR)
    host_id = enter(host, url)
    expect(host.locator("[data-action=admit_all]")).to_be_hidden()

    zhang = party_page(browser, url, ZHANG_PHONE, "张三")
    zhang_id = enter(zhang, url, ZHANG_PHONE)
    li = party_page(browser, url, LI_PHONE, "李四")
    li_id = enter(li, url, LI_PHONE)

    # both wait in the lobby, seeing nobody, until the host lets them in
    expect(host.locator(f'li[data-member-id="{zhang_id}"][data-subroom="lobby"]')).to_be_visible()
    assert frames(zhang, host_id) == -1
    host.locator("[data-action=admit_all]").first.click()

    pages = {host_id: host, zhang_id: zhang, li_id: li}
    for viewer_id, viewer in pages.items():
        for other_id in pages:
            if other_id != viewer_id:
                wait_decoding(viewer, other_id)

    # the host takes 张三 aside: 李四 no longer receives him, the host still does
    host.locator(f'input.pick[data-member-id="{host_id}"]').check()
    host.locator(f'input.pick[data-member-id="{zhang_id}"]').check()
    host.locator("[data-action=caucus]").first.click()
    expect(host.locator(f'li[data-member-id="{zhang_id}"]')).to_have_attribute(
        "data-subroom", re.compile(r"^caucus:")
    )
    li.wait_for_timeout(2500)
    before = li.evaluate(PROBED_FRAMES, zhang_id)
    li.wait_for_timeout(2000)
    after = li.evaluate(PROBED_FRAMES, zhang_id)
    assert after == before, f"李四 still decodes 张三's video in a caucus ({before} -> {after})"
    wait_decoding(host, zhang_id)
