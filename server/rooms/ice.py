"""ICE servers for the rooms: STUN, and TURN with short-lived credentials.

TURN credentials follow coturn's "use-auth-secret" scheme (the TURN REST API draft):
the username is ``<expiry unix time>:<who>`` and the password is the base64 of the
HMAC-SHA1 of that username under the secret that coturn also holds, so the app never
stores TURN passwords and a leaked one expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from server.config import Settings


def turn_credentials(
    secret: str, who: str, ttl_seconds: int, now: float | None = None
) -> tuple[str, str]:
    expires = int((time.time() if now is None else now) + ttl_seconds)
    username = f"{expires}:{who}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(settings: Settings, who: str) -> list[dict[str, Any]]:
    """What a browser passes to ``RTCPeerConnection({iceServers})``."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    secret = settings.turn_secret.get_secret_value()
    if settings.turn_url and secret:
        username, credential = turn_credentials(secret, who, settings.turn_ttl_seconds)
        servers.append(
            {"urls": list(settings.turn_url), "username": username, "credential": credential}
        )
    return servers
