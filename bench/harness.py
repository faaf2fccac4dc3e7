"""Shared helpers of the fedbank benchmarks (bench/*.py): timing, runs, results.

Every benchmark prints progress to stderr, a Markdown table to stdout and
writes a JSON result under ``bench/results/``.  The machine is shared and
small, so figures are medians of repeats and ratios are taken within one run
(both arms measured alternately, under the same load); the JSON records the
load average before and after so a reader can judge how noisy a run was.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().with_name("results")

if str(ROOT) not in sys.path:  # `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

_T0 = time.monotonic()

# Timestamped log lines of the ServerApp, e.g. "11/23/2026 23:51:40:INFO:[ROUND 1/3]".
_STAMP = re.compile(r"^(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d):[A-Z]+:(.*)$")
_ROUND_START = re.compile(r"^\[ROUND (\d+)/(\d+)\]")
_ROUND_EVAL = re.compile(r"^fedbank round (\d+)/(\d+): held-out")


def say(msg: str) -> None:
    """One progress line on stderr, with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def limit_threads(threads: int) -> None:
    """OpenMP/MKL threads of this process and of the processes it starts (a simulation's Ray actors)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy the machine was."""
    import torch

    try:
        import flwr

        flwr_version = flwr.__version__ if hasattr(flwr, "__version__") else _dist_version("flwr")
    except ImportError:  # pragma: no cover
        flwr_version = None
    return {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "flwr": flwr_version,
        "torch_threads": torch.get_num_threads(),
        "loadavg": list(os.getloadavg()),
    }


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return None


def write_result(path: str | Path, result: Mapping[str, Any]) -> Path:
    """Write the JSON result (with the load average at the end of the run) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(result)
    data.setdefault("loadavg_end", list(os.getloadavg()))
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    say(f"wrote {path}")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


# --------------------------------------------------------------------------- federated runs


def round_marks(log_text: str) -> dict[str, Any]:
    """Round timing from the ServerApp's timestamped log lines (1-second resolution).

    A round runs from its ``[ROUND k/N]`` line (the server samples branches and
    sends the global adapter) to its ``fedbank round k/N: held-out ...`` line
    (every reply received, admitted, ledgered, aggregated and the result
    evaluated on the held-out set).  ``span_s`` is from the first round's start
    to the last round's evaluation, so only two timestamps, each truncated to
    the second, bound it: ``span_s`` is exact to +-1 s whatever the number of
    rounds.  Round 0 (evaluation of the initial adapter) and start-up are
    outside the span.
    """
    from datetime import datetime

    starts: dict[int, float] = {}
    evals: dict[int, float] = {}
    for line in log_text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        m = _STAMP.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%m/%d/%Y %H:%M:%S").timestamp()
        msg = m.group(2).strip()
        if (s := _ROUND_START.match(msg)) and int(s.group(1)) not in starts:
            starts[int(s.group(1))] = t
        elif (e := _ROUND_EVAL.match(msg)) and int(e.group(1)) not in evals:
            evals[int(e.group(1))] = t
    return _marks(starts, evals)


class LineClock:
    """``on_line`` callback: keeps the stream's lines with their arrival time, and reports rounds."""

    def __init__(self, label: str, verbose: bool = False) -> None:
        self.label = label
        self.verbose = verbose
        self.t0 = time.monotonic()
        self.lines: list[tuple[float, str]] = []

    def __call__(self, line: str) -> None:
        now = time.monotonic() - self.t0
        self.lines.append((now, line))
        clean = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if self.verbose:
            say(f"{self.label}: {clean}")
        elif "fedbank round" in clean and ":INFO:" not in clean:
            say(f"{self.label}: {clean.split('fedbank ', 1)[1].strip()}")
        elif ("ERROR" in clean or "rejected update" in clean) and ":INFO:" not in clean and ":WARNING:" not in clean:
            say(f"{self.label}: {clean.strip()}")

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first_round_arrival(self) -> float | None:
        """Seconds from this clock's creation to the arrival of ``[ROUND 1/``: start-up plus round 0."""
        for t, line in self.lines:
            if "[ROUND 1/" in line:
                return t
        return None

    def round_marks(self) -> dict[str, Any]:
        """Round timing from when the ServerApp's round lines *arrived* on the ``flwr run --stream`` output.

        Same round boundaries as :func:`round_marks` (``[ROUND k/N]`` to ``fedbank
        round k/N: held-out``), timed by this process's monotonic clock as each
        line arrived.  Works for simulation and deployment alike (the deployment's
        stream carries no timestamps); both lines of a round cross the same
        stream, so its delivery delay mostly cancels in the differences.
        """
        starts: dict[int, float] = {}
        evals: dict[int, float] = {}
        for t, line in self.lines:
            clean = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
            m = _STAMP.match(clean)
            msg = m.group(2).strip() if m else re.sub(r"^[A-Z]+\s*:\s*", "", clean)
            if (s := _ROUND_START.match(msg)) and int(s.group(1)) not in starts:
                starts[int(s.group(1))] = t
            elif (e := _ROUND_EVAL.match(msg)) and int(e.group(1)) not in evals:
                evals[int(e.group(1))] = t
        return _marks(starts, evals)


def _marks(starts: Mapping[int, float], evals: Mapping[int, float]) -> dict[str, Any]:
    rounds = sorted(r for r in starts if r in evals and r >= 1)
    if not rounds:
        return {"rounds": 0, "span_s": None, "per_round_s": [], "mean_round_s": None, "steady_round_s": None}
    per_round = [evals[r] - starts[r] for r in rounds]
    span = evals[rounds[-1]] - starts[rounds[0]]
    # Rounds 2..N, evaluation to evaluation: leaves out round 1's warm-up (first ClientApp call per worker).
    steady = (evals[rounds[-1]] - evals[rounds[0]]) / (len(rounds) - 1) if len(rounds) > 1 else None
    return {"rounds": len(rounds), "span_s": span, "per_round_s": per_round, "mean_round_s": span / len(rounds),
            "steady_round_s": steady}


def ledger_marks(out_dir: Path) -> dict[str, Any]:
    """Round timing from the ledger: every line of a round carries the second the server aggregated it.

    (last round - first round) / (rounds - 1) is the mean time between two
    aggregations, i.e. one round of rounds 2..N, exact to +-1 s / (rounds - 1).
    """
    from datetime import datetime

    times: dict[int, float] = {}
    path = Path(out_dir) / "ledger.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        t = datetime.fromisoformat(entry["time"]).timestamp()
        times[int(entry["round"])] = min(t, times.get(int(entry["round"]), t))
    rounds = sorted(times)
    if len(rounds) < 2:
        return {"rounds": len(rounds), "mean_round_s": None}
    return {"rounds": len(rounds), "mean_round_s": (times[rounds[-1]] - times[rounds[0]]) / (rounds[-1] - rounds[0])}


def final_metrics(out_dir: Path) -> dict[str, Any]:
    """The last round's held-out figures, and every round's rejections, from ``metrics.json``."""
    data = json.loads((Path(out_dir) / "metrics.json").read_text(encoding="utf-8"))
    rounds = data["rounds"]
    last = rounds[-1]
    return {
        "accuracy": last.get("accuracy"),
        "macro_f1": last.get("macro_f1"),
        "loss": last.get("loss"),
        "accuracy_by_round": [r.get("accuracy") for r in rounds],
        "macro_f1_by_round": [r.get("macro_f1") for r in rounds],
        "rejected": [{"round": r["round"], **rej} for r in rounds for rej in r.get("rejected", [])],
        "failures": [{"round": r["round"], **f} for r in rounds for f in r.get("failures", [])],
        "update_norms": {r["round"]: {b: v.get("update_norm") for b, v in r.get("branches", {}).items()} for r in rounds if r.get("branches")},
        "wire_bytes": {r["round"]: {b: v.get("wire_bytes") for b, v in r.get("branches", {}).items()} for r in rounds if r.get("branches")},
    }
