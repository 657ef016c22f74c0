"""The speech engine that background jobs share: one per process, loaded on first use.

Loading reports its steps (msgids) to the job that waits for it, so the model's
loading shows as that job's first stage.  A failure is not remembered: the next job
tries again (an administrator may have installed the model meanwhile).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.config import Settings
from server.domain.errors import N_
from server.jobs.errors import JobFailed
from server.speech import load_engine
from transcription.engine import Engine
from transcription.models import ModelNotFound, resolve

NO_MODEL = N_("The speech model is not installed. The court's administrator has been told.")

Loader = Callable[..., Awaitable[Engine]]


@dataclass(frozen=True)
class LoadedEngine:
    engine: Engine
    multilingual: bool  # False: an English-only model, whatever the session's language


class SharedEngine:
    def __init__(self, settings: Settings, load: Loader = load_engine) -> None:
        self.settings = settings
        self._load = load
        self._loaded: LoadedEngine | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    async def get(self, progress: Callable[[str], None] | None = None) -> LoadedEngine:
        async with self._lock:
            if self._loaded is None:
                settings = self.settings
                try:
                    model = await asyncio.to_thread(
                        resolve, settings.asr_model, settings.data_dir / "models"
                    )
                    engine = await self._load(settings, progress=progress)
                except ModelNotFound as exc:
                    raise JobFailed(NO_MODEL, str(exc)) from exc
                self._loaded = LoadedEngine(engine, model.multilingual)
            return self._loaded

    async def close(self) -> None:
        async with self._lock:
            if self._loaded is not None:
                await self._loaded.engine.close()
                self._loaded = None
