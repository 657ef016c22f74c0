"""Wiring the rooms into the app: the media engine, the hub and the socket events.

``AUDIO_TAP`` is the queue of decoded speech (16 kHz mono, with the member's identity)
that the transcription service reads; only what may be recorded reaches it (a caucus
does not, unless the host turned recording on for it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from media.sfu import Sfu, TapFrame
from server.config import Settings
from server.context import SETTINGS
from server.rooms.captions import Captions
from server.rooms.events import RoomEvents
from server.rooms.live import RoomHub
from server.sockets import Signalling
from server.speech import load_engine
from transcription.engine import Engine
from transcription.models import resolve

log = logging.getLogger(__name__)

ROOMS = web.AppKey("rooms", RoomHub)
CAPTIONS = web.AppKey("captions", Captions)
AUDIO_TAP = web.AppKey("audio_tap", asyncio.Queue)  # asyncio.Queue[TapFrame]
TAP_FRAMES = 3000  # 60 s of 20-ms frames; when full the oldest are dropped


def attach(app: web.Application, signalling: Signalling) -> None:
    tap: asyncio.Queue[TapFrame] = asyncio.Queue(maxsize=TAP_FRAMES)
    hub: RoomHub | None = None

    def recorded(room_key: str, member_id: str) -> bool:
        return hub is not None and hub.recorded(room_key, member_id)

    hub = RoomHub(app, signalling.sio, Sfu(tap=tap, tap_recorded=recorded))
    RoomEvents(signalling, hub)
    app[ROOMS] = hub
    app[AUDIO_TAP] = tap
    app.cleanup_ctx.append(_close_rooms)
    if app[SETTINGS].captions:
        app[CAPTIONS] = Captions(hub, tap, lambda: _load_engine(app[SETTINGS]))
        app.cleanup_ctx.append(_captions)


async def _close_rooms(app: web.Application) -> AsyncIterator[None]:
    app[ROOMS].recordings.start_sweeper()
    yield
    await app[ROOMS].close()


async def _captions(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # resolve now: a missing model is an error at start naming what to install
    resolve(settings.asr_model, settings.data_dir / "models")
    captions = app[CAPTIONS]
    captions.start()
    yield
    await captions.close()


async def _load_engine(settings: Settings) -> Engine:
    return await load_engine(settings, progress=lambda message: log.info("speech: %s", message))
