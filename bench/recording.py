"""What recording costs: CPU per recorded track against forwarding alone, and how fast the
composite is made.

    .venv/bin/python -m bench.recording [--rooms 1,2] [--seconds 8] [--repeat 2]

1. The load of bench/sfu.py (rooms of 4 members, each publishing 640×360 VP8 at 30 fps
   and Opus, each receiving the 3 others), served twice in turn: forwarding alone
   ("sfu"), and forwarding with every publication recorded into WebM segments by
   media/recorder.py ("sfu+record"). The server's own CPU time over the same window
   gives the extra CPU per recorded track, printed as a ratio to the CPU per forwarded
   stream (one publisher's audio or video to one subscriber). Runs alternate, and the
   medians are compared, because these machines are shared and noisy.
2. Because what recording adds is small next to the noise of 1., the recorder's own work
   is also measured in this process: two minutes of a replayed VP8 and Opus track through
   a subscriber track, alone and then also muxed into segments (CPU time, not wall time).
3. The segments one recorded room left behind are joined per participant (a remux, no
   codec) and composed into the session composite (a grid, names, a clock, mixed
   sound; MP4 and WebM) by media/composite.py, as the recording_compose job does; each
   is timed as a multiple of the recording's real length.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from bench.sfu import ROOM_SIZE, STREAMS_PER_ROOM, encode_clip, step
from media.composite import Participant, SegmentFile, Track, composite, participant_file
from media.forwarding import Counters, SubscriberTrack
from media.recording import SegmentWriter


async def recorder_work(
    video: list[bytes], audio: list[bytes], seconds: float, folder: Path
) -> dict[str, float]:
    """CPU seconds (this process) to take ``seconds`` of one video and one audio track
    through a member's subscriber track, alone ("forwarded"), and then also into a
    SegmentWriter ("recorded"), as media/recorder.py does; the clip is replayed."""
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=111)
    counters = Counters()
    out: dict[str, float] = {}
    for mode in ("forwarded", "recorded"):
        spent = 0.0
        for kind, payloads, codec, rate, step_ in (
            ("video", video, vp8, 30, 3000),
            ("audio", audio, opus, 50, 960),
        ):
            track = SubscriberTrack(kind, counters)
            writer = SegmentWriter(folder / mode, f"bench.{kind}", kind, segment_seconds=20)
            began = time.process_time()
            for n in range(int(seconds * rate)):
                track.push(1, codec, JitterFrame(payloads[n % len(payloads)], n * step_))
                packet = await track.recv()
                if mode == "recorded":
                    writer.write(packet)
            writer.close()
            spent += time.process_time() - began
        out[mode] = spent
    return out


def cpu_line(label: str, r: dict[str, Any], seconds: float) -> None:
    print(
        f"  {label:<11} rooms {int(r['rooms']):>2}  video delivered {r['delivered']:6.1%}  "
        f"server CPU {r['server_cpu_share']:5.2f} cores  recorded tracks "
        f"{int(r['recorded_tracks']):>2}  segments so far {int(r['segments']):>3}"
    )


def length(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams[0]
        times = [float(p.pts * p.time_base) for p in container.demux(stream) if p.pts is not None]
    return max(times) - min(times) if times else 0.0


def participants_from(folder: Path) -> tuple[list[Participant], float]:
    """The recorder's files of one room (``<member>.<source>-<index>.webm``), laid end to
    end per track (they were cut back to back)."""
    tracks: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(folder.glob("*.webm")):
        name, _, _ = path.stem.rpartition("-")
        member, _, source = name.partition(".")
        tracks[member][source].append(path)
    people: list[Participant] = []
    duration = 0.0
    for number, (member, sources) in enumerate(sorted(tracks.items()), start=1):
        made: list[Track] = []
        for source, paths in sorted(sources.items()):
            start = 0.0
            segments = []
            for path in paths:
                span = length(path)
                segments.append(SegmentFile(path, start, start + span))
                start += span
            duration = max(duration, start)
            kind = "audio" if source == "mic" else "video"
            made.append(Track(source, kind, tuple(segments)))
        people.append(Participant(member, f"参与人{number}", "Party", tuple(made)))
    return people, duration


async def compose(people: list[Participant], duration: float, out: Path, fmt: str) -> float:
    began = time.perf_counter()
    await composite(
        people,
        out,
        duration=duration,
        started_at=datetime.now(UTC),
        timezone="Asia/Shanghai",
        file_format=fmt,  # type: ignore[arg-type]
    )
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", default="1,2", help="room counts to measure")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per run")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each mode per count")
    args = parser.parse_args()
    counts = [int(n) for n in args.rooms.split(",") if n.strip()]

    print(f"1. recording every track of rooms of {ROOM_SIZE} ({args.seconds:g} s windows):")
    keep = Path(tempfile.mkdtemp(prefix="bench-recorded-"))
    forwarded_stream = 0.0
    try:
        for rooms in counts:
            forwarding: list[float] = []
            recording: list[float] = []
            tracks = 0
            for _ in range(args.repeat):
                plain = step("sfu", rooms, args.seconds, 1)
                cpu_line("forwarding", plain, args.seconds)
                recorded = step("sfu+record", rooms, args.seconds, 1)
                cpu_line("+ recording", recorded, args.seconds)
                forwarding.append(plain["server_cpu_share"])
                recording.append(recorded["server_cpu_share"])
                tracks = int(recorded["recorded_tracks"])
                room = Path(recorded["folder"]) / "room0"
                if room.exists() and not any(keep.iterdir()):
                    shutil.copytree(room, keep / "room0")
                shutil.rmtree(recorded["folder"], ignore_errors=True)
                shutil.rmtree(plain["folder"], ignore_errors=True)
            base = statistics.median(forwarding)
            extra = statistics.median(recording) - base
            per_stream = base / (rooms * STREAMS_PER_ROOM)
            per_track = extra / max(1, tracks)
            forwarded_stream = forwarded_stream or per_stream
            print(
                f"  rooms {rooms}: forwarding {per_stream * 100:.2f}% of a core per forwarded "
                f"stream; recording {per_track * 100:.2f}% of a core per recorded track "
                f"({tracks} tracks); ratio recorded track / forwarded stream "
                f"{per_track / per_stream:.2f}; whole server with recording / without "
                f"{statistics.median(recording) / base:.2f}"
            )

        print("2. the recorder's own work, in this process (less noisy than 1.):")
        video, audio = encode_clip()
        seconds = 120.0
        work = asyncio.run(recorder_work(video, audio, seconds, keep / "isolated"))
        muxing = (work["recorded"] - work["forwarded"]) / seconds / 2  # per track
        print(
            f"  {seconds:g} s of one VP8 640x360 and one Opus track: through a subscriber "
            f"track {work['forwarded'] * 1000 / seconds:.2f} ms CPU per second, and also "
            f"muxed into segments {work['recorded'] * 1000 / seconds:.2f} ms; the muxing costs "
            f"{muxing * 100:.3f}% of a core per recorded track"
        )
        if forwarded_stream:
            print(
                f"  ratio of that to the server's CPU per forwarded stream in 1. "
                f"({forwarded_stream * 100:.2f}% of a core): {muxing / forwarded_stream:.3f}"
            )

        print("3. after the session, from one recorded room's segments:")
        people, duration = participants_from(keep / "room0")
        if not people:
            print("  no segments were kept")
            return
        out = keep / "out"
        out.mkdir()
        began = time.perf_counter()
        for person in people:
            participant_file(person, out / f"{person.identity}.webm")
        remux = time.perf_counter() - began
        print(
            f"  {len(people)} participant files of {duration:.1f} s (remux, no codec): "
            f"{remux:.2f} s, {duration / remux:.0f}x real time"
        )
        for fmt in ("mp4", "webm"):
            took = asyncio.run(compose(people, duration, out / f"composite.{fmt}", fmt))
            print(
                f"  composite {fmt} of {len(people)} tiles, {duration:.1f} s: {took:.1f} s, "
                f"{duration / took:.2f}x real time"
            )
    finally:
        shutil.rmtree(keep, ignore_errors=True)


if __name__ == "__main__":
    main()
