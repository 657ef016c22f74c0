"""Fixtures of the engine tests: a folder for synthetic speech and models, tiny.en."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.transcription.streams import model
from transcription.engine import Engine


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="module")
def tiny_en(folder: Path) -> Path:
    return model("tiny.en", folder / "models")


@pytest.fixture
async def engine(tiny_en: Path) -> AsyncIterator[Engine]:
    eng = Engine(tiny_en, language="en", max_streams=2)
    await eng.start()
    yield eng
    await eng.close()
