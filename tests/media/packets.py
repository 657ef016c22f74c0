"""Encoded media as a browser's tracks carry it, for recording tests: VP8 frames and Opus
packets with pts in their RTP clocks (90 kHz, 48 kHz), made once with PyAV's encoders."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np


def vp8_packets(
    seconds: float,
    *,
    size: tuple[int, int] = (320, 240),
    fps: int = 30,
    gop: int = 30,
    shade: Callable[[int], int] = lambda i: (i * 3) % 255,
) -> list[Any]:
    """``seconds`` of VP8 at ``fps``, a keyframe every ``gop`` frames; frame ``i`` is one
    flat grey of ``shade(i)``."""
    width, height = size
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, 90000)
    encoder.framerate = Fraction(fps, 1)
    encoder.gop_size = gop
    encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    packets: list[Any] = []
    for i in range(round(seconds * fps)):
        image = np.full((height, width, 3), shade(i), np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i * 90000 // fps, encoder.time_base
        packets += encoder.encode(frame)
    return packets + list(encoder.encode(None))


def opus_packets(seconds: float) -> list[Any]:
    """``seconds`` of a 440 Hz tone in 20-ms Opus packets, as a microphone track carries."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = Fraction(1, 48000)
    tone = (np.sin(np.arange(960) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
    packets: list[Any] = []
    for i in range(round(seconds * 50)):
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, encoder.time_base
        packets += encoder.encode(frame)
    return packets
