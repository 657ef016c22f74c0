"""Transcript exports."""

from __future__ import annotations

import json

from transcription.formats import Speaker, cues, timestamp, to_json, to_srt, to_text, to_webvtt
from transcription.stream import Segment

SPEAKERS = {"m1": Speaker("Li Ming", "Mediator"), "m2": Speaker("Wang <A>", "Applicant")}


def seg(stream: str, text: str, start: float, end: float, final: bool = True) -> Segment:
    return Segment(stream, text, start, end, final, "en")


SEGMENTS = [
    seg("m1", "The court will", 1.0, 2.0),
    seg("m1", "now hear the case.", 2.1, 3.5),
    seg("m1", "ignored interim", 3.6, 4.0, final=False),
    seg("m2", "I agree & accept.", 3725.25, 3727.5),
]


def test_timestamps_carry_hours() -> None:
    assert timestamp(0) == "00:00:00.000"
    assert timestamp(3725.25) == "01:02:05.250"
    assert timestamp(3725.25, ",") == "01:02:05,250"
    assert timestamp(360000.0) == "100:00:00.000"


def test_a_speakers_pieces_merge_into_one_line_until_a_sentence_ends() -> None:
    lines = cues(SEGMENTS, SPEAKERS)
    assert [(c.text, c.speaker) for c in lines] == [
        ("The court will now hear the case.", "Li Ming"),
        ("I agree & accept.", "Wang <A>"),
    ]
    assert (lines[0].start, lines[0].end) == (1.0, 3.5)


def test_webvtt_has_voice_tags_and_escapes() -> None:
    vtt = to_webvtt(cues(SEGMENTS, SPEAKERS))
    assert vtt.startswith("WEBVTT\n\n1\n00:00:01.000 --> 00:00:03.500\n")
    assert "<v Li Ming (Mediator)>The court will now hear the case.</v>" in vtt
    assert (
        "01:02:05.250 --> 01:02:07.500\n<v Wang &lt;A&gt; (Applicant)>I agree &amp; accept.</v>"
        in vtt
    )


def test_srt_text_and_json() -> None:
    lines = cues(SEGMENTS, SPEAKERS)
    srt = to_srt(lines)
    assert "2\n01:02:05,250 --> 01:02:07,500\nWang <A> (Applicant): I agree & accept.\n" in srt
    assert to_text(lines).splitlines()[1] == "[01:02:05] Wang <A> (Applicant): I agree & accept."
    data = json.loads(to_json(lines))
    assert data[0] == {
        "start": 1.0,
        "end": 3.5,
        "speaker": "Li Ming",
        "seat": "Mediator",
        "stream": "m1",
        "text": "The court will now hear the case.",
    }


def test_chinese_pieces_merge_without_spaces() -> None:
    segments = [seg("m1", "今天开庭", 0.0, 1.0), seg("m1", "审理合同纠纷。", 1.2, 2.0)]
    assert cues(segments, {})[0].text == "今天开庭审理合同纠纷。"
    assert cues(segments, {})[0].speaker == "m1"
