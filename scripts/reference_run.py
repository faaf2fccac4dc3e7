"""Proof that a refactoring kept the product: a fixed reference simulation, compared field by field.

Runs ``fedbank simulate`` twice on fixed seeds (3 branches x 2 rounds): once with DP
(the ledger's privacy claims and ``metrics.json``) and once with ``dp.enabled=false``
(the final adapter, bit for bit), and reduces each run to what must not change:
every ledger claim (times, hashes, signatures and seq aside), every metric
(times aside) and the SHA-256 of every adapter file. ``--write FILE`` stores that
summary; ``--check FILE`` runs again and prints each difference (exit 1 if any).

Random DP noise is seeded by the run's seeds, so the DP run is compared exactly
too; the run without DP is the bit-exact check of training and aggregation.

    python scripts/reference_run.py --write tests/data/reference_run.json   # before
    python scripts/reference_run.py --check tests/data/reference_run.json   # after
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARMS = {
    "dp": ["--epsilon", "8"],
    "no-dp": ["--no-dp"],
}
COMMON = ["--branches", "3", "--rounds", "2", "--set", "seed=42", "--set", "model.seed=1234",
          "--set", "data.records-per-branch=60"]
# Fields that differ between two identical runs: wall-clock times, random ids, hashes and signatures over them.
VOLATILE = {"time", "hash", "prev_hash", "signature", "seq", "run_id", "seconds", "wall_s", "duration_s",
            "started", "finished", "output_dir", "output-dir", "elapsed_s", "round_seconds", "train_seconds",
            "keys-dir", "security.keys-dir", "server_signature"}
# What DP's random (unseeded) noise moves between two runs of the same code.
NOISY = {"loss", "accuracy", "macro_f1", "update_norm", "roc_auc", "ks", "f1", "pr_auc", "perplexity", "rouge_l"}


def _strip(value):
    """``value`` without volatile fields, recursively."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in sorted(value.items()) if k not in VOLATILE and not k.endswith("_seconds")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _without_noise(metrics: dict) -> dict:
    """``metrics`` less what DP's random noise moves: held-out scores and update norms."""
    rounds = []
    for entry in metrics.get("rounds", []):
        entry = {k: v for k, v in entry.items() if k not in NOISY}
        if isinstance(entry.get("branches"), dict):
            entry["branches"] = {b: {k: v for k, v in row.items() if k not in NOISY}
                                 for b, row in entry["branches"].items()}
        rounds.append(entry)
    return {**metrics, "rounds": rounds}


def adapter_digest(adapter: Path) -> dict:
    """SHA-256 of every tensor of the saved adapter, and its PEFT config with lists order-free."""
    from safetensors.numpy import load_file

    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    config = {k: sorted(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v
              for k, v in config.items()}
    return {"tensors": {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in sorted(tensors.items())},
            "adapter_config": _strip(config),
            "fedbank_model": _strip(json.loads((adapter / "fedbank_model.json").read_text()))}


def summarize(run: Path, noisy: bool) -> dict:
    """What must not change in one run directory (with DP: nothing its random noise moves)."""
    lines = [json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines() if line.strip()]
    # The server's signed round heads carry only hashes and keys (new every run): their rounds are what counts.
    ledger = [_strip(e) if e.get("kind") != "head" else {"head_of_round": e["round"]} for e in lines]
    metrics = _strip(json.loads((run / "metrics.json").read_text()))
    adapter = adapter_digest(run / "adapter")
    if noisy:
        metrics = _without_noise(metrics)
        adapter.pop("tensors")
    return {"ledger": ledger, "metrics": metrics, "adapter": adapter}


def run_arm(name: str, out: Path) -> dict:
    """Run one arm of the reference simulation into ``out`` and summarize it."""
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0"}
    cmd = [sys.executable, "-m", "simulations.cli.main", "simulate", "--out", str(out), *COMMON, *ARMS[name]]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"reference run '{name}' failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return summarize(out, noisy=name == "dp")


def differences(before, after, path: str = "") -> list[str]:
    """Every place where ``after`` differs from ``before``, as ``path: before -> after``."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after)):
            if key not in after:
                out.append(f"{path}/{key}: removed")
            elif key not in before:
                out.append(f"{path}/{key}: added")
            else:
                out += differences(before[key], after[key], f"{path}/{key}")
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{path}: {len(before)} items -> {len(after)}"]
        return [d for i, (b, a) in enumerate(zip(before, after)) for d in differences(b, a, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="store the reference summary in FILE")
    group.add_argument("--check", type=Path, help="run again and compare with the summary in FILE")
    parser.add_argument("--keep", type=Path, help="keep the run directories under this folder")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="fedbank-reference-"))
    summary = {}
    for name in ARMS:
        print(f"reference run: {name} ...", file=sys.stderr, flush=True)
        summary[name] = run_arm(name, base / name)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        print(f"reference written to {args.write}")
        return 0
    reference = json.loads(args.check.read_text())
    diffs = differences(reference, summary)
    for line in diffs:
        print(line)
    print(f"{len(diffs)} difference(s) from {args.check}" if diffs else f"same product: no difference from {args.check}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
