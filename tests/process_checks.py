"""Test helpers: whether processes a test recorded (PID + create time) are gone."""

from __future__ import annotations

import time

import psutil


def gone(pid: int, create_time: float | None) -> bool:
    """True once ``pid`` has exited (a zombie counts) or now belongs to an unrelated, later process."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 1e-3:
            return True  # the PID was reused by an unrelated process
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def assert_stopped(procs, within: float = 20.0) -> None:
    """Every ``(pid, create_time, name)`` is gone within ``within`` seconds."""
    deadline = time.monotonic() + within
    left = list(procs)
    while left and time.monotonic() < deadline:
        left = [(pid, ct, name) for pid, ct, name in left if not gone(pid, ct)]
        time.sleep(0.2)
    assert not left, f"still running: {left}"
