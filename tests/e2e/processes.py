"""Stopping a server that the e2e tests started in its own process group."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """SIGTERM the process group; the exit status, or None if it did not exit in time."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def kill_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
