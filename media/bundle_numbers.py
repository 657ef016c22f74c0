"""Keeping the client's numbering in the server's offers.

All m-lines of a member's connection share one transport (BUNDLE), so a payload type
and an RTP header-extension id must mean the same thing on every m-line, and must not
change on an m-line that is already active.  A browser numbers them its own way in its
first offer (Chromium: Opus 111, VP8 96, audio level 1, mid 4); aiortc's ``createOffer``
numbers every m-line its own way again on each renegotiation (Opus 96, VP8 97, mid 1),
and a browser refuses such an offer ("RTP extension ID reassignment not supported", or
a BUNDLE codec collision).  So the numbers the client chose are learned from its offer
and written back into each offer the server makes, before it is applied locally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, sdp
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

CodecKey = tuple[str, ...]


def _key(codec: RTCRtpCodecParameters, by_type: dict[int, RTCRtpCodecParameters]) -> CodecKey:
    mime = codec.mimeType.lower()
    if mime.endswith("/rtx"):
        apt = codec.parameters.get("apt")
        target = (
            by_type.get(int(apt)) if isinstance(apt, int | str) and str(apt).isdigit() else None
        )
        return (mime, target.mimeType.lower() if target else "")
    return (mime, str(codec.clockRate), str(codec.channels or ""))


@dataclass
class BundleNumbers:
    payload_types: dict[CodecKey, int] = field(default_factory=dict)
    extension_ids: dict[str, int] = field(default_factory=dict)

    def learn(self, text: str) -> None:
        """Remember the client's numbers (from its offer); later offers keep them."""
        description = sdp.SessionDescription.parse(text)
        for media in description.media:
            if media.kind not in ("audio", "video"):
                continue
            by_type = {c.payloadType: c for c in media.rtp.codecs if c.payloadType is not None}
            for codec in media.rtp.codecs:
                if codec.payloadType is not None:
                    self.payload_types.setdefault(_key(codec, by_type), codec.payloadType)
            for extension in media.rtp.headerExtensions:
                self.extension_ids.setdefault(extension.uri, extension.id)

    def apply(self, text: str) -> str:
        """The server's offer renumbered as the client numbered things; extensions the
        client did not offer are left out (they could not be used anyway)."""
        if not self.payload_types and not self.extension_ids:
            return text
        description = sdp.SessionDescription.parse(text)
        for media in description.media:
            if media.kind in ("audio", "video"):
                self._renumber(media)
        return str(description)

    def _renumber(self, media: sdp.MediaDescription) -> None:
        by_type = {c.payloadType: c for c in media.rtp.codecs if c.payloadType is not None}
        mapping: dict[int, int] = {}
        for codec in media.rtp.codecs:
            wanted = self.payload_types.get(_key(codec, by_type))
            if codec.payloadType is not None and wanted is not None:
                mapping[codec.payloadType] = wanted
        if len(set(mapping.values())) != len(mapping):
            return  # two codecs would share a number: keep aiortc's own
        for codec in media.rtp.codecs:
            if codec.payloadType in mapping:
                codec.payloadType = mapping[codec.payloadType]
            apt = codec.parameters.get("apt")
            if apt is not None and str(apt).isdigit() and int(apt) in mapping:
                codec.parameters["apt"] = mapping[int(apt)]
        media.fmt = [mapping.get(int(f), int(f)) if str(f).isdigit() else f for f in media.fmt]
        if self.extension_ids:
            kept = [e for e in media.rtp.headerExtensions if e.uri in self.extension_ids]
            for extension in kept:
                extension.id = self.extension_ids[extension.uri]
            media.rtp.headerExtensions = kept


def sync_transceivers(pc: RTCPeerConnection, text: str) -> None:
    """Make each transceiver's codec and extension tables (aiortc's private ``_codecs``
    and ``_headerExtensions``, which ``createOffer`` resets) match the offer applied."""
    description = sdp.SessionDescription.parse(text)
    by_mid = {media.rtp.muxId: media for media in description.media}
    for transceiver in pc.getTransceivers():
        media = by_mid.get(transceiver.mid or "")
        if media is not None:
            transceiver._codecs = list(media.rtp.codecs)
            transceiver._headerExtensions = list(media.rtp.headerExtensions)
