"""End to end: a real Flower simulation of 3 branches x 2 rounds with Opacus DP-SGD."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from common.config.run import RunConfig
from common.model.metrics import evaluate
from common.model.build import build_peft_model, load_tokenizer
from common.model.adapter import adapter_arrays, load_saved_adapter
from server.evaluation.holdout import holdout_set
from server.records.ledger import verify_ledger
from tests.conftest import E2E_CONFIG


def _ledger(run):
    return [e for e in map(json.loads, (run.output_dir / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]


def _cfg(run) -> RunConfig:
    metrics = json.loads((run.output_dir / "metrics.json").read_text())
    return RunConfig.from_flower(metrics["config"])


def test_run_finishes_and_writes_outputs(e2e_run):
    assert (e2e_run.status, e2e_run.sub_status) in {("finished", "completed"), ("completed", "finished")}
    for name in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "metrics.json", "ledger.jsonl"):
        assert (e2e_run.output_dir / name).is_file(), name


def test_ledger_has_one_line_per_branch_per_round_and_verifies(e2e_run):
    rows = _ledger(e2e_run)
    assert len(rows) == 6
    assert sorted((r["round"], r["branch"]) for r in rows) == [(r, f"branch-{b}") for r in (1, 2) for b in range(3)]
    required = {"run_id", "round", "branch", "examples", "steps", "sample_rate", "noise_multiplier",
                "max_grad_norm", "accountant", "epsilon", "delta", "pii_counts"}
    for row in rows:
        assert required <= set(row)
        assert row["status"] == "trained" and row["steps"] > 0 and row["noise_multiplier"] > 0
    assert verify_ledger(e2e_run.output_dir / "ledger.jsonl").ok


def test_each_branch_epsilon_grows_and_matches_independent_recomputation(e2e_run):
    from opacus.accountants import RDPAccountant

    rows = _ledger(e2e_run)
    for branch in {r["branch"] for r in rows}:
        mine = sorted((r for r in rows if r["branch"] == branch), key=lambda r: r["round"])
        assert mine[1]["epsilon"] > mine[0]["epsilon"] > 0
        assert mine[-1]["epsilon"] <= E2E_CONFIG["dp.target-epsilon"] * 1.0001
        acc = RDPAccountant()  # independent: a fresh Opacus accountant fed only the ledger's figures
        for r in mine:
            acc.history.append((r["noise_multiplier"], r["sample_rate"], r["steps"]))
        assert mine[-1]["accountant"] == "rdp"
        assert mine[-1]["epsilon"] == pytest.approx(acc.get_epsilon(delta=mine[-1]["delta"]), rel=0.01)


def test_metrics_json_has_evaluation_and_epsilon_per_round(e2e_run):
    metrics = json.loads((e2e_run.output_dir / "metrics.json").read_text())
    rounds = {r["round"]: r for r in metrics["rounds"]}
    assert set(rounds) == {0, 1, 2}
    for r in (1, 2):
        assert {"loss", "accuracy", "macro_f1"} <= set(rounds[r])
        assert set(rounds[r]["branches"]) == {"branch-0", "branch-1", "branch-2"}
        assert all(b["epsilon"] > 0 for b in rounds[r]["branches"].values())


def test_adapter_changed_and_reloads_reproducing_final_evaluation(e2e_run):
    cfg = _cfg(e2e_run)
    tokenizer = load_tokenizer(cfg.model)
    data, labels = holdout_set(cfg, tokenizer)
    initial = adapter_arrays(build_peft_model(cfg.model, len(labels), vocab_size=len(tokenizer)))
    saved = load_file(str(e2e_run.output_dir / "adapter" / "adapter_model.safetensors"))
    assert set(saved) == set(initial)
    assert max(float(np.abs(saved[k] - initial[k]).max()) for k in initial) > 1e-4

    model, _, _, saved_labels = load_saved_adapter(e2e_run.output_dir / "adapter")  # PeftModel.from_pretrained
    assert saved_labels == labels
    again = evaluate(model, data)
    final = json.loads((e2e_run.output_dir / "metrics.json").read_text())["rounds"][-1]
    assert again["accuracy"] == pytest.approx(final["accuracy"], abs=1e-9)
    assert again["loss"] == pytest.approx(final["loss"], rel=1e-5)
    assert again["macro_f1"] == pytest.approx(final["macro_f1"], abs=1e-9)


def test_a_failed_run_is_reported_as_failed_not_success(tmp_path):
    """flwr run can exit 0 for a failed run; the runner reads the final status instead."""
    from common.errors import RunFailed
    from simulations.local.runner import simulate
    from tests.conftest import ROOT

    with pytest.raises(RunFailed, match="failed"):
        # Bypasses the CLI's up-front validation so the ServerApp itself fails inside Flower.
        simulate(ROOT, tmp_path / "bad", num_branches=2, run_config={"model.lora.rank": 0}, timeout=300)


def test_flower_processes_come_from_this_interpreters_environment(tmp_path):
    """Flower starts flwr-simulation by name: an unactivated venv must still be the one found first on PATH."""
    import os
    import shutil
    import sys
    from pathlib import Path

    from simulations.flower_cli import flower_env

    env = flower_env(tmp_path)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    found = shutil.which("flwr-simulation", path=env["PATH"])
    assert found is not None and Path(found).parent == Path(sys.executable).parent
    assert env["FLWR_HOME"] == str(tmp_path) and env["FLWR_TELEMETRY_ENABLED"] == "0"
