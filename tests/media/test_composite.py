"""Playable files from recorded segments: a participant's file copies the recorded packets
(no codec is created, the payloads are the same bytes) onto the recording's timeline, gaps
kept; the composite opens with picture and sound for the whole recording, shows the dark
tile where a camera dropped, reports its progress up to 1.0; a damaged segment or a
failing ffmpeg is a CompositeError that says why.

The segments are written by the recorder's own SegmentWriter from packets made with
PyAV's VP8 and Opus encoders, without the durations RTP does not carry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import pytest

from media.composite import (
    CompositeError,
    Participant,
    SegmentFile,
    Track,
    cjk_font,
    composite,
    grid,
    participant_file,
    timezone_env,
)
from media.recording import SegmentWriter
from tests.media.packets import opus_packets as make_opus
from tests.media.packets import vp8_packets as make_vp8

FPS = 15
SECONDS = 6
DURATION = 6.5  # the recording ended a little after the last packet
GAP = (2.0, 4.0)  # 张三's connection dropped
VIDEO_SIZE = (160, 120)
BRIGHT = 200


def vp8_packets(seconds: int = SECONDS) -> list[Any]:
    return make_vp8(seconds, size=VIDEO_SIZE, fps=FPS, gop=FPS, shade=lambda i: BRIGHT - i % 20)


def opus_packets(seconds: int = SECONDS) -> list[Any]:
    return make_opus(seconds)


def seconds_of(packet: Any) -> float:
    return float(packet.pts * packet.time_base)


def record(
    folder: Path, track: str, kind: str, packets: list[Any], offset: float = 0.0
) -> list[SegmentFile]:
    """Segments of ``packets`` as the recorder writes them, placed ``offset`` seconds
    later on the recording's timeline."""
    writer = SegmentWriter(folder, track, kind, segment_seconds=2.5)  # type: ignore[arg-type]
    for packet in packets:
        writer.write(packet)
    writer.close()
    return [SegmentFile(s.path, s.start + offset, s.end + offset) for s in writer.closed]


def within(packets: list[Any], start: float, end: float = 99.0) -> list[Any]:
    return [p for p in packets if start <= seconds_of(p) < end]


@dataclass(frozen=True)
class Session:
    zhang: Participant  # camera and microphone, with a gap
    li: Participant  # microphone only
    wang: Participant  # camera and microphone, joined half a second late
    recorded: dict[str, list[float]]  # when 张三's packets were sent, by kind

    @property
    def everyone(self) -> list[Participant]:
        return [self.zhang, self.li, self.wang]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    folder = tmp_path_factory.mktemp("segments")
    video, audio = vp8_packets(), opus_packets()
    # the gap: the writer is closed at the drop, and a new one starts on the reconnection
    zhang_video = record(folder, "zhang.camera.a", "video", within(video, -1, GAP[0]))
    zhang_video += record(folder, "zhang.camera.b", "video", within(video, GAP[1]))
    zhang_audio = record(folder, "zhang.mic.a", "audio", within(audio, -1, GAP[0]))
    zhang_audio += record(folder, "zhang.mic.b", "audio", within(audio, GAP[1]))
    short_audio = audio[: 4 * 50]
    sent = {
        kind: [seconds_of(p) for p in within(packets, -1, GAP[0]) + within(packets, GAP[1])]
        for kind, packets in (("video", video), ("audio", audio))
    }
    return Session(
        zhang=Participant(
            "user:1",
            "张三",
            "申请人",
            (
                Track("mic", "audio", tuple(zhang_audio)),
                Track("camera", "video", tuple(zhang_video)),
            ),
        ),
        li=Participant(
            "user:2",
            "Li Si",
            "Respondent",
            (Track("mic", "audio", tuple(record(folder, "li.mic", "audio", short_audio, 1.0))),),
        ),
        wang=Participant(
            "user:3",
            "王五",
            "调解员",
            (
                Track("mic", "audio", tuple(record(folder, "wang.mic", "audio", audio, 0.5))),
                Track("camera", "video", tuple(record(folder, "wang.cam", "video", video, 0.5))),
            ),
        ),
        recorded=sent,
    )


@pytest.fixture
def no_codecs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Asking PyAV for a codec, or to decode or encode anything, fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a codec was used: {args}")

    monkeypatch.setattr(av.CodecContext, "create", refuse)
    for owner in (av.CodecContext, av.container.InputContainer, av.Packet):
        monkeypatch.setattr(owner, "decode", refuse)
    monkeypatch.setattr(av.CodecContext, "encode", refuse)
    yield


def demuxed(path: Path) -> dict[str, list[tuple[float, bytes]]]:
    """Each stream's packets as (seconds, payload)."""
    found: dict[str, list[tuple[float, bytes]]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                found.setdefault(packet.stream.type, []).append((seconds_of(packet), bytes(packet)))
    return found


def payloads(segments: tuple[SegmentFile, ...]) -> list[bytes]:
    out: list[bytes] = []
    for segment in sorted(segments, key=lambda s: s.start):
        with av.open(str(segment.path)) as container:
            out += [bytes(p) for p in container.demux() if p.size]
    return out


def duration(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / 1e6


def test_a_participant_file_copies_the_packets_onto_the_timeline_with_the_gap(
    session: Session, tmp_path: Path, no_codecs: None
) -> None:
    made = participant_file(session.zhang, tmp_path / "zhang.webm")
    assert made.has_video
    streams = demuxed(made.path)
    assert sorted(streams) == ["audio", "video"]
    with av.open(str(made.path)) as container:
        assert [s.codec_context.name for s in container.streams] == ["opus", "vp8"]
    # the same bytes as recorded, in the same order: nothing was decoded or encoded
    [mic, camera] = session.zhang.tracks
    assert [data for _, data in streams["audio"]] == payloads(mic.segments)
    assert [data for _, data in streams["video"]] == payloads(camera.segments)
    for kind in ("video", "audio"):
        # each packet where it was sent (to WebM's millisecond): the gap stays a gap
        times = [at for at, _ in streams[kind]]
        expected = [max(0.0, at) for at in session.recorded[kind]]
        assert times == pytest.approx(expected, abs=0.001), kind
        assert not [at for at in times if GAP[0] + 0.01 < at < GAP[1] - 0.01]
    assert made.duration == pytest.approx(SECONDS, abs=1 / FPS)
    assert duration(made.path) == pytest.approx(SECONDS, abs=1 / FPS)


def test_a_late_joiner_starts_at_their_offset_and_audio_only_stays_audio_only(
    session: Session, tmp_path: Path, no_codecs: None
) -> None:
    wang = participant_file(session.wang, tmp_path / "wang.webm")
    streams = demuxed(wang.path)
    assert streams["video"][0][0] == pytest.approx(0.5, abs=0.001)
    assert streams["audio"][0][0] == pytest.approx(0.5, abs=0.01)
    assert wang.duration == pytest.approx(SECONDS + 0.5, abs=1 / FPS)

    li = participant_file(session.li, tmp_path / "li.webm")
    assert not li.has_video
    streams = demuxed(li.path)
    assert list(streams) == ["audio"]
    assert streams["audio"][0][0] == pytest.approx(1.0, abs=0.01)
    assert li.duration == pytest.approx(5.0, abs=0.03)
    assert duration(li.path) == pytest.approx(5.0, abs=0.03)


def mean_brightness(frame: Any, x: int, y: int, w: int, h: int) -> float:
    plane = frame.to_ndarray(format="gray")
    return float(plane[y : y + h, x : x + w].mean())


def frame_at(path: Path, at: float) -> Any:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time >= at:
                return frame
    raise AssertionError(f"no frame at {at} s")


@pytest.mark.parametrize("file_format", ["mp4", "webm"])
async def test_the_composite_covers_the_recording_with_picture_and_sound(
    session: Session, tmp_path: Path, file_format: str
) -> None:
    seen: list[float] = []
    out = tmp_path / f"session.{file_format}"
    made = await composite(
        session.everyone,
        out,
        duration=DURATION,
        started_at=datetime(2026, 3, 2, 1, 30, tzinfo=UTC),
        timezone="Asia/Shanghai",
        file_format=file_format,  # type: ignore[arg-type]
        progress=seen.append,
        work_folder=tmp_path / "work",
    )
    assert made.path == out and out.stat().st_size > 0
    assert seen and seen == sorted(seen) and seen[-1] == 1.0
    assert list((tmp_path / "work").iterdir()) == []  # its temporary files are gone
    with av.open(str(out)) as container:
        assert container.streams.video and container.streams.audio
        video = container.streams.video[0]
        layout = grid(3)
        assert (video.codec_context.width, video.codec_context.height) == (
            layout.width,
            layout.height,
        )
        expected = {"mp4": ("h264", "aac"), "webm": ("vp8", "opus")}[file_format]
        assert (video.codec_context.name, container.streams.audio[0].codec_context.name) == (
            expected
        )
    assert duration(out) == pytest.approx(DURATION, abs=0.2)
    # 张三's tile (top left) shows his camera, then the dark tile while he was away
    corner = (layout.tile_width // 4, layout.tile_height // 8, 60, 30)
    assert mean_brightness(frame_at(out, 1.0), *corner) > 120
    assert mean_brightness(frame_at(out, 3.0), *corner) < 50
    assert mean_brightness(frame_at(out, 5.0), *corner) > 120


def test_the_labels_use_a_font_with_chinese_glyphs() -> None:
    assert "CJK" in cjk_font().name


def test_the_clock_uses_the_court_s_time_zone_even_without_the_system_s_database(
    tmp_path: Path,
) -> None:
    start = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
    assert timezone_env("Asia/Shanghai", start) == "Asia/Shanghai"
    # without /usr/share/zoneinfo: the offset at the start, as POSIX writes it
    assert timezone_env("Asia/Shanghai", start, tmp_path) == "<+0800>-08:00"
    assert timezone_env("America/New_York", start, tmp_path) == "<-0400>+04:00"
    assert timezone_env("Asia/Kolkata", start, tmp_path) == "<+0530>-05:30"


def test_the_grid_stays_within_720p_with_even_sizes() -> None:
    for count in range(1, 17):
        layout = grid(count)
        assert layout.width <= 1280 and layout.height <= 720
        assert layout.tile_width % 2 == 0 and layout.tile_height % 2 == 0
        rows = -(-count // layout.columns)
        assert layout.columns * rows >= count


def test_a_damaged_segment_is_a_clear_error(session: Session, tmp_path: Path) -> None:
    broken = tmp_path / "broken.webm"
    broken.write_bytes(b"\x1a\x45\xdf\xa3 not a webm file at all")
    person = Participant(
        "user:9", "赵六", "", (Track("mic", "audio", (SegmentFile(broken, 0.0, 2.0),)),)
    )
    with pytest.raises(CompositeError, match=r"broken\.webm could not be read"):
        participant_file(person, tmp_path / "out.webm")
    assert not (tmp_path / "out.webm").exists()


async def test_a_failing_ffmpeg_is_a_clear_error_with_its_output(
    session: Session, tmp_path: Path
) -> None:
    out = tmp_path / "no such folder" / "session.mp4"
    with pytest.raises(CompositeError) as raised:
        await composite(
            [session.li],
            out,
            duration=2.0,
            started_at=datetime(2026, 3, 2, tzinfo=UTC),
            timezone="Asia/Shanghai",
        )
    message = str(raised.value)
    assert "ffmpeg failed" in message and "no such folder" in message  # ffmpeg's own words
    assert raised.value.stderr
