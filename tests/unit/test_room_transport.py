"""ICE servers for browsers (TURN credentials as coturn checks them) and the socket's
token bucket."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from server.rooms.ice import ice_servers, turn_credentials
from server.rooms.ratelimit import Bucket
from tests.support import make_settings


def test_turn_credentials_are_what_coturn_computes_from_the_shared_secret() -> None:
    username, credential = turn_credentials("s3cret", "user:7", 3600, now=1_000_000)
    assert username == "1003600:user:7"
    expected = hmac.new(b"s3cret", b"1003600:user:7", hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected


def test_browsers_get_stun_and_turn_from_configuration(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "sqlite:///" + str(tmp_path / "x.db"),
        YIZHAN_STUN_URLS="stun:turn.example.org:3478",
        YIZHAN_TURN_URL="turn:turn.example.org:3478?transport=udp,turn:turn.example.org:3478?transport=tcp",
        YIZHAN_TURN_SECRET="0123456789abcdef",
    )
    servers = ice_servers(settings, "guest:3")
    assert servers[0] == {"urls": ["stun:turn.example.org:3478"]}
    assert servers[1]["urls"] == [
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
    ]
    assert servers[1]["username"].endswith(":guest:3")
    assert servers[1]["credential"]


def test_without_configuration_there_are_no_ice_servers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///" + str(tmp_path / "x.db"))
    assert ice_servers(settings, "user:1") == []


def test_a_bucket_allows_a_burst_then_the_rate_and_notices_a_flood() -> None:
    now = [0.0]
    bucket = Bucket(rate=10, burst=20, clock=lambda: now[0])
    assert all(bucket.take() for _ in range(20))
    assert not bucket.take()
    now[0] += 0.5  # five more tokens
    assert sum(bucket.take() for _ in range(10)) == 5
    assert not bucket.flooding
    for _ in range(20):
        bucket.take()
    assert bucket.flooding


def test_a_quiet_spell_forgives_earlier_refusals() -> None:
    now = [0.0]
    bucket = Bucket(rate=10, burst=20, clock=lambda: now[0])
    for _ in range(35):
        bucket.take()
    assert bucket.refusals == 15
    now[0] += 10
    assert bucket.take()
    assert bucket.refusals == 0
