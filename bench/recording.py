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
2. The segments one recorded room left behind are joined per participant (a remux, no
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

from bench.sfu import ROOM_SIZE, STREAMS_PER_ROOM, step
from media.composite import Participant, SegmentFile, Track, composite, participant_file


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
            print(
                f"  rooms {rooms}: forwarding {per_stream * 100:.2f}% of a core per forwarded "
                f"stream; recording {per_track * 100:.2f}% of a core per recorded track "
                f"({tracks} tracks); ratio recorded track / forwarded stream "
                f"{per_track / per_stream:.2f}; whole server with recording / without "
                f"{statistics.median(recording) / base:.2f}"
            )

        print("2. after the session, from one recorded room's segments:")
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
