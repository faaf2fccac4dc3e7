"""Processes fedbank starts, and how they are stopped: by PID and process group.

A deployment's hosts and the simulation's SuperLink are started here.

:class:`ManagedProcess` wraps one started process (its log, its process group,
the helpers Flower forks from it: SuperExec, ServerApp, ClientApp, Ray's
agents) and stops exactly those.  :func:`spawn` starts one with its output in a
log file and :func:`wait_port` waits until it listens (:func:`free_port` picks
a port); :class:`ProcessFailed` names the process, its log and the last error
line in it (:func:`last_error_line`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

from common.errors import RunFailed
from simulations.signals import signals_deferred

START_TIMEOUT = 60.0
#: Listen addresses that mean "every interface": connect to 127.0.0.1 instead.
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
STOP_TIMEOUT = 15.0
#: How long helpers get to exit on their own once their parent is gone, before SIGTERM (Ray's agents never do).
HELPER_GRACE = 5.0

OnText = Callable[[str], None]


class ProcessFailed(RunFailed):
    """A process of the deployment exited, or did not become ready, in time."""

    def __init__(self, name: str, log_path: Path, what: str) -> None:
        self.name = name
        self.log_path = log_path
        super().__init__(f"{name} {what}; see {log_path}" + last_error_suffix(log_path))


# --------------------------------------------------------------------------- processes


class ManagedProcess:
    """One process this module started (in its own session), and how to stop it.

    Flower forks helpers into *new sessions* (SuperExec, then ServerApp /
    ClientApp processes) that exit on their own when their parent is gone;
    :meth:`stop` also waits for them and ends any straggler by PID.
    """

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path, cmd: Sequence[str]) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self.cmd = list(cmd)
        self.started = time.time()
        try:
            self._ps = psutil.Process(popen.pid)
        except psutil.Error:  # pragma: no cover - exited before we looked
            self._ps = None
        self._seen: dict[int, psutil.Process] = {}

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def check(self) -> None:
        """Raise :class:`ProcessFailed` if the process has exited."""
        if not self.running:
            raise ProcessFailed(self.name, self.log_path, f"(pid {self.pid}) exited with code {self.popen.returncode}")

    def descendants(self) -> list[psutil.Process]:
        """Live processes forked from this one (any depth, any session); remembered for :meth:`stop`."""
        if self._ps is not None and self.running:
            try:
                for child in self._ps.children(recursive=True):
                    self._seen.setdefault(child.pid, child)
            except psutil.Error:
                pass
        return [p for p in self._seen.values() if _alive(p)]

    def pids(self) -> list[int]:
        """This process's PID and its live descendants' PIDs."""
        return ([self.pid] if self.running else []) + [p.pid for p in self.descendants()]

    def describe(self) -> dict[str, object]:
        """What ``processes.json`` records about this process."""
        return {"name": self.name, "pid": self.pid, "create_time": _create_time(self._ps), "log": str(self.log_path),
                "cmd": self.cmd, "children": [{"pid": p.pid, "create_time": _create_time(p)} for p in self._seen.values()]}

    def halt_descendants(self) -> list[psutil.Process]:
        """SIGSTOP every live descendant (rescanning for any forked meanwhile): none takes another step.

        Each is waited for (up to 1 s) until it has stopped: a stopped process
        is between system calls, so the SIGKILL after it cannot cut a write
        short (fedbank writes each ledger line with one ``os.write`` and every
        other record atomically, by rename).
        """
        halted: dict[int, psutil.Process] = {}
        for _ in range(5):
            fresh = [p for p in self.descendants() if p.pid not in halted]
            if not fresh:
                break
            for proc in fresh:
                quietly(lambda: proc.send_signal(signal.SIGSTOP))
                halted[proc.pid] = proc
        # a stop is delivered asynchronously: wait (briefly) until each one has taken it
        stopped_by = time.monotonic() + 1.0
        while time.monotonic() < stopped_by and any(_running_on(p) for p in halted.values()):
            time.sleep(0.02)
        return list(halted.values())

    def stop(self, timeout: float = STOP_TIMEOUT, *, halt_helpers: bool = False) -> None:
        """SIGTERM the process group, SIGKILL after ``timeout``; then make sure its helpers are gone too.

        ``halt_helpers``: first freeze every helper (:meth:`halt_descendants`),
        SIGKILL them with no grace period, then stop the process.  For an
        interrupted simulation: its ServerApp runs the rounds in-process
        (Ray), needs no SuperLink to go on, and would otherwise finish
        rounds, and ledger the branches it was losing as failed, while it
        was being stopped.

        A second Ctrl-C or SIGTERM meanwhile does not cut this short.
        """
        with signals_deferred():
            halted = self.halt_descendants() if halt_helpers else []
            # halted helpers go first: the process may wait on one as it shuts down (the SuperLink on
            # its SuperExec), and a halted one never answers
            _kill_now(halted)
            killed = {p.pid for p in halted}
            family = [p for p in self.descendants() if p.pid not in killed]
            if self.running:
                _signal_group(self.pid, signal.SIGTERM)
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(self.pid, signal.SIGKILL)
                    quietly(lambda: self.popen.wait(timeout=5))
            else:
                quietly(lambda: self.popen.wait(timeout=1))
            # Flower's helpers poll their parent every 0.2 s and exit; give them a moment (none when
            # halting: these were forked after the last scan), then insist.
            grace = 0.0 if halt_helpers else min(timeout, HELPER_GRACE)
            _, alive = psutil.wait_procs([p for p in family if _alive(p)], timeout=grace)
            for signum in (signal.SIGTERM, signal.SIGKILL):
                for proc in alive:
                    quietly(lambda: proc.send_signal(signum))
                _, alive = psutil.wait_procs(alive, timeout=5)


def _kill_now(procs: list[psutil.Process]) -> None:
    """SIGKILL ``procs`` and wait (up to 5 s) until they are gone; a killed child of a live process stays a
    zombie until reaped, which counts as gone here."""
    alive = [p for p in procs if _alive(p)]
    for proc in alive:
        quietly(lambda: proc.send_signal(signal.SIGKILL))
    gone_by = time.monotonic() + 5
    while any(_alive(p) for p in alive) and time.monotonic() < gone_by:
        time.sleep(0.05)


def quietly(action) -> None:
    """Run a clean-up step whose process may already be gone."""
    try:
        action()
    except (psutil.Error, ProcessLookupError, subprocess.TimeoutExpired):
        pass


def _running_on(proc: psutil.Process) -> bool:
    """Alive and not (yet) stopped by SIGSTOP."""
    try:
        return proc.is_running() and proc.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_STOPPED)
    except psutil.Error:
        return False


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _create_time(proc: psutil.Process | None) -> float | None:
    try:
        return proc.create_time() if proc is not None else None
    except psutil.Error:
        return None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(name: str, cmd: Sequence[str], env: Mapping[str, str], log_path: Path) -> ManagedProcess:
    """Start ``cmd`` in a session of its own, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== fedbank: starting {name}: {' '.join(cmd)}\n".encode())
        log.flush()
        popen = subprocess.Popen(list(cmd), env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    return ManagedProcess(name, popen, log_path, cmd)


def last_error_line(log_path: Path) -> str:
    """The last line of a log that looks like an error, for one-line messages."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-200:]
    except OSError:
        return ""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", l).strip() for l in lines if "=== fedbank" not in l]
    for marks in (("[code:", "Error:", "Exception:", "CERTIFICATE_VERIFY_FAILED", "ERROR"),  # Flower's and Python's
                  ("Failed", "failed", "error")):                                          # then anything alike
        picked = [l for l in lines if any(m in l for m in marks) and l not in ("ERROR :", "ERROR")]
        if picked:
            return picked[-1][:300]
    return ""


def last_error_suffix(log_path: Path) -> str:
    """`` (last error: ...)`` naming the last error line of a log, or nothing when it has none."""
    detail = last_error_line(log_path)
    return f" (last error: {detail})" if detail else ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(proc: ManagedProcess, host: str, port: int, deadline: float, what: str) -> None:
    """Wait until ``proc`` listens on ``host:port``; stop it and raise :class:`ProcessFailed` if it exits or is late."""
    host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    while True:
        proc.check()
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.stop()
            raise ProcessFailed(proc.name, proc.log_path, f"did not open its {what} on {host}:{port} in time")
        time.sleep(0.2)
