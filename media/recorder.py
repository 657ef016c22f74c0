"""A room's recorder: every recorded publication's packets into WebM segments.

The recorder subscribes to a publication the way a member does (a
:class:`~media.forwarding.SubscriberTrack`: video from a keyframe on, one asked for when
it attaches, timestamps kept increasing across the publisher's reconnections) and hands
what it receives to a :class:`~media.recording.SegmentWriter`. Nothing is decoded.

Which publications are recorded is the room's rule (``wants(member_id, source)``),
applied on every re-route; ``pause()`` closes every open segment, ``resume()`` starts
again. Each closed segment goes to ``on_segment`` with its wall-clock time range.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiortc.mediastreams import MediaStreamError

from media.forwarding import Counters, Publication, SubscriberTrack
from media.recording import ClosedSegment, Kind, SegmentWriter

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (member id, source)


@dataclass(frozen=True)
class RecordedSegment:
    """A closed segment, with whose it is and when it was (UNIX seconds)."""

    segment: ClosedSegment
    member_id: str
    source: str
    wall_start: float
    wall_end: float


def track_name(member_id: str, source: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in member_id)
    return f"{safe}.{source}"


class TrackRecorder:
    """One publication being recorded: a subscriber track read by a task into a writer."""

    def __init__(
        self,
        folder: Path,
        publication: Publication,
        *,
        segment_seconds: float,
        on_segment: Callable[[RecordedSegment], None],
        on_error: Callable[[str, str, Exception], None],
        first_index: int = 0,
    ) -> None:
        self.publication = publication
        self._on_segment = on_segment
        self._on_error = on_error
        self._anchor: float | None = None  # wall time of the track's time zero
        kind: Kind = "video" if publication.kind == "video" else "audio"
        self.writer = SegmentWriter(
            folder,
            track_name(publication.member_id, publication.source),
            kind,
            segment_seconds=segment_seconds,
            on_closed=self._closed,
            request_keyframe=publication.request_keyframe,
            first_index=first_index,
        )
        self.track = SubscriberTrack(publication.kind, Counters())
        self.track.attach(publication)
        self.task = asyncio.create_task(self._run(), name=f"record {publication.key}")

    async def _run(self) -> None:
        while True:
            try:
                packet = await self.track.recv()
            except MediaStreamError:
                return
            if self._anchor is None and packet.pts is not None and packet.time_base:
                self._anchor = time.time() - float(packet.pts * packet.time_base)
            try:
                self.writer.write(packet)
            except Exception as error:  # a bad packet or a full disk: report, start afresh
                log.exception("recording %s failed", self.publication.key)
                self._on_error(self.publication.member_id, self.publication.source, error)
                with contextlib.suppress(Exception):
                    self.writer.close()

    def _closed(self, segment: ClosedSegment) -> None:
        anchor = self._anchor if self._anchor is not None else time.time() - segment.end
        self._on_segment(
            RecordedSegment(
                segment=segment,
                member_id=self.publication.member_id,
                source=self.publication.source,
                wall_start=anchor + segment.start,
                wall_end=anchor + segment.end,
            )
        )

    async def stop(self) -> None:
        """Stop reading and close the open segment (handed on like any other)."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.track.stop()
        try:
            self.writer.close()
        except Exception as error:
            log.exception("recording %s: closing failed", self.publication.key)
            self._on_error(self.publication.member_id, self.publication.source, error)


class RoomRecorder:
    """The recorded publications of one room; ``sync`` follows the room's rule."""

    def __init__(
        self,
        folder: Path,
        wants: Callable[[str, str], bool],
        on_segment: Callable[[RecordedSegment], None],
        *,
        segment_seconds: float = 20.0,
        on_error: Callable[[str, str, Exception], None] | None = None,
    ) -> None:
        self.folder = folder
        self.wants = wants
        self.on_segment = on_segment
        self.on_error = on_error or (lambda member, source, error: None)
        self.segment_seconds = segment_seconds
        self.active = True
        self._tracks: dict[Key, TrackRecorder] = {}
        self._next_index: dict[Key, int] = {}  # segments of a track are numbered on
        self._stopping: set[asyncio.Task[None]] = set()

    def recording(self) -> list[Key]:
        return list(self._tracks)

    def sync(self, publications: Mapping[Key, Publication]) -> None:
        """Record exactly the live publications the room's rule wants now."""
        wanted = {
            key: publication
            for key, publication in publications.items()
            if self.active and not publication.closed and self._wants(*key)
        }
        for key, recorder in list(self._tracks.items()):
            if wanted.get(key) is not recorder.publication:
                del self._tracks[key]
                self._stop_later(recorder)
        for key, publication in wanted.items():
            if key not in self._tracks:
                self._tracks[key] = TrackRecorder(
                    self.folder,
                    publication,
                    segment_seconds=self.segment_seconds,
                    on_segment=self.on_segment,
                    on_error=self.on_error,
                    first_index=self._next_index.get(key, 0),
                )

    def _wants(self, member_id: str, source: str) -> bool:
        try:
            return bool(self.wants(member_id, source))
        except Exception:
            log.exception("recording rule failed for %s %s", member_id, source)
            return False

    def _stop_later(self, recorder: TrackRecorder) -> None:
        self._reserve(recorder)
        task = asyncio.create_task(recorder.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _reserve(self, recorder: TrackRecorder) -> None:
        """The stopping recorder's open segment takes the next number: a later one of
        the same track starts after it."""
        key = recorder.publication.key
        self._next_index[key] = recorder.writer.next_index + 1

    async def pause(self) -> None:
        """Close every open segment; nothing is written until ``resume``."""
        self.active = False
        await self._stop_all()

    def resume(self) -> None:
        self.active = True

    async def close(self) -> None:
        self.active = False
        await self._stop_all()

    async def _stop_all(self) -> None:
        recorders, self._tracks = list(self._tracks.values()), {}
        for recorder in recorders:
            self._reserve(recorder)
            await recorder.stop()
        if self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)
