"""Upload and download throughput of the object-store backends, as ratios to a raw copy.

    .venv/bin/python -m bench.storage [--rounds 3] [--skip-large]

For 1 MiB and 100 MiB objects: the local backend (atomic write with fsync, chunked
read) and the S3 backend (minio client against moto's S3 server on 127.0.0.1, 8 MiB
multipart parts), each timed against ``shutil.copyfile`` of the same file on the same
disk (baseline for uploads) and a plain chunked read (baseline for downloads).
Rounds are interleaved and medians reported; a ratio of 2.0 means twice the time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from storage.base import ObjectStore
from storage.local import LocalStore
from storage.location import parse
from storage.s3 import S3Store
from tests.s3_server import S3Server

MIB = 1024 * 1024


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def drain(store: ObjectStore, key: str) -> int:
    return sum([len(chunk) async for chunk in store.open(key)])


def read_plain(path: Path) -> int:
    total = 0
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            total += len(chunk)
    return total


async def measure(size: int, stores: dict[str, ObjectStore], folder: Path, rounds: int) -> None:
    source = folder / f"source-{size}"
    with source.open("wb") as out:
        for _ in range(size // MIB):
            out.write(os.urandom(MIB))
    copies = folder / "copies"
    copies.mkdir(exist_ok=True)
    up: dict[str, list[float]] = {"copy": [], **{name: [] for name in stores}}
    down: dict[str, list[float]] = {"read": [], **{name: [] for name in stores}}
    for round_ in range(rounds):
        target = copies / f"{size}-{round_}"
        up["copy"].append(
            await timed(lambda t=target: asyncio.to_thread(shutil.copyfile, source, t))
        )
        down["read"].append(await timed(lambda t=target: asyncio.to_thread(read_plain, t)))
        for name, store in stores.items():
            key = f"bench/{size}/{round_}.bin"
            up[name].append(
                await timed(
                    lambda s=store, k=key: s.put_file(
                        k, source, content_type="application/octet-stream", write_once=False
                    )
                )
            )
            down[name].append(await timed(lambda s=store, k=key: drain(s, k)))
        target.unlink()
    base_up, base_down = statistics.median(up["copy"]), statistics.median(down["read"])
    label = f"{size // MIB} MiB"
    print(
        f"{label:>8}  baseline copy {size / MIB / base_up:8.1f} MiB/s   read {size / MIB / base_down:8.1f} MiB/s"
    )
    for name in stores:
        u, d = statistics.median(up[name]), statistics.median(down[name])
        print(
            f"{label:>8}  {name:<6} upload {size / MIB / u:8.1f} MiB/s ({u / base_up:6.2f}× copy)"
            f"   download {size / MIB / d:8.1f} MiB/s ({d / base_down:6.2f}× read)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true", help="only the 1 MiB objects")
    args = parser.parse_args()
    server = S3Server()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            s3 = S3Store(parse(server.url()), timeout=120)
            local = LocalStore(folder / "objects")
            stores: dict[str, ObjectStore] = {"local": local, "s3": s3}
            for store in stores.values():
                await store.ensure_ready()
            for size in (MIB, 100 * MIB)[: 1 if args.skip_large else 2]:
                await measure(size, stores, folder, args.rounds)
    finally:
        server.stop()


if __name__ == "__main__":
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    asyncio.run(main())
