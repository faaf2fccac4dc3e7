"""What a deployment left on disk, read back for the deployment fault tests: ledger, checkpoint, branch state."""

from __future__ import annotations

import json
from pathlib import Path

# What only the server's bookkeeping puts in a ledger line (times, the chain, ids, the server's own signature).
SERVER_FIELDS = {"time", "hash", "prev_hash", "signature", "server_signature", "run_id", "seq"}


def ledger(out: Path) -> list[dict]:
    path = out / "ledger.jsonl"
    lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
    return [line for line in lines if line.get("kind") != "head"]  # the server's signed round heads


def checkpoint_round(out: Path) -> int:
    path = out / "checkpoint" / "checkpoint.json"
    try:
        return int(json.loads(path.read_text())["round"])
    except (OSError, ValueError, KeyError):
        return 0


def privacy_state(out: Path, branch: str) -> dict:
    path = out / "branches" / branch / "privacy_state.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"history": [], "rounds": []}


def state_rounds(out: Path, branch: str) -> list[int]:
    return [r["round"] for r in privacy_state(out, branch)["rounds"]]


def spend(lines: list[dict]) -> list[tuple]:
    """The ledger's content without what only the server's bookkeeping puts there (time, chain, ids)."""
    return sorted(tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in l.items() if k not in SERVER_FIELDS))
                  for l in lines)


def epsilon_after(entries: list[dict]) -> float:
    """Epsilon of a fresh Opacus accountant over the ledgered rounds' (noise, sample rate, steps)."""
    from opacus.accountants import create_accountant

    acc = create_accountant(entries[0]["accountant"])
    acc.history = [(float(e["noise_multiplier"]), float(e["sample_rate"]), int(e["steps"])) for e in entries]
    return float(acc.get_epsilon(delta=entries[0]["delta"]))
