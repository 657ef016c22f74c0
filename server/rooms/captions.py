"""Live captions and the transcript, from the rooms' audio tap.

Each member's decoded speech (``AUDIO_TAP``: only what may be recorded reaches it) is
fed to one stream of the shared transcription engine.  Interim and final captions go,
as ``room:caption``, only to the members who may hear that speaker (the same sub-room:
a caucus stays a caucus).  Final lines are written to the transcript as they are
committed, so a crash loses at most the uncommitted tail, and staff watching the
transcript page get them as ``transcript:line``.

The engine loads with the first speech, not at start-up: a process that hosts no room
pays nothing for it.  The model itself is resolved at start-up, so a missing model is
a clear error then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from media.sfu import TapFrame
from server.i18n import translate_in
from server.rooms.live import LiveRoom, RoomHub, find
from server.rooms.names import transcript_room
from server.services import transcripts
from server.services.transcripts import Heard
from transcription.engine import Engine, Segment, Stream

log = logging.getLogger(__name__)

SWEEP_SECONDS = 2.0
EngineFactory = Callable[[], Awaitable[Engine]]


class Captions:
    def __init__(self, hub: RoomHub, tap: asyncio.Queue[TapFrame], engine: EngineFactory) -> None:
        self.hub = hub
        self.tap = tap
        self._make_engine = engine
        self._engine: Engine | None = None
        self._engine_failed = False
        self._loading = asyncio.Lock()
        self.streams: dict[tuple[str, str], Stream] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="captions:listen"),
            asyncio.create_task(self._sweep(), name="captions:sweep"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for stream in list(self.streams.values()):
            with contextlib.suppress(Exception):
                await stream.finish()
        self.streams.clear()
        if self._engine is not None:
            await self._engine.close()

    async def engine(self) -> Engine | None:
        async with self._loading:
            if self._engine is None and not self._engine_failed:
                try:
                    self._engine = await self._make_engine()
                except Exception:
                    self._engine_failed = True
                    log.exception("the speech engine could not start: no captions")
            return self._engine

    # --- audio in ------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            frame = await self.tap.get()
            try:
                stream = await self._stream_for(frame)
                if stream is not None:
                    stream.feed(frame.pcm, frame.time)
            except Exception:
                log.exception("captions: a frame of %s could not be fed", frame.member_id)

    async def _stream_for(self, frame: TapFrame) -> Stream | None:
        key = (frame.room, frame.member_id)
        stream = self.streams.get(key)
        if stream is not None:
            return stream
        live = self.hub.by_key(frame.room)
        if live is None or frame.member_id not in live.seats:
            return None
        engine = await self.engine()
        if engine is None:
            return None
        stream = self.streams.get(key)  # made while the engine loaded
        if stream is None:
            stream = engine.open_stream(
                f"{frame.room}/{frame.member_id}",
                on_segment=lambda segment: self._heard(live, frame.member_id, segment),
                language=live.language,
                vocabulary=self._vocabulary(live),
            )
            self.streams[key] = stream
        return stream

    @staticmethod
    def _vocabulary(live: LiveRoom) -> list[str]:
        names = sorted({seat.name for seat in live.seats.values()})
        return [live.facts.case_number, *names]

    async def _sweep(self) -> None:
        """Finish the streams of members who are gone (or whose room is)."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            for key, stream in list(self.streams.items()):
                live = self.hub.by_key(key[0])
                member = find(live, key[1]) if live is not None else None
                if member is None or not member.present:
                    self.streams.pop(key, None)
                    try:
                        await stream.finish()
                    except Exception:
                        log.exception("captions: finishing %s failed", stream.key)

    # --- text out ---------------------------------------------------------------------

    async def _heard(self, live: LiveRoom, member_id: str, segment: Segment) -> None:
        seat = live.seats.get(member_id)
        if seat is None or not segment.text.strip():
            return
        try:
            audience = live.model.audience(member_id)
        except Exception:
            audience = []
        if segment.final:  # stored first: a final caption anyone saw survives a crash
            await self._keep(live, member_id, segment)
        await self.hub.emit_each(
            live,
            audience,
            "room:caption",
            lambda locale: self._caption(member_id, seat.name, seat.seat, locale, segment),
        )

    @staticmethod
    def _caption(
        member_id: str, name: str, seat: str, locale: str, segment: Segment
    ) -> dict[str, Any]:
        return {
            "member_id": member_id,
            "name": name,
            "seat": translate_in(locale, seat) if seat else "",
            "text": segment.text,
            "final": segment.final,
            "start": round(segment.start, 3),
            "end": round(segment.end, 3),
        }

    async def _keep(self, live: LiveRoom, member_id: str, segment: Segment) -> None:
        seat = live.seats[member_id]
        heard = Heard(
            session_id=live.facts.session_id,
            dispute_id=live.facts.dispute_id,
            identity=seat.identity,
            name=seat.name,
            seat=seat.seat,
            clock_start=live.clock_start,
            start=segment.start,
            end=segment.end,
            text=segment.text,
            language=segment.language,
        )
        try:
            async with self.hub.database.transaction() as db:
                line = await transcripts.record(db, heard)
                line_id = line.id
        except Exception:
            log.exception("captions: a final line of %s could not be stored", member_id)
            return
        await self.hub.sio.emit(
            "transcript:line",
            {
                "id": line_id,
                "name": seat.name,
                "seat": seat.seat,
                "text": segment.text,
                "start": round(segment.start, 3),
                "end": round(segment.end, 3),
            },
            to=transcript_room(live.facts.session_id),
        )
