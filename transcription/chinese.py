"""Chinese output clean-up: Simplified characters and full-width punctuation.

Whisper often answers Mandarin in Traditional characters and with ASCII punctuation.
Conversion uses OpenCC's ``t2s`` tables (``opencc-python-reimplemented``, Apache-2.0);
punctuation between or after Chinese characters becomes full width (，。？！：；),
while punctuation inside Latin text and numbers (3.5, 10:30) is left alone.
"""

from __future__ import annotations

import functools
import re

from opencc import OpenCC  # type: ignore[import-untyped]

from transcription.agreement import is_cjk

FULL_WIDTH = {
    ",": "，",
    ".": "。",
    "?": "？",
    "!": "！",
    ":": "：",
    ";": "；",
    "(": "（",
    ")": "）",
}
_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_PUNCT = re.compile(r"(?<=" + _HAN + r")\s*([,.?!:;])(?!\d)\s*")
_OPEN = re.compile(r"\(\s*(?=" + _HAN + r")")
_CLOSE = re.compile(r"(?<=" + _HAN + r")\s*\)")
_SPACE_BETWEEN_HAN = re.compile(r"(?<=" + _HAN + r")\s+(?=" + _HAN + r")")


@functools.cache
def _converter() -> OpenCC:
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → Simplified characters (phrase-aware); other text unchanged."""
    if not any(is_cjk(c) for c in text):
        return text
    return str(_converter().convert(text))


def punctuate(text: str) -> str:
    """Full-width punctuation after Chinese characters; no stray spaces between them."""
    text = _PUNCT.sub(lambda m: FULL_WIDTH[m.group(1)], text)
    text = _OPEN.sub("（", text)
    text = _CLOSE.sub("）", text)
    text = _SPACE_BETWEEN_HAN.sub("", text)
    return text.replace("...", "…")


def normalise(text: str) -> str:
    """Simplified characters and full-width punctuation."""
    return punctuate(to_simplified(text))
