"""The aiortc internals media/ relies on, in one place, checked at import.

Encoded forwarding needs four things aiortc does not expose publicly (aiortc 1.16.0):

* ``RTCRtpReceiver.__decoder_queue``: ``_handle_rtp_packet`` puts each frame its jitter
  buffer assembles, ``(codec, JitterFrame)``, on this ``queue.Queue``; a per-receiver
  decoder thread (``decoder_worker``, started by ``receive()``) reads it. We replace the
  queue before ``receive()`` runs with a :class:`FrameTap` that hands frames to a callback
  in the event loop and gives the decoder thread nothing but the ``None`` that
  ``stop()``/BYE put there, so that thread never creates a decoder.
* ``RTCRtpReceiver._send_rtcp_pli(ssrc)``: asks the publisher for a keyframe.
* ``RTCRtpReceiver.__rtx_ssrc``: which SSRCs are retransmissions (to find the media SSRC).
* ``RTCRtpSender._send_keyframe()``: what the sender calls when its remote sends PLI/FIR;
  overridden per sender instance to relay the request to the publisher.
* ``RTCRtpReceiver.__codecs``: the payload-type table a started receiver keeps; refreshed
  after a server-initiated renegotiation changes payload types.
* ``RTCDtlsTransport.__rx_packets``: datagrams received, for the liveness watchdog.

The stock ``RTCRtpSender`` packs anything that is not an ``av.Frame`` (an ``av.Packet``
with ``pts`` and ``time_base``) with the codec's ``pack()``, without encoding; that is
checked here too.
"""

from __future__ import annotations

import inspect
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc import rtcrtpreceiver as _receiver_module
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

PINNED_AIORTC = "1.16.0"

FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class InternalsError(RuntimeError):
    """aiortc is not the version whose internals media/ was written against."""


def _private(obj: object, owner: str, name: str) -> Any:
    """``obj.__name`` as written inside class ``owner`` (Python mangles it)."""
    return getattr(obj, f"_{owner}__{name}")


def _names_in(function: object) -> set[str]:
    code = getattr(function, "__code__", None)
    return set(code.co_names) if code is not None else set()


def _check() -> None:
    problems: list[str] = []
    version = getattr(aiortc, "__version__", "unknown")
    if version != PINNED_AIORTC:
        problems.append(f"aiortc {version} is installed")
    receiver_init = _names_in(RTCRtpReceiver.__init__)
    for name in ("__decoder_queue", "__decoder_thread", "__codecs", "__rtx_ssrc"):
        if f"_RTCRtpReceiver{name}" not in receiver_init:
            problems.append(f"RTCRtpReceiver.{name} is gone")
    for name in ("_handle_rtp_packet", "_send_rtcp_pli", "receive", "stop"):
        if not callable(getattr(RTCRtpReceiver, name, None)):
            problems.append(f"RTCRtpReceiver.{name}() is gone")
    if "_RTCRtpReceiver__decoder_queue" not in _names_in(RTCRtpReceiver._handle_rtp_packet):
        problems.append("RTCRtpReceiver._handle_rtp_packet no longer feeds the decoder queue")
    if "input_q" not in inspect.signature(_receiver_module.decoder_worker).parameters:
        problems.append("aiortc.rtcrtpreceiver.decoder_worker changed")
    if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):
        problems.append("RTCRtpSender._send_keyframe() is gone")
    if "_send_keyframe" not in _names_in(RTCRtpSender._handle_rtcp_packet):
        problems.append("RTCRtpSender._handle_rtcp_packet no longer calls _send_keyframe")
    if "pack" not in _names_in(RTCRtpSender._next_encoded_frame):
        problems.append("RTCRtpSender._next_encoded_frame no longer packs av.Packet")
    if not callable(getattr(Encoder, "pack", None)):
        problems.append("aiortc.codecs.base.Encoder.pack() is gone")
    if "_codecs" not in _names_in(RTCRtpTransceiver.__init__):
        problems.append("RTCRtpTransceiver._codecs is gone")
    if "_RTCDtlsTransport__rx_packets" not in _names_in(RTCDtlsTransport.__init__):
        problems.append("RTCDtlsTransport.__rx_packets is gone")
    if problems:
        raise InternalsError(
            f"media/ forwards encoded frames through aiortc=={PINNED_AIORTC} internals, "
            f"which do not match: {'; '.join(problems)}. "
            f"Install the pinned version: pip install aiortc=={PINNED_AIORTC}"
        )


_check()


class FrameTap:
    """Stands in for a receiver's decoder queue (only ``put`` and ``get`` are used).

    ``put((codec, frame))`` runs in the event loop (from ``_handle_rtp_packet``) and calls
    the sink; ``put(None)`` (``stop()``, RTCP BYE, DTLS closed) is passed to the decoder
    thread, which then ends the remote track and exits without ever decoding.
    """

    def __init__(self, sink: FrameSink) -> None:
        self.sink: FrameSink | None = sink
        self.handed_to_decoder = 0  # frames the decoder thread got: stays 0
        self._stop: queue.SimpleQueue[None] = queue.SimpleQueue()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            self._stop.put(None)
            return
        codec, frame = item
        sink = self.sink
        if sink is not None:
            sink(codec, frame)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self._stop.get()


def intercept_receiver(receiver: RTCRtpReceiver, sink: FrameSink) -> FrameTap:
    """Route ``receiver``'s assembled frames to ``sink`` instead of its decoder.

    Must run before the receiver starts (before ``receive()``, which aiortc calls once
    DTLS connects); a started receiver already gave its queue to the decoder thread.
    """
    current = _private(receiver, "RTCRtpReceiver", "decoder_queue")
    if isinstance(current, FrameTap):
        current.sink = sink
        return current
    if _private(receiver, "RTCRtpReceiver", "decoder_thread") is not None:
        raise InternalsError("cannot intercept a receiver whose decoder thread has started")
    tap = FrameTap(sink)
    receiver.__dict__["_RTCRtpReceiver__decoder_queue"] = tap
    return tap


def frame_tap(receiver: RTCRtpReceiver) -> FrameTap | None:
    """The tap installed on ``receiver``, if any."""
    current = _private(receiver, "RTCRtpReceiver", "decoder_queue")
    return current if isinstance(current, FrameTap) else None


def decoder_thread(receiver: RTCRtpReceiver) -> threading.Thread | None:
    thread = _private(receiver, "RTCRtpReceiver", "decoder_thread")
    return thread if isinstance(thread, threading.Thread) else None


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC of the media (not RTX) stream ``receiver`` heard from most recently."""
    rtx: dict[int, int] = _private(receiver, "RTCRtpReceiver", "rtx_ssrc")
    sources = [s for s in receiver.getSynchronizationSources() if s.source not in rtx]
    if not sources:
        return None
    return max(sources, key=lambda s: s.timestamp).source


def send_pli(receiver: RTCRtpReceiver, ssrc: int) -> Awaitable[None]:
    """Ask the remote sender of ``ssrc`` for a keyframe (RTCP PLI)."""
    result: Awaitable[None] = receiver._send_rtcp_pli(ssrc)
    return result


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` (instead of forcing an encoder keyframe) on PLI/FIR from the remote."""
    sender.__dict__["_send_keyframe"] = callback


def refresh_receiver_codecs(transceiver: RTCRtpTransceiver) -> None:
    """Teach a started receiver the payload types of the latest negotiation.

    aiortc reads the codec table once, in ``receive()``; a renegotiation that renumbers
    payload types (a server offer uses aiortc's numbers, a browser's first offer its own)
    would otherwise make the receiver drop the packets. New numbers win over old ones.
    """
    codecs: dict[int, RTCRtpCodecParameters] = _private(
        transceiver.receiver, "RTCRtpReceiver", "codecs"
    )
    for codec in transceiver._codecs:
        if codec.payloadType is not None:
            codecs[codec.payloadType] = codec


def packets_received(transport: RTCDtlsTransport) -> int:
    """Datagrams (DTLS, SRTP, SRTCP) ``transport`` has received so far."""
    return int(_private(transport, "RTCDtlsTransport", "rx_packets"))
