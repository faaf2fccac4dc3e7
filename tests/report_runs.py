"""A small run directory with every optional field the compliance report knows about (tests/test_report.py).

Written with the real ledger writer (and, if asked, real Ed25519 keys: the
branches sign their claims, the server signs every line and seals each round),
so the report reads it exactly as it reads a run's own files.
"""

from __future__ import annotations

import json
from pathlib import Path

from server.records.ledger import PrivacyLedger

EVIL = '<script>alert("x")</script>'


def synthetic_run(root: Path, *, signed: bool = False, dp: bool = True) -> Path:
    """A 3-branch x 3-round run with every optional field the report knows about.

    branch-0: budget 4, refuses round 3 (budget-exhausted); branch-1: budget 10, reaches 9.3
    (>= 90 %); branch-2: budget 10, at 5 (ok).  Round 2 has a failed node and a rejected update
    whose reason holds markup; a client-level ``(server)`` line per round; an audit.json.
    """
    run = root / "run"
    run.mkdir(parents=True)
    signers, server_key, branch_keys = {}, None, None
    if signed:
        from common.keys.layout import load_ed25519_private
        from common.keys.provision import init_keys

        layout = init_keys(run / "keys", 3)
        signers = {b: load_ed25519_private(layout.branch(b).ed25519_key) for b in layout.branch_ids}
        server_key = signers["(server)"] = load_ed25519_private(layout.server_ed25519_key)
        branch_keys = {b: k.public_key() for b, k in signers.items() if b != "(server)"}
    eps = {"branch-0": [2.0, 3.9, 3.9], "branch-1": [4.0, 7.0, 9.3], "branch-2": [2.0, 3.5, 5.0]}
    budgets = {"branch-0": 4.0, "branch-1": 10.0, "branch-2": 10.0}
    ledger = PrivacyLedger(run / "ledger.jsonl", signing_key=server_key, branch_keys=branch_keys)
    rounds = [{"round": 0, "branches": {}, "failures": [], "loss": 2.1, "accuracy": 0.12, "macro_f1": 0.05}]
    for rnd in (1, 2, 3):
        entry = {"round": rnd, "branches": {}, "failures": [], "rejected": [],
                 "loss": 2.1 - 0.2 * rnd, "accuracy": 0.12 + 0.1 * rnd, "macro_f1": 0.05 + 0.09 * rnd}
        for branch in ("branch-0", "branch-1", "branch-2"):
            status = "budget-exhausted" if (branch == "branch-0" and rnd == 3) else "trained"
            epsilon = eps[branch][rnd - 1] if dp else None
            line = {
                "run_id": "777", "round": rnd, "branch": branch, "status": status,
                "accountant": "rdp" if dp else "none", "kind": "record-level",
                "protects": "one customer record within a branch",
                "examples": 50 + int(branch[-1]), "steps": 0 if status != "trained" else 7,
                "sample_rate": 0.14, "noise_multiplier": 1.1 if dp else 0.0, "max_grad_norm": 1.0 if dp else 0.0,
                "epsilon": epsilon, "delta": 1e-5 if dp else None,
                "budget_epsilon": budgets[branch] if dp else None,
                "pii_counts": {"ID_CARD": 3 + rnd, "PHONE": 5, "BANK_CARD": 2, "EMAIL": 1, "NAME": 7, "ADDRESS": 4},
                "time": "2025-01-01T00:00:00+00:00",
            }
            if branch == "branch-2" and rnd == 2:
                line.update(aggregated=False, reject_reason="update-norm")
            signer = signers[branch].sign if signed else None
            ledger.append(line, signer=signer)
            entry["branches"][branch] = {"status": status, "epsilon": epsilon, "examples": line["examples"],
                                         "steps": line["steps"]}
        if dp:
            server = {"run_id": 777, "round": rnd, "branch": "(server)", "status": "released", "kind": "client-level",
                      "protects": "a whole branch's contribution", "accountant": "rdp (flwr)", "examples": 3,
                      "steps": 1, "sample_rate": 1.0, "noise_multiplier": 0.8, "max_grad_norm": 0.5,
                      "epsilon": 1.5 * rnd, "delta": 1e-3, "budget_epsilon": None, "pii_counts": {},
                      "time": "2025-01-01T00:00:00+00:00", "aggregated": True}
            ledger.append(server, signer=signers["(server)"].sign if signed else None)
        ledger.seal_round(rnd)
        if rnd == 2:
            entry["failures"].append({"node": 12345, "reason": "branch process died"})
            entry["rejected"].append({"branch": "branch-2", "reason": "update-norm", "detail": f"norm 1e9 > 50 {EVIL}"})
        rounds.append(entry)
    config = {"num-server-rounds": 3, "dp.enabled": dp, "dp.delta": 1e-5, "dp.target-epsilon": 8.0,
              "dp.budget-epsilon": 0.0, "dp.branch-budgets": "branch-0=4,branch-1=10,branch-2=10",
              "central-dp.mode": "fixed" if dp else "off", "central-dp.delta": 1e-3}
    metrics = {"run_id": "777", "config": config, "accountant": "rdp" if dp else "none",
               "delta": 1e-5 if dp else 0.0, "rounds": rounds}
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    if dp:
        (run / "audit.json").write_text(json.dumps({
            "canaries": 64, "branch": "branch-1", "auc": 0.61, "exposed": 9,
            "empirical_epsilon_lower_bound": 0.72, "formal_epsilon": 9.3, "delta": 1e-5, "note": EVIL,
        }), encoding="utf-8")
    return run


def server_fingerprint(run: Path) -> str:
    """The fingerprint of a signed synthetic run's server key (what `fedbank keys init` prints)."""
    from common.keys.fingerprint import key_fingerprint
    from common.keys.layout import KeyLayout, load_ed25519_public

    return key_fingerprint(load_ed25519_public(KeyLayout.from_dir(run / "keys").server_ed25519_pub))
