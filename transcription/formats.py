"""Transcript exports: final Segments with their speakers → WebVTT, SRT, plain text, JSON.

:func:`cues` turns final Segments (ordered by time) into :class:`Cue` s, naming each
stream's speaker and seat and merging a speaker's consecutive short pieces into caption
lines. The writers then format them; times are ``HH:MM:SS.mmm`` (VTT) and
``HH:MM:SS,mmm`` (SRT), hours unbounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from transcription.agreement import SENTENCE_END, Token, join
from transcription.stream import Segment


@dataclass(frozen=True)
class Speaker:
    name: str
    seat: str = ""  # e.g. "Mediator", "Applicant"


@dataclass(frozen=True)
class Cue:
    """One caption line: a speaker's words between two times (seconds)."""

    start: float
    end: float
    text: str
    speaker: str
    seat: str
    stream: str


def cues(
    segments: Iterable[Segment],
    speakers: Mapping[str, Speaker],
    *,
    max_gap: float = 1.0,
    max_chars: int = 84,
) -> list[Cue]:
    """Final Segments as caption lines, a speaker's adjacent pieces merged.

    A line closes at a sentence end, a pause over ``max_gap`` seconds, another speaker or
    ``max_chars`` characters.
    """
    out: list[Cue] = []
    for segment in sorted((s for s in segments if s.final and s.text.strip()), key=_order):
        who = speakers.get(segment.stream, Speaker(segment.stream))
        if out:
            last = out[-1]
            merged = join([Token(last.text, 0, 0), Token(segment.text.strip(), 0, 0)])
            if (
                last.stream == segment.stream
                and segment.start - last.end <= max_gap
                and last.text[-1:] not in SENTENCE_END
                and len(merged) <= max_chars
            ):
                out[-1] = Cue(last.start, max(last.end, segment.end), merged, *_who(last))
                continue
        out.append(
            Cue(
                segment.start, segment.end, segment.text.strip(), who.name, who.seat, segment.stream
            )
        )
    return out


def _order(segment: Segment) -> tuple[float, float]:
    return (segment.start, segment.end)


def _who(cue: Cue) -> tuple[str, str, str]:
    return (cue.speaker, cue.seat, cue.stream)


def timestamp(seconds: float, separator: str = ".") -> str:
    """``HH:MM:SS.mmm`` (hours may exceed 99); negative times clamp to zero."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _label(cue: Cue) -> str:
    return f"{cue.speaker} ({cue.seat})" if cue.seat else cue.speaker


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(text: str) -> str:
    # a blank line would end a cue early; keep each cue's text on one line
    return " ".join(text.split())


def to_webvtt(lines: Sequence[Cue]) -> str:
    """WebVTT with ``<v Speaker (seat)>`` voice tags."""
    parts = ["WEBVTT", ""]
    for i, cue in enumerate(lines, 1):
        voice = _vtt_escape(_one_line(_label(cue)))
        parts += [
            str(i),
            f"{timestamp(cue.start)} --> {timestamp(max(cue.end, cue.start + 0.001))}",
            f"<v {voice}>{_vtt_escape(_one_line(cue.text))}</v>",
            "",
        ]
    return "\n".join(parts)


def to_srt(lines: Sequence[Cue]) -> str:
    """SubRip; the speaker leads each cue's text."""
    parts: list[str] = []
    for i, cue in enumerate(lines, 1):
        end = max(cue.end, cue.start + 0.001)
        parts += [
            str(i),
            f"{timestamp(cue.start, ',')} --> {timestamp(end, ',')}",
            f"{_one_line(_label(cue))}: {_one_line(cue.text)}",
            "",
        ]
    return "\n".join(parts)


def to_text(lines: Sequence[Cue]) -> str:
    """``[HH:MM:SS] Speaker (seat): text``, one line each."""
    return "".join(
        f"[{timestamp(cue.start)[:8]}] {_label(cue)}: {_one_line(cue.text)}\n" for cue in lines
    )


def to_json(lines: Sequence[Cue]) -> str:
    """A JSON array of ``{start, end, speaker, seat, stream, text}``, times in seconds."""
    return json.dumps(
        [
            {
                "start": round(cue.start, 3),
                "end": round(cue.end, 3),
                "speaker": cue.speaker,
                "seat": cue.seat,
                "stream": cue.stream,
                "text": cue.text,
            }
            for cue in lines
        ],
        ensure_ascii=False,
        indent=1,
    )
