"""LP-FT under DP (train.linear-probe-rounds) and the decaying local step (train.lr-decay)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from client.branch_data import prepare_branch
from client.training import round_plan, train_round
from common.config.run import RunConfig, branch_settings
from common.errors import ConfigError
from common.model.adapter import adapter_arrays, load_adapter_arrays
from common.model.build import build_peft_model, load_tokenizer
from common.privacy.accounting import epsilon_of

SMALL = {"num-branches": 1, "model.max-length": 32, "data.records-per-branch": 48, "train.batch-size": 16,
         "train.linear-probe-rounds": 1}


def _branch(cfg):
    tok = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch_settings({"partition-id": 0, "num-partitions": 1}, cfg), tok)
    return data, build_peft_model(cfg.model, len(data.labels), vocab_size=len(tok))


def _moved(before, after):
    return {k for k in before if not np.array_equal(before[k], after[k])}


@pytest.mark.parametrize("peft", ["lora", "ia3"])
def test_the_probe_round_moves_only_the_head_and_the_next_round_the_adapter(peft):
    cfg = RunConfig.from_flower({**SMALL, "model.peft": peft})
    data, model = _branch(cfg)
    start = adapter_arrays(model)
    probe = train_round(model, data.train, cfg, round_plan(cfg, len(data.train), 1.0, server_round=1), [], seed=0)
    assert set(probe.arrays) == set(start)  # the whole adapter travels, frozen part unchanged
    assert _moved(start, probe.arrays) == {k for k in start if "classifier" in k}
    assert all(p.requires_grad for k, p in model.named_parameters() if "lora_" in k or "ia3_" in k)  # restored
    _, model = _branch(cfg)  # a branch builds its model afresh every round, from the global adapter
    load_adapter_arrays(model, probe.arrays)
    tuned = train_round(model, data.train, cfg, round_plan(cfg, len(data.train), 1.0, server_round=2),
                        probe.accountant_history, seed=0)
    assert _moved(probe.arrays, tuned.arrays) == set(start)
    # one accountant over both phases: epsilon after round 2 composes the probe round's steps too
    both = epsilon_of(tuned.accountant_history, cfg.dp.accountant, cfg.dp.delta)
    assert both > epsilon_of(probe.accountant_history, cfg.dp.accountant, cfg.dp.delta)
    assert sum(int(h[2]) for h in tuned.accountant_history) == probe.steps + tuned.steps


def test_the_step_size_decays_per_round():
    cfg = RunConfig.from_flower({"train.learning-rate": 0.4, "train.lr-decay": 0.5})
    assert [round_plan(cfg, 100, 1.0, server_round=r).learning_rate for r in (1, 2, 3)] == [0.4, 0.2, 0.1]
    assert not round_plan(cfg, 100, 1.0, server_round=1).head_only


@pytest.mark.parametrize("overrides, fragment", [
    ({"train.linear-probe-rounds": 1, "task": "chat", "model.name": "tiny-llama"}, "task 'chat' has none"),
    ({"train.linear-probe-rounds": -1}, "train.linear-probe-rounds"),
    ({"train.lr-decay": 0}, "train.lr-decay"),
    ({"train.lr-decay": 1.5}, "train.lr-decay"),
])
def test_bad_lp_ft_settings_are_one_line_errors(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        RunConfig.from_flower(overrides)
    assert "\n" not in str(err.value)


def test_a_federated_lp_ft_run_probes_first_then_tunes(tmp_path):
    """2 branches x 2 rounds, DP, probe in round 1: the round-1 aggregate moved only the head, and each
    branch's ledgered epsilon is its accountant over both phases."""
    from server.records.checkpoint import load_checkpoint
    from simulations.local.runner import simulate
    from tests.conftest import ROOT

    run = {"num-server-rounds": 2, "data.records-per-branch": 24, "model.max-length": 48, "train.batch-size": 8,
           "dp.target-epsilon": 6.0, "min-train-branches": 2, "train.linear-probe-rounds": 1,
           "train.lr-decay": 0.5}
    simulate(ROOT, tmp_path, num_branches=2, run_config=run, timeout=900)
    lines = [json.loads(l) for l in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    lines = [l for l in lines if l.get("kind") != "head" and l.get("status") == "trained"]
    assert sorted((l["round"], l["branch"]) for l in lines) == [(r, f"branch-{b}") for r in (1, 2) for b in (0, 1)]
    from opacus.accountants import create_accountant
    for branch in ("branch-0", "branch-1"):
        mine = sorted((l for l in lines if l["branch"] == branch), key=lambda l: l["round"])
        acc = create_accountant(mine[0]["accountant"])
        acc.history = [(l["noise_multiplier"], l["sample_rate"], l["steps"]) for l in mine]
        assert mine[1]["epsilon"] == pytest.approx(acc.get_epsilon(delta=mine[0]["delta"]), rel=1e-9)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2]
    ckpt, final = load_checkpoint(tmp_path)
    assert ckpt.round == 2 and any("lora_" in k for k in final)
