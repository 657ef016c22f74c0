"""Rooms, peer connections and encoded-packet forwarding (aiortc SFU)."""
