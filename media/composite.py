"""Playable files from a recording's WebM segments, made after the session.

Two kinds of file, both on the recording's timeline (second 0 is when it started):

* a participant file (:func:`participant_file`): one participant's microphone (Opus)
  and camera (VP8) segments joined into one WebM with an audio and a video stream.
  Nothing is decoded or encoded: the packets are copied as they were recorded, each
  shifted to its segment's offset on the timeline, so a gap (a dropped connection, a
  pause) stays a gap and sound and picture stay in step. Someone without a camera gets
  an audio-only file.
* the session composite (:func:`composite`): the only file that is re-encoded. The
  ``ffmpeg`` binary decodes every track and lays the pictures out in a grid (one tile
  per participant, screen shares as tiles of their own, a dark tile with the name where
  there is no picture), labels each tile with the name and seat in a CJK font, burns in
  a clock showing the wall time in the court's time zone, mixes everyone's sound, and
  encodes H.264 + AAC in MP4 (``+faststart``) or VP8 + Opus in WebM, from 0 to the
  recording's end (black and silence where nothing was recorded). Output is kept small
  (at most 1280x720, 15 fps, fast presets) so a 2-core machine keeps up.

Nothing here knows about the database or HTTP: callers pass local segment files with
their offsets, and text that is already translated.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import av

log = logging.getLogger(__name__)

Kind = Literal["audio", "video"]
Format = Literal["mp4", "webm"]

MS = Fraction(1, 1000)  # WebM's clock
FPS = 15
MAX_SIZE = (1280, 720)
GAP = 0.25  # seconds without picture that count as a gap (more than a few frames)
STDERR_LINES = 30
CJK_FONT_NAME = "Noto Sans CJK SC"
KNOWN_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)
BACKGROUND = "0x161616"
TILE_EDGE = "0x303030"


class CompositeError(Exception):
    """Making a file failed; the message says why (with the tail of ffmpeg's output)."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(f"{message}\n{stderr}".strip() if stderr else message)
        self.stderr = stderr


# -- describing the inputs -------------------------------------------------------------


@dataclass(frozen=True)
class SegmentFile:
    """One recorded segment on disk, placed on the recording's timeline."""

    path: Path
    start: float  # seconds from the recording's start (RecordingSegment.start)
    end: float


@dataclass(frozen=True)
class Track:
    """One source of one participant: its segments, in any order."""

    source: str  # mic, camera, screen
    kind: Kind
    segments: tuple[SegmentFile, ...]
    label: str = ""  # a screen share's tile label; the participant's label if empty

    @property
    def end(self) -> float:
        return max((s.end for s in self.segments), default=0.0)


@dataclass(frozen=True)
class Participant:
    """Someone recorded: names already translated, as the labels will show them."""

    identity: str
    name: str
    seat: str
    tracks: tuple[Track, ...]

    def segments(self, source: str) -> list[SegmentFile]:
        return [s for t in self.tracks if t.source == source for s in t.segments]

    @property
    def label(self) -> str:
        return f"{self.name}  {self.seat}".strip()


@dataclass(frozen=True)
class Made:
    """A finished file."""

    path: Path
    duration: float  # seconds, from the timeline's 0 to the file's end
    has_video: bool


# -- participant files: remuxing without a codec -----------------------------------------


def _packets(segments: Sequence[SegmentFile], order: int) -> Iterator[tuple[float, int, Any]]:
    """(timeline seconds, stream order, packet) of each segment in turn, lazily."""
    for segment in sorted(segments, key=lambda s: s.start):
        try:
            with av.open(str(segment.path)) as container:
                stream = container.streams[0]
                origin: int | None = None
                for packet in container.demux(stream):
                    if packet.pts is None or not packet.size:
                        continue
                    if origin is None:
                        origin = int(packet.pts)
                    at = segment.start + float((packet.pts - origin) * packet.time_base)
                    yield at, order, packet
        except av.FFmpegError as exc:
            raise CompositeError(f"{segment.path.name} could not be read: {exc}") from exc


def _open_first(segments: Sequence[SegmentFile]) -> Any:
    """The first segment, opened to copy its stream's codec parameters."""
    first = min(segments, key=lambda s: s.start)
    try:
        container = av.open(str(first.path))
    except av.FFmpegError as exc:
        raise CompositeError(f"{first.path.name} could not be read: {exc}") from exc
    return container


def remux(streams: Sequence[Sequence[SegmentFile]], out: Path) -> Made:
    """Copy each list of segments into one stream of a WebM at ``out``, packets shifted
    onto the timeline; returns the file's end and whether it has a video stream."""
    streams = [s for s in streams if s]
    if not streams:
        raise CompositeError("there are no segments to join")
    templates = [_open_first(segments) for segments in streams]
    try:
        with av.open(str(out), "w", format="webm") as container:
            outputs = [container.add_stream_from_template(t.streams[0]) for t in templates]
            end, has_video = _copy(container, outputs, streams)
    except av.FFmpegError as exc:
        out.unlink(missing_ok=True)
        raise CompositeError(f"{out.name} could not be written: {exc}") from exc
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        for template in templates:
            template.close()
    return Made(out, end, has_video)


def _copy(
    container: Any, outputs: list[Any], streams: Sequence[Sequence[SegmentFile]]
) -> tuple[float, bool]:
    last = [-1] * len(outputs)
    end, has_video = 0.0, False
    merged = heapq.merge(
        *(_packets(segments, i) for i, segments in enumerate(streams)),
        key=lambda item: (item[0], item[1]),
    )
    for at, index, packet in merged:
        pts = max(0, round(at * 1000))
        if pts <= last[index]:  # overlapping segments: keep the stream in order
            log.warning("remux %s: a packet at %.3f s overlaps the one before", container.name, at)
            continue
        last[index] = pts
        duration = int(packet.duration or 0) * packet.time_base
        packet.stream = outputs[index]
        packet.pts = packet.dts = pts
        packet.duration = round(duration * 1000)
        packet.time_base = MS
        container.mux(packet)
        end = max(end, pts / 1000 + float(duration))
        has_video = has_video or outputs[index].type == "video"
    return end, has_video


def participant_file(participant: Participant, out: Path) -> Made:
    """The participant's microphone and camera, as recorded, in one WebM at ``out``."""
    mic, camera = participant.segments("mic"), participant.segments("camera")
    if not mic and not camera:
        raise CompositeError(f"{participant.identity} has no microphone or camera segments")
    return remux([mic, camera], out)


# -- the composite: layout ---------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    label: str
    name: str
    video: int | None  # the ffmpeg input with its picture
    absent: tuple[tuple[float, float], ...]  # stretches without picture
    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class Grid:
    width: int
    height: int
    tile_width: int
    tile_height: int
    columns: int


def even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def grid(count: int) -> Grid:
    """Columns and rows for ``count`` tiles of 16:9, within MAX_SIZE."""
    count = max(1, count)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tile_width = even(min(640, MAX_SIZE[0] / columns, MAX_SIZE[1] / rows * 16 / 9))
    tile_height = even(tile_width * 9 / 16)
    return Grid(columns * tile_width, rows * tile_height, tile_width, tile_height, columns)


def absent(segments: Iterable[SegmentFile], duration: float) -> tuple[tuple[float, float], ...]:
    """The stretches of [0, duration] no segment covers (shorter ones than GAP ignored)."""
    gaps: list[tuple[float, float]] = []
    cursor = 0.0
    for segment in sorted(segments, key=lambda s: s.start):
        if segment.start - cursor > GAP:
            gaps.append((cursor, min(segment.start, duration)))
        cursor = max(cursor, segment.end)
    if duration - cursor > GAP:
        gaps.append((cursor, duration))
    return tuple((a, b) for a, b in gaps if b > a)


@dataclass(frozen=True)
class Inputs:
    """What ffmpeg reads: one remuxed file per track, and the tiles and sounds."""

    files: list[Path]
    video: list[bool]
    tiles: list[Tile]
    audio: list[int]


def plan(participants: Sequence[Participant], duration: float, folder: Path) -> Inputs:
    """Remux every track into ``folder`` and lay out the tiles (blocking: run in a thread)."""
    files: list[Path] = []
    video: list[bool] = []
    tiles: list[Tile] = []
    audio: list[int] = []

    def add(segments: Sequence[SegmentFile]) -> int:
        path = folder / f"track-{len(files)}.webm"
        made = remux([segments], path)
        files.append(path)
        video.append(made.has_video)
        return len(files) - 1

    for person in participants:
        for track in person.tracks:
            if track.kind == "audio" and track.segments:
                audio.append(add(track.segments))
        cameras = [t for t in person.tracks if t.kind == "video" and t.source != "screen"]
        shown = [s for t in cameras for s in t.segments]
        tiles.append(
            Tile(
                person.label,
                person.name,
                add(shown) if shown else None,
                absent(shown, duration),
            )
        )
        for track in person.tracks:
            if track.kind == "video" and track.source == "screen" and track.segments:
                tiles.append(
                    Tile(
                        track.label or person.label,
                        person.name,
                        add(track.segments),
                        absent(track.segments, duration),
                    )
                )
    return Inputs(files, video, tiles, audio)


# -- the composite: filter graph ---------------------------------------------------------


def option(value: str) -> str:
    """A filter option value, escaped for the option parser and the graph parser."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\:")
    return "'" + escaped.replace("'", "'\\''") + "'"


def seconds(value: float) -> str:
    return f"{value:.3f}"


@cache
def cjk_font() -> Path:
    """A font with Chinese glyphs: fontconfig's Noto Sans CJK SC, else a known path."""
    found = _fc_match("%{file}").strip()
    if found and "CJK" in Path(found).name and Path(found).is_file():
        return Path(found)
    for known in KNOWN_CJK_FONTS:
        if Path(known).is_file():
            return Path(known)
    raise CompositeError(
        "no CJK font was found: install Noto Sans CJK (Debian: apt-get install fonts-noto-cjk)"
    )


@cache
def cjk_family() -> str:
    """The simplified-Chinese face by its fontconfig name, when fontconfig has it: a
    Noto CJK collection's first face (what ``fontfile`` gives) draws Japanese forms."""
    family = _fc_match("%{family}")
    return CJK_FONT_NAME if CJK_FONT_NAME in family.split(",") else ""


def _fc_match(element: str) -> str:
    """What fontconfig's best match for the CJK font says of ``element``; "" if unknown."""
    fc_match = shutil.which("fc-match")
    if not fc_match:
        return ""
    try:
        return subprocess.run(  # noqa: S603 (a fixed program and arguments, no shell)
            [fc_match, "-f", element, CJK_FONT_NAME],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


@dataclass(frozen=True)
class Texts:
    """Files holding the labels' text (drawtext reads them as they are: no escaping)."""

    folder: Path
    font: Path
    family: str = ""  # drawtext's fontconfig lookup, preferred to ``font`` when set

    def file(self, name: str, text: str) -> str:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return option(str(path))

    def draw(self, name: str, text: str, **options: str | int) -> str:
        face = (
            {"font": option(self.family)} if self.family else {"fontfile": option(str(self.font))}
        )
        values = {
            **face,
            "textfile": self.file(name, text),
            "expansion": "none",
            "fontcolor": "white",
            **options,
        }
        return "drawtext=" + ":".join(f"{k}={v}" for k, v in values.items())


def _enable(spans: Sequence[tuple[float, float]]) -> str:
    return option("+".join(f"between(t,{seconds(a)},{seconds(b)})" for a, b in spans))


def _tile_filters(tile: Tile, number: int, layout: Grid, texts: Texts) -> list[str]:
    w, h = layout.tile_width, layout.tile_height
    filters = [f"drawbox=x={tile.x}:y={tile.y}:w={w}:h={h}:color={TILE_EDGE}:t=2"]
    name = texts.draw(
        f"name-{number}.txt",
        tile.name,
        fontsize=max(16, h // 9),
        x=f"{tile.x}+({w}-tw)/2",
        y=f"{tile.y}+({h}-th)/2",
    )
    if tile.video is None:
        filters.append(name)
    elif tile.absent:
        cover = (
            f"drawbox=x={tile.x + 2}:y={tile.y + 2}:w={w - 4}:h={h - 4}:color={BACKGROUND}:t=fill"
        )
        filters += [
            f"{cover}:enable={_enable(tile.absent)}",
            f"{name}:enable={_enable(tile.absent)}",
        ]
    label = texts.draw(
        f"label-{number}.txt",
        tile.label,
        fontsize=max(12, h // 16),
        box=1,
        boxcolor="black@0.55",
        boxborderw=max(3, h // 60),
        x=f"{tile.x}+{max(6, w // 40)}",
        y=f"{tile.y}+{h}-th-{max(6, h // 24)}",
    )
    return [*filters, label]


def clock_text(started_at: datetime) -> str:
    """drawtext's expansion of the wall time: the start (epoch seconds) plus media time."""
    epoch = started_at.astimezone(UTC).timestamp()
    return f"%{{pts:localtime:{epoch:.3f}:%Y-%m-%d %H\\:%M\\:%S}}"


def timezone_env(
    timezone: str, started_at: datetime, zoneinfo: Path = Path("/usr/share/zoneinfo")
) -> str:
    """The TZ value for ffmpeg's localtime: the zone's name where the system knows it,
    else its offset at the start as a POSIX rule (which has the opposite sign)."""
    if (zoneinfo / timezone).is_file():
        return timezone
    offset = started_at.astimezone(ZoneInfo(timezone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    hours, rest = divmod(abs(minutes), 60)
    east = minutes >= 0
    return (
        f"<{'+' if east else '-'}{hours:02d}{rest:02d}>{'-' if east else '+'}{hours:02d}:{rest:02d}"
    )


def filter_graph(inputs: Inputs, duration: float, started_at: datetime, texts: Texts) -> str:
    """The graph: the canvas, each picture overlaid on its tile, the labels and the
    clock drawn on top (``[vout]``); silence mixed with every microphone (``[aout]``)."""
    tiles = inputs.tiles or [Tile("", "", None, ())]
    layout = grid(len(tiles))
    d = seconds(duration)
    lines = [f"color=c={BACKGROUND}:s={layout.width}x{layout.height}:r={FPS}:d={d}[canvas0]"]
    placed: list[Tile] = []
    current = "canvas0"
    for number, tile in enumerate(tiles):
        row, column = divmod(number, layout.columns)
        tile = Tile(
            tile.label,
            tile.name,
            tile.video,
            tile.absent,
            column * layout.tile_width,
            row * layout.tile_height,
        )
        placed.append(tile)
        if tile.video is None:
            continue
        # evaluated per frame: a picture whose size changes midway is fitted anew
        w, h = layout.tile_width, layout.tile_height
        lines.append(
            f"[{tile.video}:v]scale={w}:{h}:force_original_aspect_ratio=decrease"
            f":force_divisible_by=2:eval=frame[tile{number}]"
        )
        after = f"canvas{number + 1}"
        lines.append(
            f"[{current}][tile{number}]overlay=x={tile.x}+({w}-overlay_w)/2"
            f":y={tile.y}+({h}-overlay_h)/2:eval=frame:eof_action=pass[{after}]"
        )
        current = after
    decorations = [
        f for n, tile in enumerate(placed) for f in _tile_filters(tile, n, layout, texts)
    ]
    clock = texts.draw(
        "clock.txt",
        clock_text(started_at),
        expansion="normal",
        fontsize=max(16, layout.height // 24),
        box=1,
        boxcolor="black@0.55",
        boxborderw=6,
        x="w-tw-14",
        y="14",
    )
    lines.append(
        f"[{current}]{','.join([*decorations, clock])},trim=duration={d},format=yuv420p[vout]"
    )
    lines += _audio_lines(inputs.audio, d)
    return ";\n".join(lines)


def _audio_lines(audio: Sequence[int], d: str) -> list[str]:
    fmt = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"
    lines = [f"anullsrc=r=48000:cl=stereo:d={d},{fmt}[silence]"]
    for number, index in enumerate(audio):
        lines.append(f"[{index}:a]aresample=async=1:first_pts=0,{fmt}[sound{number}]")
    sounds = "".join(f"[sound{n}]" for n in range(len(audio)))
    lines.append(
        f"[silence]{sounds}amix=inputs={len(audio) + 1}:duration=first:dropout_transition=0"
        f":normalize=0,atrim=duration={d}[aout]"
    )
    return lines


ENCODERS: dict[str, list[str]] = {
    "mp4": [
        *("-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p"),
        *("-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", "-f", "mp4"),
    ],
    "webm": [
        *("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "900k"),
        *("-c:a", "libopus", "-b:a", "64k", "-f", "webm"),
    ],
}


def command(
    inputs: Inputs, script: Path, out: Path, file_format: Format, duration: float
) -> list[str]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CompositeError("the ffmpeg program was not found on PATH")
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-y"]
    args += ["-copyts"]  # the remuxed tracks carry their place on the timeline
    for path, has_video in zip(inputs.files, inputs.video, strict=True):
        if has_video:
            args += ["-reinit_filter", "0"]  # a new picture size is scaled, not a new graph
        args += ["-i", str(path)]
    threads = str(max(1, os.cpu_count() or 1))
    args += ["-filter_complex_script", str(script), "-map", "[vout]", "-map", "[aout]"]
    args += ["-r", str(FPS), "-g", str(4 * FPS), "-threads", threads, *ENCODERS[file_format]]
    args += ["-t", seconds(duration), "-progress", "pipe:1", str(out)]
    return args


# -- the composite: running ffmpeg -------------------------------------------------------


async def _read_progress(
    stream: asyncio.StreamReader, duration: float, progress: Callable[[float], None]
) -> None:
    reached = 0.0
    while line := await stream.readline():
        key, _, value = line.decode("ascii", "replace").strip().partition("=")
        if key != "out_time_us" or not value.lstrip("-").isdigit():
            continue
        fraction = min(1.0, max(0.0, int(value) / 1e6 / duration)) if duration > 0 else 0.0
        if fraction > reached:
            reached = fraction
            progress(min(fraction, 0.999))  # 1.0 once the file is complete


async def _read_tail(stream: asyncio.StreamReader, tail: deque[str]) -> None:
    while line := await stream.readline():
        tail.append(line.decode("utf-8", "replace").rstrip())


async def run_ffmpeg(
    args: list[str], duration: float, progress: Callable[[float], None], env: dict[str, str]
) -> None:
    """Run ffmpeg (no shell), reporting progress; CompositeError with its output's tail."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    tail: deque[str] = deque(maxlen=STDERR_LINES)
    try:
        await asyncio.gather(
            _read_progress(process.stdout, duration, progress),
            _read_tail(process.stderr, tail),
        )
        code = await process.wait()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if code != 0:
        raise CompositeError(f"ffmpeg failed with exit status {code}", "\n".join(tail))


def prepare(
    participants: Sequence[Participant],
    out: Path,
    folder: Path,
    *,
    duration: float,
    started_at: datetime,
    file_format: Format,
) -> list[str]:
    """Remux the tracks, write the labels and the filter graph into ``folder``; the
    ffmpeg command line (blocking: run in a thread)."""
    inputs = plan(participants, duration, folder)
    graph = filter_graph(inputs, duration, started_at, Texts(folder, cjk_font(), cjk_family()))
    script = folder / "graph.txt"
    script.write_text(graph, encoding="utf-8")
    return command(inputs, script, out, file_format, duration)


async def composite(
    participants: Sequence[Participant],
    out: Path,
    *,
    duration: float,
    started_at: datetime,
    timezone: str,
    file_format: Format = "mp4",
    progress: Callable[[float], None] | None = None,
    work_folder: Path | None = None,
) -> Made:
    """The session's composite at ``out``: every participant's picture and sound from 0 to
    ``duration`` seconds, with the wall time from ``started_at`` in ``timezone``.

    Temporary files go to a folder of their own (in ``work_folder`` if given), removed
    at the end; ``progress`` is told the fraction done (0..1, never backwards)."""
    if duration <= 0:
        raise CompositeError("the recording has no duration")
    report = progress or (lambda fraction: None)
    if work_folder is not None:
        await asyncio.to_thread(work_folder.mkdir, parents=True, exist_ok=True)
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="composite-", dir=work_folder))
    try:
        args = await asyncio.to_thread(
            prepare,
            participants,
            out,
            folder,
            duration=duration,
            started_at=started_at,
            file_format=file_format,
        )
        env = {**os.environ, "TZ": timezone_env(timezone, started_at)}
        report(0.0)
        await run_ffmpeg(args, duration, report, env)
    except BaseException:
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
    report(1.0)
    return Made(out, duration, True)
