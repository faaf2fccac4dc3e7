"""What a run measured, round by round, written to ``metrics.json``.

The recorder collects each round's held-out evaluation and each branch's
privacy figures and rewrites ``metrics.json`` atomically after every round,
so a run that stops early still leaves the rounds it completed.
"""

from __future__ import annotations

import json
from pathlib import Path

from common.atomic import write_bytes_atomic


def write_json_atomic(path: Path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    write_bytes_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8"))


class RunRecorder:
    """Per-round metrics of a run, persisted to ``metrics.json``."""

    def __init__(self, path: Path, run_info: dict) -> None:
        self.path = Path(path)
        self.data = {**run_info, "rounds": []}

    @classmethod
    def resume(cls, path: Path, last_round: int) -> "RunRecorder":
        """Continue an existing metrics.json, dropping rounds after the checkpointed one."""
        recorder = cls(path, {})
        recorder.data = json.loads(Path(path).read_text(encoding="utf-8"))
        recorder.data["rounds"] = [r for r in recorder.data.get("rounds", []) if r["round"] <= last_round]
        recorder.data.setdefault("resumed_after", []).append(last_round)
        return recorder

    def _round(self, server_round: int) -> dict:
        for entry in self.data["rounds"]:
            if entry["round"] == server_round:
                return entry
        entry = {"round": server_round, "branches": {}, "failures": [], "rejected": []}
        self.data["rounds"].append(entry)
        self.data["rounds"].sort(key=lambda e: e["round"])
        return entry

    def add_branch(self, server_round: int, branch_id: str, claim: dict, wire_bytes: int = 0, norm: float | None = None) -> None:
        """Record one branch's status and privacy figures for a round."""
        self._round(server_round)["branches"][branch_id] = {
            "status": claim["status"],
            "epsilon": claim["epsilon"],
            "budget_epsilon": claim["budget_epsilon"],
            "examples": claim["examples"],
            "steps": claim["steps"],
            "wire_bytes": int(wire_bytes),
            "update_norm": norm,
        }

    def add_rejection(self, server_round: int, branch_id: str, reason: str, detail: str) -> None:
        """Record an update excluded from aggregation, with its reason."""
        self._round(server_round).setdefault("rejected", []).append({"branch": branch_id, "reason": reason, "detail": detail})

    def add_client_level(self, server_round: int, epsilon: float, delta: float) -> None:
        """Record the cumulative client-level (central DP) epsilon after a round."""
        self._round(server_round)["client_level"] = {"epsilon": float(epsilon), "delta": float(delta)}

    def add_failure(self, server_round: int, node_id: int, reason: str, branch: str | None = None) -> None:
        """Record a node that failed in a round (its branch when known)."""
        self._round(server_round).setdefault("failures", []).append({"node": int(node_id), "branch": branch, "reason": reason})

    def add_evaluation(self, server_round: int, metrics: dict) -> None:
        """Record the held-out evaluation after a round (round 0 = initial model)."""
        self._round(server_round).update({k: float(v) for k, v in metrics.items()})
        self.save()

    def final(self) -> dict:
        """The last round's evaluation."""
        return self.data["rounds"][-1] if self.data["rounds"] else {}

    def save(self) -> None:
        """Rewrite metrics.json atomically."""
        write_json_atomic(self.path, self.data)
