"""A real S3-speaking server (moto's server mode) on 127.0.0.1 for the tests."""

from __future__ import annotations

import socket
import time
import uuid

from moto.server import ThreadedMotoServer

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.running = False

    def start(self) -> None:
        self.server.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    self.running = True
                    return
            time.sleep(0.05)
        raise RuntimeError("the S3 test server did not start")

    def stop(self) -> None:
        if self.running:
            self.server.stop()
            self.running = False

    def url(self, bucket: str | None = None) -> str:
        bucket = bucket or f"yz-{uuid.uuid4().hex[:12]}"
        return f"s3://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:{self.port}/{bucket}?secure=false"
