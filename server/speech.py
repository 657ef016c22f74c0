"""Starting the speech engine from the settings: the model found offline, int8 on the
CPU or float16 on a GPU, the court's language (English for an English-only model)."""

from __future__ import annotations

from collections.abc import Callable

from server.config import Settings
from transcription.engine import Engine
from transcription.models import compute_for, resolve


async def load_engine(
    settings: Settings,
    *,
    language: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Engine:
    model = resolve(settings.asr_model, settings.data_dir / "models")
    compute = compute_for(settings.asr_device)
    engine = Engine(
        model.path,
        device=compute.device,
        compute_type=compute.compute_type,
        cpu_threads=settings.asr_cpu_threads,
        workers=settings.asr_workers,
        max_streams=settings.asr_max_streams,
        language=(language or settings.asr_language) if model.multilingual else "en",
    )
    await engine.start(progress=progress)
    return engine
