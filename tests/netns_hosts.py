"""Test helper: separate hosts on one machine, as Linux network namespaces joined by a bridge.

:class:`NetnsLan` makes one namespace per host (``<prefix>-hq``,
``<prefix>-b0``, ...), each with its own address on 10.231.0.0/24: a bridge
``br0`` inside HQ's namespace, and a veth pair from it to every other host.
Every host resolves ``hq.bank.test`` to HQ's address through
``/etc/netns/<ns>/hosts``, which ``ip netns exec`` bind-mounts over
``/etc/hosts``.  Nothing is added to the root namespace: the bridge and the
veths live and die with the namespaces.  Leaving the ``with`` block kills
whatever still runs in the namespaces (by PID, from ``ip netns pids``),
deletes them and removes their ``/etc/netns`` entries, on success and
failure alike.  Needs root and ``ip`` (iproute2).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

SUBNET = "10.231.0"
HQ_NAME = "hq.bank.test"
ETC_NETNS = Path("/etc/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can (tried with a throwaway one)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    probe = f"fbprobe-{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip() or made.returncode}"
    _ip("netns", "del", probe, check=False)
    return None


class NetnsLan:
    """HQ and branch hosts in their own network namespaces; ``hq.bank.test`` is HQ's address everywhere."""

    def __init__(self, branches: int, prefix: str | None = None) -> None:
        self.prefix = prefix or f"fb{os.getpid()}"
        self.hq = f"{self.prefix}-hq"
        self.branches = [f"{self.prefix}-b{k}" for k in range(branches)]
        self.address = {self.hq: f"{SUBNET}.1"} | {ns: f"{SUBNET}.{10 + k}" for k, ns in enumerate(self.branches)}
        self.made: list[str] = []
        self._made_etc = not ETC_NETNS.exists()

    @property
    def namespaces(self) -> list[str]:
        return [self.hq, *self.branches]

    def __enter__(self) -> "NetnsLan":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _build(self) -> None:
        for ns in self.namespaces:
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            etc = ETC_NETNS / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{self.address[self.hq]} {HQ_NAME}\n", encoding="utf-8")
        _ip("-n", self.hq, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hq, "addr", "add", f"{self.address[self.hq]}/24", "dev", "br0")
        _ip("-n", self.hq, "link", "set", "br0", "up")
        for k, ns in enumerate(self.branches):
            port = f"vb{k}"
            _ip("-n", self.hq, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", self.hq, "link", "set", port, "master", "br0")
            _ip("-n", self.hq, "link", "set", port, "up")
            _ip("-n", ns, "addr", "add", f"{self.address[ns]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def exec_argv(self, ns: str, argv: list[str]) -> list[str]:
        """``argv`` run inside ``ns`` (``ip netns exec`` execs it: the PID is the command's own)."""
        return ["ip", "netns", "exec", ns, *argv]

    def pids(self, ns: str) -> list[int]:
        """PIDs of every process running in ``ns``."""
        out = _ip("netns", "pids", ns, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    def close(self) -> None:
        """Kill what still runs in the namespaces (by PID), delete them and their /etc/netns entries."""
        for ns in self.made:
            for pid in self.pids(ns):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        while any(self.pids(ns) for ns in self.made) and time.monotonic() < deadline:
            time.sleep(0.2)
        for ns in self.made:
            _ip("netns", "del", ns, check=False)
            shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)
        self.made = []
        if self._made_etc and ETC_NETNS.is_dir() and not any(ETC_NETNS.iterdir()):
            ETC_NETNS.rmdir()
