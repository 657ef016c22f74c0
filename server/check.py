"""``yizhan check``: what the configuration resolves to, and whether each part answers."""

from __future__ import annotations

from server.config import Settings
from server.db.engine import Database, DatabaseUnavailable
from server.db.migrate import current_revision, head_revision
from storage.location import StorageConfigError, StorageUnavailable, parse, probe
from transcription.models import ModelNotFound, compute_for, resolve


def _line(label: str, value: str, ok: bool, detail: str) -> str:
    mark = "ok  " if ok else "FAIL"
    return f"[{mark}] {label:<14} {value}\n        {detail}"


async def run_checks(settings: Settings) -> int:
    failures = 0
    print(f"data directory   {settings.data_dir}")
    print("secret key       set (from YIZHAN_SECRET_KEY or the data directory; never shown)")

    db = Database(settings.database_url)
    try:
        await db.ping()
        current, head = await current_revision(db), head_revision()
        migrated = current == head
        detail = f"reachable; schema {current or 'empty'}" + (
            "" if migrated else f", needs {head}: run `yizhan migrate`"
        )
        print(_line("database", db.display_url(), migrated, detail))
        failures += not migrated
    except DatabaseUnavailable as exc:
        print(_line("database", db.display_url(), False, f"unreachable: {exc}"))
        failures += 1
    finally:
        await db.dispose()

    try:
        location = parse(settings.storage_url)
        detail = await probe(location)
        print(_line("object store", location.display(), True, detail))
    except (StorageConfigError, StorageUnavailable) as exc:
        print(_line("object store", settings.storage_url.split("@")[-1], False, str(exc)))
        failures += 1

    try:
        model = resolve(settings.asr_model, settings.data_dir / "models")
        compute = compute_for(settings.asr_device)
        detail = (
            f"{model.path} from {model.source}; {compute.device} {compute.compute_type}, "
            f"{settings.asr_cpu_threads} CPU threads, language {settings.asr_language}"
        )
        print(_line("speech model", model.name, True, detail))
    except ModelNotFound as exc:
        print(_line("speech model", settings.asr_model, False, str(exc)))
        failures += 1
    print("all parts ready" if not failures else f"{failures} part(s) not ready")
    return 0 if not failures else 1
