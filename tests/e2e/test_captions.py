"""Live captions in a browser: a party's fake microphone plays known English speech.

The demo court is served with the small English model (tiny.en) and English as the
court's language. 张三's Chromium reads its microphone from a WAV file that espeak-ng
made from known sentences (``--use-file-for-fake-audio-capture=...%noloop``: played once,
after a few seconds of silence that cover joining and being admitted). The host's page
must show 张三's final captions, close to the known text, under his name and seat; the
host can hide the captions; the transcript page lists the lines stored under his name and
makes a PDF of them (a background job whose progress the page follows). When the host ends
the session its recording stops and is composed; the clerk's playback page plays it, and
choosing a transcript line moves the player there.

The crash test kills the server (SIGKILL) while 张三 is still speaking, starts it again
on the same data, and finds every final caption the host had seen in the transcript.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.e2e.test_dispute_flows import (
    CLERK,
    MEDIATOR,
    ZHANG_PHONE,
    DemoServer,
    party_page,
    serve_demo,
    staff_page,
)
from tests.e2e.test_room import DEMO_SESSION, MEDIA_ARGS, enter
from tests.transcription import speech
from transcription.models import ModelNotFound, resolve

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not speech.have_tools(), reason="needs espeak-ng and sox"),
]

SAID = speech.ENGLISH[1:3]
# tiny.en on espeak speech that went through Opus in the browser and back: the known words
# it must catch (recall: words it adds or splits across captions do not count against it)
LEAST_RECALL = 0.6
LEAD_IN = 8.0  # seconds of silence before the speech: the party joins and is admitted


def recall(known: str, heard: str) -> float:
    want = speech.words(known)
    got = set(speech.words(heard))
    return sum(word in got for word in want) / len(want)


@pytest.fixture
def caption_server(tmp_path: Path) -> Iterator[DemoServer]:
    try:
        resolve("tiny.en", tmp_path / "models")
    except ModelNotFound as exc:
        pytest.skip(str(exc))
    with serve_demo(
        tmp_path, YIZHAN_ASR_MODEL="tiny.en", YIZHAN_ASR_LANGUAGE="en", YIZHAN_CAPTIONS="true"
    ) as server:
        yield server


def microphone(folder: Path, sentences: tuple[str, ...]) -> str:
    """The Chromium flag that makes the fake microphone say ``sentences`` once."""
    pcm, _ = speech.conversation(sentences, folder, pause=1.5)
    wav = speech.write_wav(folder / "microphone.wav", speech.silence(LEAD_IN) + pcm)
    return f"--use-file-for-fake-audio-capture={wav}%noloop"


def launch(playwright: Playwright, *extra: str) -> Browser:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("the e2e tests need a `chromium` executable on PATH; none was found")
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=[*MEDIA_ARGS, *extra]
    )


def test_a_partys_speech_shows_as_captions_and_lands_in_the_transcript(
    caption_server: DemoServer, tmp_path: Path
) -> None:
    url = caption_server.url
    with sync_playwright() as playwright:
        staff = launch(playwright)
        talking = launch(playwright, microphone(tmp_path, SAID))
        try:
            host, zhang, zhang_id = meet(staff, talking, url)

            known = " ".join(SAID)
            heard = wait_for_captions(host, zhang_id, known)
            line = host.locator(f'#caption-lines li.caption[data-member-id="{zhang_id}"]').first
            expect(line.locator(".caption-who")).to_contain_text("张三")

            # each user may hide the captions; the choice is theirs alone
            host.locator("#captions-toggle").click()
            expect(host.locator("#captions")).to_have_class(re.compile("captions--hidden"))
            expect(zhang.locator("#captions")).not_to_have_class(re.compile("captions--hidden"))

            transcript = transcript_text(host, url)
            assert "张三" in transcript
            assert recall(known, transcript) >= LEAST_RECALL, (heard, transcript)
            pdf = exported_pdf(host, url)
            assert pdf.startswith(b"%PDF"), pdf[:20]

            # the host ends the session: the recording stops, its files are composed,
            # and the clerk plays it back from a line of the transcript
            host.goto(f"{url}sessions/{DEMO_SESSION}/room")
            end_session(host)
            clerk = staff_page(staff, url, CLERK)
            play_from_a_line(clerk, url)
        finally:
            talking.close()
            staff.close()


def end_session(host: Page) -> None:
    expect(host.locator("#pj-join")).to_be_visible()
    host.locator("#pj-consent").check()
    host.locator("#pj-join").click()
    host.locator("#ctl-end").click()
    host.locator("#confirm [data-action=confirm-ok]").click()


def play_from_a_line(page: Page, url: str) -> None:
    """The composite of the session plays; choosing a transcript line moves it there."""
    page.goto(f"{url}sessions/{DEMO_SESSION}/recording")
    media = page.locator("#recording-media")
    deadline = time.monotonic() + 180
    while not media.count():  # the page reloads itself when the composite is made
        assert time.monotonic() < deadline, "no composite to play"
        page.wait_for_timeout(1000)
        if not page.locator("#recording-compose-job").count():
            page.reload()
    lines = page.locator("#recording-lines .recording-line")
    expect(lines.first).to_be_visible()
    offsets = [float(o) for o in lines.evaluate_all("(els) => els.map((e) => e.dataset.offset)")]
    target = max(offsets)
    chosen = lines.nth(offsets.index(target))
    chosen.locator("button.seek").click()
    deadline = time.monotonic() + 20
    seen = 0.0
    while time.monotonic() < deadline:
        seen = float(media.evaluate("(element) => element.currentTime"))
        if abs(seen - target) <= 0.5:
            break
        page.wait_for_timeout(100)
    assert abs(seen - target) <= 0.5, (seen, target, offsets)
    expect(chosen).to_have_class(re.compile(r"\bis-current\b"))


def meet(staff: Browser, talking: Browser, url: str) -> tuple[Page, Page, str]:
    """The host enters, 张三 enters and is admitted; his member id in the room."""
    host = staff_page(staff, url, MEDIATOR)
    enter(host, url)
    zhang = party_page(talking, url, ZHANG_PHONE, "张三")
    zhang_id = enter(zhang, url, ZHANG_PHONE)
    host.locator("[data-action=admit_all]").first.click()
    return host, zhang, zhang_id


def finals(page: Page, member_id: str) -> list[str]:
    texts: list[str] = page.evaluate(
        """(memberId) => [...document.querySelectorAll(
            `#caption-lines li.caption[data-member-id="${memberId}"] .caption-text`)]
            .map((el) => el.textContent)""",
        member_id,
    )
    return texts


def test_final_captions_seen_before_a_crash_are_in_the_transcript_after_a_restart(
    caption_server: DemoServer, tmp_path: Path
) -> None:
    url = caption_server.url
    with sync_playwright() as playwright:
        staff = launch(playwright)
        talking = launch(playwright, microphone(tmp_path, speech.ENGLISH))
        try:
            host, _, zhang_id = meet(staff, talking, url)
            deadline = time.monotonic() + 120
            while len(finals(host, zhang_id)) < 2 and time.monotonic() < deadline:
                host.wait_for_timeout(200)
            seen = finals(host, zhang_id)
            assert len(seen) >= 2, f"too few final captions before the crash: {seen}"
            caption_server.kill()  # SIGKILL, mid-speech: the file has more sentences
            print(f"\nfinal captions seen before the kill: {seen}")
            caption_server.restart()
            transcript = transcript_text(host, url)
            for text in seen:
                assert text in transcript, (text, transcript)
        finally:
            talking.close()
            staff.close()


def wait_for_captions(page: Page, member_id: str, known: str, seconds: float = 120) -> str:
    """Until this page shows final captions of the member that catch most known words."""
    heard = ""

    def caught() -> bool:
        nonlocal heard
        heard = " ".join(finals(page, member_id))
        return recall(known, heard) >= LEAST_RECALL

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if caught():
            print(f"\ncaptions heard: {heard!r} (recall {recall(known, heard):.2f})")
            return heard
        page.wait_for_timeout(500)
    raise AssertionError(f"captions caught too little of {known!r}: {heard!r}")


def transcript_text(page: Page, url: str) -> str:
    view = page.context.new_page()
    try:
        view.goto(f"{url}sessions/{DEMO_SESSION}/transcript")
        return view.locator("main").inner_text()
    finally:
        view.close()


def exported_pdf(page: Page, url: str) -> bytes:
    """The transcript page's PDF button: a job with a progress bar, then a link to the file."""
    view = page.context.new_page()
    try:
        view.goto(f"{url}sessions/{DEMO_SESSION}/transcript")
        view.locator("[data-export=pdf]").click()
        expect(view.locator("#export-list .job progress")).to_be_visible()
        link = view.locator("a[data-exported=pdf]")
        expect(link).to_be_visible(timeout=90_000)
        href = link.get_attribute("href")
        assert href, "the finished export has no link"
        return view.request.get(url.rstrip("/") + href).body()
    finally:
        view.close()
