"""``yizhan transcribe FILE``: the same engine as the rooms, on a file, from the shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.transcription.speech import conversation, have_tools, wer, write_wav

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not have_tools(), reason="needs espeak-ng and sox (scripts/test installs them)"
    ),
]
REPO = Path(__file__).resolve().parents[2]
SENTENCES = ["The court opened the hearing in the morning.", "Both parties were present."]


def yizhan(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")},
        "YIZHAN_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )


def test_a_file_is_transcribed_with_progress_in_each_format(tmp_path: Path) -> None:
    pcm, _ = conversation(SENTENCES, tmp_path)
    wav = write_wav(tmp_path / "hearing.wav", pcm)
    done = yizhan(tmp_path, "transcribe", str(wav), "--model", "tiny.en", "--format", "json")
    assert done.returncode == 0, done.stderr
    text = " ".join(cue["text"] for cue in json.loads(done.stdout))
    assert wer(" ".join(SENTENCES), text) <= 0.3, done.stdout
    assert "100.0%" in done.stderr  # progress was shown
    done = yizhan(tmp_path, "transcribe", str(wav), "--model", "tiny.en", "--format", "vtt")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("WEBVTT") and " --> " in done.stdout


def test_a_missing_file_or_model_is_a_clear_error(tmp_path: Path) -> None:
    done = yizhan(tmp_path, "transcribe", str(tmp_path / "nothing.wav"))
    assert done.returncode == 2 and "no such file" in done.stderr
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    done = yizhan(tmp_path, "transcribe", str(tmp_path / "x.wav"), "--model", "large-v9")
    assert done.returncode == 2 and "large-v9" in done.stderr
