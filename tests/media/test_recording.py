"""Recording encoded packets into WebM segments: the writer asks PyAV for no codec
(its codec factory is refused while recording), video segments start on keyframes,
segments cover the track without gaps or overlaps, each opens with PyAV and its hash is
the file's. The packets are made beforehand with PyAV's VP8 and Opus encoders, without
the durations RTP does not carry."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from media.recording import ClosedSegment, SegmentWriter, vp8_size
from tests.media.packets import opus_packets, vp8_packets

SECONDS = 25
FPS = 30
GOP = 2 * FPS  # a keyframe every two seconds, as a browser sends without PLIs


@pytest.fixture(scope="module")
def video() -> list[Any]:
    return vp8_packets(SECONDS, gop=GOP)


@pytest.fixture(scope="module")
def audio() -> list[Any]:
    return opus_packets(SECONDS)


@pytest.fixture
def no_codecs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Asking PyAV for a decoder or encoder while recording fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a codec was created while recording: {args}")

    monkeypatch.setattr(av.CodecContext, "create", refuse)
    yield


def record(folder: Path, kind: str, packets: list[Any], **options: Any) -> SegmentWriter:
    writer = SegmentWriter(folder, f"member-{kind}", kind, **options)  # type: ignore[arg-type]
    for packet in packets:
        writer.write(packet)
    writer.close()
    return writer


def demuxed(segment: ClosedSegment) -> tuple[str, int, float]:
    """Codec, packet count and duration (seconds) as PyAV reads the file back."""
    with av.open(str(segment.path)) as container:
        stream = container.streams[0]
        count = sum(1 for packet in container.demux(stream) if packet.size)
        return stream.codec_context.name, count, float(container.duration or 0) / 1e6


def test_video_is_cut_into_segments_on_keyframes_without_a_codec(
    video: list[Any], tmp_path: Path, no_codecs: None
) -> None:
    asked: list[int] = []
    writer = record(
        tmp_path, "video", video, segment_seconds=9.5, request_keyframe=lambda: asked.append(1)
    )
    segments = writer.closed
    # due at 9.5 s, cut at the next keyframe (every 2 s): 0-10, 10-20, 20-25 s
    assert len(segments) == 3
    assert len(asked) == 2, "the writer asks for a keyframe when a segment is due to end"
    for segment in segments:
        codec, count, _ = demuxed(segment)
        assert codec == "vp8" and count == segment.packets
        assert segment.sha256 == hashlib.sha256(segment.path.read_bytes()).hexdigest()
        first = next(p for p in video if p.pts is not None and p.pts * p.time_base == segment.start)
        assert vp8_size(bytes(first)) == (320, 240)  # it starts on a keyframe
    # together they hold every packet, in order, with no gap between segments
    assert sum(s.packets for s in segments) == len(video)
    for before, after in itertools.pairwise(segments):
        assert after.start == pytest.approx(before.end, abs=0.5 / FPS)
    assert segments[0].start == 0.0
    assert segments[-1].end == pytest.approx(SECONDS, abs=1 / FPS)


def test_audio_segments_cover_the_track_and_open_as_opus(
    audio: list[Any], tmp_path: Path, no_codecs: None
) -> None:
    closed: list[ClosedSegment] = []
    writer = record(tmp_path, "audio", audio, segment_seconds=10.0, on_closed=closed.append)
    assert closed == writer.closed and len(closed) == 3
    total = 0.0
    for segment in closed:
        codec, count, seconds = demuxed(segment)
        assert codec == "opus" and count == segment.packets
        total += seconds
    assert total == pytest.approx(SECONDS, abs=0.05)


def test_video_before_the_first_keyframe_is_dropped_and_a_keyframe_asked_for(
    video: list[Any], tmp_path: Path
) -> None:
    asked: list[int] = []
    late = [p for p in video if p.pts is not None and p.pts >= 3000 * 5]  # joins mid-GOP
    writer = record(tmp_path, "video", late, request_keyframe=lambda: asked.append(1))
    assert asked and writer.dropped > 0
    first = writer.closed[0]
    assert first.start == pytest.approx(2.0, abs=1 / FPS)  # the next keyframe
