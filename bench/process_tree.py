"""Memory and CPU of a benchmark's whole process tree, sampled in a thread (bench/scale.py).

:class:`MemorySampler` reads, every interval, the RSS (and every few samples
the PSS) and the CPU time of this process and all its descendants -- the
SuperLink, ``flwr run``, the simulation process, Ray's system processes and
workers -- and tells each kind of process apart by its command line
(:func:`process_role`); :func:`steady_cpu` turns the samples into CPU seconds
per round between two log lines of a run.
"""

from __future__ import annotations

import os
import re
import threading
import time

from bench.harness import LineClock


def process_role(proc) -> tuple[str, str]:
    """What a process of the tree is (from its command line), and the start of that command line."""
    try:
        cmd = " ".join(proc.cmdline())
        name = proc.name()
    except Exception:  # noqa: BLE001 - gone or inaccessible
        return "other", ""
    text = f"{name} {cmd}"
    if proc.pid == os.getpid():
        role = "bench (runner)"
    elif "ray::" in text or "default_worker.py" in text:
        role = "ray worker"
    elif any(k in text for k in ("raylet", "gcs_server", "dashboard", "log_monitor", "runtime_env", "monitor.py")):
        role = "ray system"
    elif "flower-superlink" in text:
        role = "flower-superlink"
    elif "flwr-simulation" in text:
        role = "flwr-simulation (ServerApp + engine)"
    elif "flower-superexec" in text or "superexec" in text:
        role = "flower-superexec"
    elif re.search(r"\bflwr\b.*\b(run|ls)\b", cmd):
        role = "flwr CLI (run, ls)"
    else:
        role = "other"
    return role, cmd[:160]


class MemorySampler:
    """Samples RSS and PSS of this process and all its descendants in a thread."""

    def __init__(self, interval: float, pss_every: int = 4) -> None:
        import psutil

        self.psutil = psutil
        self.interval = interval
        self.pss_every = max(1, pss_every)
        self.root = psutil.Process()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self.samples = 0
        self.per_pid: dict[int, dict] = {}
        self.timeline: list[tuple[float, int, int, int]] = []  # (s, total rss, total pss, processes)
        self.cpu_timeline: list[tuple[float, dict[int, float]]] = []  # (monotonic s, cumulative CPU s by pid)
        self.t0 = time.monotonic()

    def __enter__(self) -> "MemorySampler":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def sample(self) -> None:
        psutil = self.psutil
        try:
            procs = [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return
        rss_total = pss_total = count = 0
        pid_cpu: dict[int, float] = {}
        with_pss = self.samples % self.pss_every == 0  # PSS reads smaps (~2 ms per torch process): less often
        for proc in procs:
            try:
                info = proc.memory_full_info() if with_pss else proc.memory_info()
            except psutil.Error:
                continue
            try:
                cpu = proc.cpu_times()
                cpu_s = cpu.user + cpu.system
            except psutil.Error:
                cpu_s = None
            count += 1
            rss_total += info.rss
            pss_total += getattr(info, "pss", 0)
            entry = self.per_pid.get(proc.pid)
            if entry is None:
                entry = self.per_pid[proc.pid] = {"pid": proc.pid, "role": "other", "cmd": "", "max_rss": 0, "max_pss": 0}
            if entry["role"] in ("other", "ray system") or self.samples % 20 == 0:  # a Ray worker renames itself once started
                entry["role"], entry["cmd"] = process_role(proc)
            if cpu_s is not None:
                entry.setdefault("cpu_first", cpu_s)
                entry["cpu_s"] = cpu_s  # cumulative: the last sample is the process's CPU time (to within an interval)
                pid_cpu[proc.pid] = cpu_s
            entry["max_rss"] = max(entry["max_rss"], info.rss)
            entry["max_pss"] = max(entry["max_pss"], getattr(info, "pss", 0))
        self.samples += 1
        self.peak_rss = max(self.peak_rss, rss_total)
        if with_pss:
            self.peak_pss = max(self.peak_pss, pss_total)
        self.peak_procs = max(self.peak_procs, count)
        self.timeline.append((round(time.monotonic() - self.t0, 2), rss_total, pss_total if with_pss else None, count))
        self.cpu_timeline.append((time.monotonic(), pid_cpu))

    def cpu_between(self, t_start: float, t_end: float) -> dict[str, float]:
        """CPU seconds each kind of process used between two monotonic times (nearest samples).

        Per process (one started in between counts from 0), then summed by its role as last classified.
        """
        def at(t):
            return min(self.cpu_timeline, key=lambda x: abs(x[0] - t))[1] if self.cpu_timeline else {}
        a, b = at(t_start), at(t_end)
        out: dict[str, float] = {}
        for pid, cpu in b.items():
            role = self.per_pid.get(pid, {}).get("role", "other")
            out[role] = out.get(role, 0.0) + cpu - a.get(pid, 0.0)
        return {role: round(v, 2) for role, v in out.items()}

    def summary(self) -> dict:
        roles: dict[str, dict] = {}
        for entry in self.per_pid.values():
            r = roles.setdefault(entry["role"], {"processes": 0, "max_rss": 0, "max_pss": 0, "cpu_s": 0.0})
            r["processes"] += 1
            r["cpu_s"] += entry.get("cpu_s", 0.0) - (entry.get("cpu_first", 0.0) if entry["role"] == "bench (runner)" else 0.0)
            r["max_rss"] = max(r["max_rss"], entry["max_rss"])
            r["max_pss"] = max(r["max_pss"], entry["max_pss"])
        largest = max(self.per_pid.values(), key=lambda e: e["max_rss"], default=None)
        return {"peak_total_rss": self.peak_rss, "peak_total_pss": self.peak_pss, "peak_processes": self.peak_procs,
                "samples": self.samples, "interval_s": self.interval, "pss_every": self.pss_every, "by_role": roles,
                "largest_process": largest, "timeline": self.timeline[:: max(1, len(self.timeline) // 100)]}


def steady_cpu(clock: LineClock, mem: MemorySampler) -> dict | None:
    """CPU seconds per kind of process from round 2's start to the last round's evaluation, and per round."""
    marks = [(t, re.sub(r"\x1b\[[0-9;]*m", "", line)) for t, line in clock.lines]
    start = next((t for t, line in marks if "[ROUND 2/" in line), None)
    end = [t for t, line in marks if re.search(r"fedbank round \d+/\d+: held-out", line)]
    if start is None or not end or end[-1] <= start:
        return None
    n_rounds = sum(1 for t in end if t > start)
    cpu = mem.cpu_between(clock.t0 + start, clock.t0 + end[-1])
    return {"seconds": round(end[-1] - start, 2), "rounds": n_rounds, "cpu_s": cpu,
            "cpu_s_per_round": {k: round(v / n_rounds, 2) for k, v in cpu.items()}}
