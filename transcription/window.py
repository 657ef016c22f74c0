"""One Whisper decode over a short encoder window instead of the padded 30 s.

``WhisperModel.transcribe`` pads every input to 3000 mel frames, so a 3-s buffer costs
as much to encode as 30 s. Here the mel features are padded only to the next whole
second plus one (within 30 s), encoded, decoded once with timestamps and, if asked,
aligned for word times, with faster-whisper's own pieces (``get_prompt``,
``_split_segments_by_timestamps``, ``add_word_timestamps``). No temperature fallback,
one window: a streaming buffer is under 30 s.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from transcription.agreement import key
from transcription.vad import SAMPLE_RATE, Audio

FRAMES_PER_SECOND = 100
MAX_FRAMES = 3000
PREPEND = "\"'“¿([{-"
APPEND = "\"'.。,，!！?？:：”)]}、"


def window_frames(content_frames: int) -> int:
    """The encoder window for ``content_frames``: the next whole second plus two.

    Two seconds of padding let the decoder see that the speech has stopped; with less,
    it tends to repeat itself at the end of the window.
    """
    seconds = math.ceil(content_frames / FRAMES_PER_SECOND) + 2
    return min(MAX_FRAMES, seconds * FRAMES_PER_SECOND)


def decode_window(
    model: Any,
    audio: Audio,
    *,
    language: str | None,
    prompt: str,
    beam_size: int,
    max_new_tokens: int,
    word_timestamps: bool,
) -> list[tuple[str, float, float]]:
    """Words (text, start, end) of ``audio`` (at most 30 s), times from its start."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    audio = audio[: MAX_FRAMES * SAMPLE_RATE // FRAMES_PER_SECOND]
    features = model.feature_extractor(audio)
    content = min(features.shape[-1] - 1, MAX_FRAMES)
    frames = window_frames(content)
    padded = np.zeros((features.shape[0], frames), dtype=features.dtype)
    padded[:, :content] = features[:, :content]
    encoder_output = model.encode(padded)

    tokenizer = Tokenizer(
        model.hf_tokenizer,
        model.model.is_multilingual,
        task="transcribe",
        language=language if model.model.is_multilingual else "en",
    )
    previous = tokenizer.encode(" " + prompt.strip()) if prompt.strip() else []
    tokens_prompt = model.get_prompt(tokenizer, previous[-(model.max_length // 2 - 1) :])
    result = model.model.generate(
        encoder_output,
        [tokens_prompt],
        beam_size=beam_size,
        max_length=min(model.max_length, len(tokens_prompt) + max_new_tokens),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
    )[0]
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0]  # length-normalised by the generator
    if result.no_speech_prob > 0.8 and avg_logprob < -1.0:
        return []
    duration = content / FRAMES_PER_SECOND
    segments, _, _ = model._split_segments_by_timestamps(
        tokenizer=tokenizer,
        tokens=tokens,
        time_offset=0.0,
        segment_size=content,
        segment_duration=duration,
        seek=0,
    )
    if word_timestamps:
        model.add_word_timestamps(
            [segments], tokenizer, encoder_output, content, PREPEND, APPEND, 0.0
        )
        words = [
            (str(w["word"]), float(w["start"]), min(float(w["end"]), duration))
            for segment in segments
            for w in segment.get("words", [])
        ]
        # words squeezed onto the very end of the audio were not heard there
        while words and words[-1][1] >= duration - 0.05 and words[-1][2] - words[-1][1] < 0.02:
            words.pop()
        return cut_repeats(words)
    out: list[tuple[str, float, float]] = []
    for segment in segments:
        text = tokenizer.decode([t for t in segment["tokens"] if t < tokenizer.eot]).strip()
        if text:
            out.append((text, float(segment["start"]), float(segment["end"])))
    return cut_repeats(out)


def cut_repeats(words: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Cut a hypothesis where a run of three or more words repeats straight away."""
    keys = [key(w[0]) for w in words]
    for i in range(len(keys)):
        for n in range(3, (len(keys) - i) // 2 + 1):
            if keys[i : i + n] == keys[i + n : i + 2 * n]:
                return words[: i + n]
    return words
