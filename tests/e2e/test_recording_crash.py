"""A server killed while it records: what was closed is kept, and the gap is on record.

Two Chromium pages (fake camera and microphone) meet in the demo mediation, which is
recorded, with 4-second segments. Once each track has closed segments the server is
killed (SIGKILL) and started again on the same data. Every segment closed before the
kill must reach the object store with the hash it was recorded with, the recording's
timeline must show the interruption (at the last heartbeat, "server stopped"), and
``yizhan storage verify`` must find nothing wrong.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.test_captions import launch, meet
from tests.e2e.test_dispute_flows import DemoServer, serve_demo
from tests.e2e.test_room import DEMO_SESSION

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SEGMENT_SECONDS = 4


@pytest.fixture
def recording_server(tmp_path: Path) -> Iterator[DemoServer]:
    with serve_demo(
        tmp_path,
        YIZHAN_RECORDING_SEGMENT_SECONDS=str(SEGMENT_SECONDS),
        YIZHAN_RECORDING_HEARTBEAT_SECONDS="1",
        YIZHAN_CAPTIONS="false",
    ) as server:
        yield server


def query(folder: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(folder / "data" / "yizhan.db", timeout=10) as db:
        return list(db.execute(sql, args).fetchall())


def segments(folder: Path) -> list[tuple[Any, ...]]:
    return query(
        folder,
        """SELECT s.track, s.run, s."index", s.sha256, s.size, o.key, o.status
           FROM recording_segments s JOIN stored_objects o ON o.id = s.object_id
           JOIN recordings r ON r.id = s.recording_id WHERE r.session_id = ?""",
        DEMO_SESSION,
    )


def wait_for(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.5)


def test_a_killed_server_keeps_every_closed_segment_and_logs_the_interruption(
    recording_server: DemoServer, tmp_path: Path
) -> None:
    url = recording_server.url
    with sync_playwright() as playwright:
        staff, party = launch(playwright), launch(playwright)
        try:
            host, zhang, _ = meet(staff, party, url)
            for page in (host, zhang):  # everyone in the room sees that it records
                expect(page.locator("#rec-banner")).to_be_visible()

            def closed_on_every_track() -> list[tuple[Any, ...]]:
                rows = segments(tmp_path)
                tracks = {row[0] for row in rows}
                per_track = [sum(1 for r in rows if r[0] == t) for t in tracks]
                return rows if len(tracks) >= 4 and min(per_track) >= 2 else []

            before = wait_for(closed_on_every_track, 90, "two closed segments on 4 tracks")
            recording_server.kill()
            killed_at = time.time()
            before = segments(tmp_path)  # what was closed when it died
            print(f"\n{len(before)} segments closed before the kill")
            recording_server.restart()
        finally:
            party.close()
            staff.close()

    objects = tmp_path / "data" / "objects"

    def all_stored() -> bool:
        rows = {(r[0], r[1], r[2]): r for r in segments(tmp_path)}
        return all(rows[(t, run, i)][6] == "stored" for t, run, i, *_ in before)

    wait_for(all_stored, 60, "every segment closed before the kill stored")
    for _track, _run, _index, sha256, size, key, _status in before:
        data = (objects / key).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha256, key

    def interruption() -> list[tuple[Any, ...]]:
        return query(
            tmp_path,
            """SELECT e.kind, e.reason, e.at FROM recording_events e
               JOIN recordings r ON r.id = e.recording_id
               WHERE r.session_id = ? AND e.kind = 'interrupted'""",
            DEMO_SESSION,
        )

    [(_, reason, at)] = wait_for(interruption, 30, "the interruption on the timeline")
    assert reason == "server_stopped"
    kinds = [
        k
        for (k,) in query(
            tmp_path,
            """SELECT e.kind FROM recording_events e JOIN recordings r
               ON r.id = e.recording_id WHERE r.session_id = ? ORDER BY e.at, e.id""",
            DEMO_SESSION,
        )
    ]
    assert kinds[0] == "started" and "interrupted" in kinds, kinds
    # placed at the recorder's last heartbeat (one a second): just before the kill
    interrupted_at = datetime.fromisoformat(str(at)).replace(tzinfo=UTC).timestamp()
    assert killed_at - 3 <= interrupted_at <= killed_at + 0.5, (interrupted_at, killed_at)

    verify = subprocess.run(
        [sys.executable, "-m", "server", "storage", "verify"],
        env=recording_server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
