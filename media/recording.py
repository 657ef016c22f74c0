"""Recording one forwarded track into WebM segments, without decoding or encoding.

The packets a publisher sends (Opus audio, VP8 video, as the SFU forwards them) are
muxed as they are into WebM files of about ``segment_seconds`` each. A video segment
starts on a keyframe: when a segment is due to end the writer asks for one (through
``request_keyframe``, which the SFU relays to the publisher as a PLI) and cuts there;
until the first keyframe arrives, video packets are dropped (nothing could show them).
Each segment closes into a :class:`ClosedSegment` with its time range on the track's
clock and its SHA-256, handed to ``on_closed`` (which uploads it); a crash loses at most
the open segment.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av

log = logging.getLogger(__name__)

Kind = Literal["audio", "video"]
CODECS: dict[Kind, str] = {"audio": "opus", "video": "vp8"}
CLOCK: dict[Kind, Fraction] = {"audio": Fraction(1, 48000), "video": Fraction(1, 90000)}
DEFAULT_SIZE = (640, 480)  # only if a keyframe's header cannot be read


@dataclass(frozen=True)
class ClosedSegment:
    """A finished WebM file of one track."""

    path: Path
    track: str
    kind: Kind
    index: int
    start: float  # seconds on the track's clock (its first packet's time)
    end: float  # the last packet's time plus its duration, if known
    packets: int
    size: int
    sha256: str


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe's header (RFC 6386, 9.1), or None."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Open:
    """The segment being written."""

    def __init__(
        self, path: Path, kind: Kind, index: int, first: Any, size: tuple[int, int]
    ) -> None:
        self.path = path
        self.index = index
        self.container: Any = av.open(str(path), "w", format="webm")
        stream: Any = self.container.add_stream(CODECS[kind], rate=30 if kind == "video" else 48000)
        if kind == "video":
            stream.width, stream.height = size
        stream.time_base = CLOCK[kind]
        self.stream = stream
        self.origin = int(first.pts)  # in the packets' time base
        self.time_base = first.time_base or CLOCK[kind]
        self.last = self.origin
        self.last_duration = 0
        self.packets = 0

    def seconds(self, pts: int) -> float:
        return float((pts - self.origin) * self.time_base)


class SegmentWriter:
    """One track's packets into WebM segments in ``folder``; not thread-safe (one task)."""

    def __init__(
        self,
        folder: Path,
        track: str,
        kind: Kind,
        *,
        segment_seconds: float = 20.0,
        on_closed: Callable[[ClosedSegment], None] | None = None,
        request_keyframe: Callable[[], None] | None = None,
        first_index: int = 0,
    ) -> None:
        self.folder = folder
        self.track = track
        self.kind = kind
        self.segment_seconds = segment_seconds
        self.on_closed = on_closed or (lambda segment: None)
        self.request_keyframe = request_keyframe or (lambda: None)
        self.closed: list[ClosedSegment] = []
        self.dropped = 0  # video packets before the first keyframe
        self._open: _Open | None = None
        self._index = first_index
        self._asked = False

    @property
    def next_index(self) -> int:
        """The number the next segment will have (a new writer of the track goes on from it)."""
        return self._index

    def write(self, packet: Any) -> None:
        """Take one encoded packet (an ``av.Packet`` with pts and time base)."""
        if packet.pts is None:
            return
        data = bytes(packet)
        keyframe = self.kind == "audio" or bool(packet.is_keyframe) or vp8_size(data) is not None
        current = self._open
        if current is not None and current.seconds(packet.pts) >= self.segment_seconds:
            if keyframe:
                self._close()
                current = None
            elif not self._asked:
                self._asked = True
                self.request_keyframe()
        if current is None:
            if not keyframe:
                self.dropped += 1
                if not self._asked:
                    self._asked = True
                    self.request_keyframe()
                return
            current = self._start(packet, data)
        out = av.Packet(data)
        out.pts = out.dts = int(packet.pts) - current.origin
        out.time_base = current.time_base
        out.is_keyframe = keyframe
        if packet.duration:
            out.duration = packet.duration
            current.last_duration = int(packet.duration)
        elif current.packets:  # RTP gives none: the gap before it stands in for its length
            current.last_duration = max(0, int(packet.pts) - current.last)
        out.stream = current.stream
        current.container.mux(out)
        current.last = int(packet.pts)
        current.packets += 1

    def _start(self, packet: Any, data: bytes) -> _Open:
        self.folder.mkdir(parents=True, exist_ok=True)
        size = vp8_size(data) or DEFAULT_SIZE
        path = self.folder / f"{self.track}-{self._index:05d}.webm"
        self._open = _Open(path, self.kind, self._index, packet, size)
        self._index += 1
        self._asked = False
        return self._open

    def _close(self) -> ClosedSegment | None:
        current, self._open = self._open, None
        self._asked = False
        if current is None:
            return None
        current.container.close()
        start = float(current.origin * current.time_base)
        end = float((current.last + current.last_duration) * current.time_base)
        segment = ClosedSegment(
            path=current.path,
            track=self.track,
            kind=self.kind,
            index=current.index,
            start=start,
            end=end,
            packets=current.packets,
            size=current.path.stat().st_size,
            sha256=_sha256(current.path),
        )
        self.closed.append(segment)
        try:
            self.on_closed(segment)
        except Exception:
            log.exception("recording %s: handing on segment %s failed", self.track, segment.index)
        return segment

    def close(self) -> ClosedSegment | None:
        """Finish the open segment, if any."""
        return self._close()
