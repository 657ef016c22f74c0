"""Live captions through a room: an aiortc peer publishes a recording of known English
speech (made with espeak-ng); the final captions that reach another member over
socket.io match the text within a word-error bound, carry the right speaker, and are
kept as transcript lines.  (Who may read whose captions is the room model's
``audience``, tested in tests/unit/test_room_model.py.)

The room runs the same engine as production with the tiny.en model (English-only, so
the room's language is English)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiortc.contrib.media import MediaPlayer
from sqlalchemy import select

from server.config import Settings
from server.db.engine import Database
from server.db.models import CaseSession, TranscriptLine
from tests.media.peers import Participant, party_cookie, staff_cookie
from tests.support import Clients, make_settings
from tests.transcription.speech import ENGLISH, conversation, have_tools, wer, write_wav

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not have_tools(), reason="needs espeak-ng and sox (scripts/test installs them)"
    ),
]

ZHANG = "13800000001"
SENTENCES = ENGLISH[:2]
# measured: tiny.en on these two espeak sentences, through Opus and the room in real
# time, gave a WER of 0.286 in each of two runs (4 of 14 words; offline decoding of the
# same audio does better, see bench/asr.py); the bound allows two more wrong words
WER_BOUND = 0.43


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, YIZHAN_CAPTIONS="true")


async def demo_session(clients: Clients) -> int:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            found = await session.scalar(select(CaseSession).where(CaseSession.dispute_id == 1))
            assert found is not None
            found.language = "en"
            return found.id
    finally:
        await db.dispose()


async def test_a_speakers_words_reach_the_others_as_captions_and_the_transcript(
    clients: Clients, tmp_path: Path
) -> None:
    pcm, _ = conversation(SENTENCES, tmp_path)
    wav = write_wav(tmp_path / "speech.wav", pcm)
    session_id = await demo_session(clients)
    host, zhang = Participant(clients, "host"), Participant(clients, "zhang")
    try:
        await host.connect(await staff_cookie(clients, "tiaojie"))
        await zhang.connect(await party_cookie(clients, ZHANG))
        await host.join(session_id)
        await host.publish(audio=False)
        await zhang.join(session_id)
        await host.must("room:admit", {"member_id": zhang.member_id})
        player = MediaPlayer(str(wav))
        await zhang.publish(voice=player.audio, video=False)
        spoken = len(pcm) / 2 / 16000
        deadline = asyncio.get_running_loop().time() + spoken + 60
        while asyncio.get_running_loop().time() < deadline:
            finals = [c for c in host.captions if c["final"]]
            if wer(" ".join(SENTENCES), " ".join(c["text"] for c in finals)) <= WER_BOUND:
                break
            await asyncio.sleep(0.5)
        finals = [c for c in host.captions if c["final"]]
        heard = " ".join(c["text"] for c in finals)
        error = wer(" ".join(SENTENCES), heard)
        print(f"captions WER {error:.3f}: {heard!r}")
        assert error <= WER_BOUND, heard
        assert {c["member_id"] for c in finals} == {zhang.member_id}
        assert {c["name"] for c in finals} == {"张三"}
        assert any(not c["final"] for c in host.captions), "no interim captions came first"
        starts = [c["start"] for c in finals]
        assert starts == sorted(starts)
    finally:
        await zhang.close()
        await host.close()

    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            lines = (
                await session.scalars(
                    select(TranscriptLine).where(TranscriptLine.session_id == session_id)
                )
            ).all()
    finally:
        await db.dispose()
    assert lines and {line.name for line in lines} == {"张三"}
    assert wer(" ".join(SENTENCES), " ".join(line.text for line in lines)) <= WER_BOUND
