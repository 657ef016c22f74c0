"""The SFU engine: rooms of peers whose encoded media is forwarded, never decoded.

:class:`Sfu` holds the rooms, the shared counters and the audio tap; :class:`SfuRoom`
holds one room's peers (media/peer.py) and publications (media/forwarding.py) and
decides, with the server's ``forwards`` rule, which subscriber gets which publication.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCIceServer

from media.audio_tap import AudioTap, TapFrame
from media.forwarding import Counters, Publication
from media.internals import frame_tap
from media.peer import N_, SOURCE_KINDS, Key, MediaError, Peer, RoomHooks, TrackInfo
from media.recorder import RoomRecorder

__all__ = [
    "Forwards",
    "MediaError",
    "RoomHooks",
    "Sfu",
    "SfuRoom",
    "TapFrame",
    "TrackInfo",
]

logger = logging.getLogger(__name__)

Forwards = Callable[[str, str, str], bool]  # (subscriber_id, publisher_id, source) -> bool


class SfuRoom:
    """One room's peers and publications, routed by ``forwards``."""

    def __init__(
        self,
        key: str,
        hooks: RoomHooks,
        forwards: Forwards,
        *,
        counters: Counters,
        audio_tap: AudioTap | None,
        ice_servers: list[RTCIceServer],
        on_closed: Callable[[SfuRoom], None],
    ) -> None:
        self.key = key
        self.hooks = hooks
        self.forwards = forwards
        self.started = time.monotonic()
        self._counters = counters
        self._audio_tap = audio_tap
        self._ice_servers = ice_servers
        self._on_closed = on_closed
        self._peers: dict[str, Peer] = {}
        self._publications: dict[Key, Publication] = {}
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )
        self._closed = False
        self._recorder: RoomRecorder | None = None

    def members(self) -> list[str]:
        """Members with a peer connection, in the order they connected."""
        return list(self._peers)

    def peer(self, member_id: str) -> Peer | None:
        return self._peers.get(member_id)

    def publication(self, member_id: str, source: str) -> Publication | None:
        return self._publications.get((member_id, source))

    async def offer(
        self, member_id: str, sdp: str, sources: dict[str, str]
    ) -> tuple[str, dict[str, TrackInfo]]:
        """Apply a client offer; a member's new offer replaces its peer (reconnection)."""
        if self._closed:
            raise MediaError("conflict", N_("The room is closed."))
        if not isinstance(sources, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in sources.items()
        ):
            raise MediaError("invalid", N_("Unknown media source."))
        async with self._locks[member_id]:
            peer = Peer(
                member_id, self.hooks, self._locks[member_id], self._counters, self._ice_servers
            )
            try:
                answer = await peer.accept(sdp, sources)
            except BaseException:
                await peer.close()
                raise
            old = self._peers.pop(member_id, None)
            self._peers[member_id] = peer
            for source in SOURCE_KINDS:
                publication = self._publications.get((member_id, source))
                receiver = peer.receiver(source)
                if receiver is None:
                    if publication is not None:
                        publication.unbind()
                    continue
                if publication is None:
                    publication = self._publish(member_id, source)
                publication.bind(receiver)
            if old is not None:
                await old.close()
            peer.start()
            self._reroute()
            return answer, peer.track_map()

    def _publish(self, member_id: str, source: str) -> Publication:
        publication = Publication(member_id, source, SOURCE_KINDS[source], self._counters)
        if source == "mic" and self._audio_tap is not None:
            publication.listener = self._audio_tap.feeder(self.key, member_id, self.started)
        self._publications[(member_id, source)] = publication
        return publication

    async def answer(self, member_id: str, sdp: str, revision: int) -> None:
        """The client's answer to the server offer numbered ``revision``."""
        async with self._locks[member_id]:
            peer = self._peers.get(member_id)
            if peer is None:
                raise MediaError("conflict", N_("No offer is waiting for an answer."))
            await peer.apply_answer(sdp, revision)

    async def add_ice_candidate(self, member_id: str, candidate: dict[str, Any] | None) -> None:
        async with self._locks[member_id]:
            peer = self._peers.get(member_id)
            if peer is None:
                raise MediaError("conflict", N_("There is no media connection to add this to."))
            await peer.add_ice_candidate(candidate)

    async def reroute(self) -> None:
        """Recompute who receives what from ``forwards``: withdrawals stop at once,
        additions are offered to the members concerned."""
        self._reroute()

    @property
    def recorder(self) -> RoomRecorder | None:
        return self._recorder

    def attach_recorder(self, recorder: RoomRecorder) -> None:
        """Record this room's publications by ``recorder``'s rule from now on."""
        self._recorder = recorder
        recorder.sync(self._publications)

    async def detach_recorder(self) -> None:
        """Stop recording: every open segment is closed (and handed on)."""
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            await recorder.close()

    def _reroute(self) -> None:
        if self._recorder is not None:
            self._recorder.sync(self._publications)
        for subscriber, peer in self._peers.items():
            allowed: dict[Key, Publication] = {}
            for key, publication in self._publications.items():
                if (
                    key[0] != subscriber
                    and not publication.closed
                    and self._forwards(subscriber, *key)
                ):
                    allowed[key] = publication
            peer.set_allowed(allowed)

    def _forwards(self, subscriber: str, publisher: str, source: str) -> bool:
        try:
            return bool(self.forwards(subscriber, publisher, source))
        except Exception:
            logger.exception("forwards(%s, %s, %s) failed", subscriber, publisher, source)
            return False

    def request_keyframe(self, publisher_id: str, source: str = "camera") -> None:
        publication = self._publications.get((publisher_id, source))
        if publication is not None:
            publication.request_keyframe()

    async def remove(self, member_id: str) -> None:
        """Close the member's peer and end its publications."""
        async with self._locks[member_id]:
            peer = self._peers.pop(member_id, None)
            for key in [k for k in self._publications if k[0] == member_id]:
                self._publications.pop(key).close()
            self._reroute()
            if peer is not None:
                await peer.close()
        if peer is not None:
            await self._report(member_id, "closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.detach_recorder()
        for publication in self._publications.values():
            publication.close()
        self._publications.clear()
        peers, self._peers = self._peers, {}
        for peer in peers.values():
            await peer.close()
        for member_id in peers:
            await self._report(member_id, "closed")
        self._on_closed(self)

    async def _report(self, member_id: str, state: str) -> None:
        try:
            await self.hooks.peer_state(member_id, state)
        except Exception:
            logger.exception("peer_state(%s, %s) failed", member_id, state)

    def video_frames_decoded(self) -> int:
        """Video frames the server's decoder threads were handed (by design, none)."""
        total = 0
        for publication in self._publications.values():
            receiver = publication.receiver
            tap = frame_tap(receiver) if receiver is not None else None
            if publication.kind == "video" and tap is not None:
                total += tap.handed_to_decoder
        return total


class Sfu:
    """All rooms of this process, their counters and the audio tap."""

    def __init__(
        self,
        *,
        tap: asyncio.Queue[TapFrame] | None = None,
        tap_recorded: Callable[[str, str], bool] | None = None,
        ice_servers: list[RTCIceServer] | None = None,
    ) -> None:
        self._rooms: dict[str, SfuRoom] = {}
        self._counters = Counters()
        self._audio_tap = AudioTap(tap, tap_recorded, self._counters) if tap is not None else None
        # no STUN server unless given: aiortc would otherwise use a public one
        self._ice_servers = list(ice_servers or [])

    def room(self, key: str, hooks: RoomHooks, forwards: Forwards) -> SfuRoom:
        """The room ``key``, created with ``hooks`` and ``forwards`` if it does not exist."""
        room = self._rooms.get(key)
        if room is None:
            room = SfuRoom(
                key,
                hooks,
                forwards,
                counters=self._counters,
                audio_tap=self._audio_tap,
                ice_servers=self._ice_servers,
                on_closed=self._forget,
            )
            self._rooms[key] = room
        return room

    def get(self, key: str) -> SfuRoom | None:
        return self._rooms.get(key)

    def _forget(self, room: SfuRoom) -> None:
        if self._rooms.get(room.key) is room:
            del self._rooms[room.key]

    async def close(self) -> None:
        for room in list(self._rooms.values()):
            await room.close()

    def stats(self) -> dict[str, int]:
        counters = self._counters
        counters.video_decoded = sum(r.video_frames_decoded() for r in self._rooms.values())
        return counters.as_dict() | {
            "rooms": len(self._rooms),
            "peers": sum(len(r.members()) for r in self._rooms.values()),
        }
