"""The empirical privacy audit: canaries, the epsilon lower bound, and the audit of a trained branch.

The end-to-end test trains one canary branch with the project's own functions
(``prepare_branch`` plants the canaries, ``train_round`` runs Opacus DP-SGD with
the real accountant, noise planned as ``client/app.py`` plans it), once without
DP and once at epsilon 1, and audits both final models with ``run_audit``.  With
one branch, FedAvg returns that branch's adapter, so this is the model the
server would audit after a one-branch run.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from client.branch_data import prepare_branch
from client.budget import PrivacyState
from common.privacy.accounting import planned_noise_multiplier
from client.training import round_plan, train_round
from common.audit.canaries import canaries
from common.config.run import RunConfig, branch_settings
from common.privacy.desensitize import Desensitizer
from common.model.build import build_peft_model, load_tokenizer
from server.evaluation.canary_audit import (AUDIT_FILE, clopper_pearson, empirical_epsilon, epsilon_from_rates, formal_epsilon_of,
                          roc_auc, run_audit)

LABELS = ["a", "b", "c", "d"]


# --------------------------------------------------------------------------- canaries

def test_canaries_are_deterministic_distinct_and_survive_desensitization():
    cfg = RunConfig.from_flower({"audit.canaries": 50, "seed": 3})
    planted, held_out = canaries(cfg, LABELS)
    again, _ = canaries(cfg, LABELS)
    assert planted == again and len(planted) == len(held_out) == 50
    texts = planted.texts + held_out.texts
    assert len(set(texts)) == 100
    assert set(planted.labels + held_out.labels) <= set(LABELS)
    d = Desensitizer()
    assert all(d.apply(t).text == t for t in texts)
    assert all(20 <= len(t) <= 200 for t in texts)  # message-like length
    other, _ = canaries(RunConfig.from_flower({"audit.canaries": 50, "seed": 4}), LABELS)
    assert not set(other.texts) & set(planted.texts)


def test_only_the_canary_branch_trains_on_the_planted_canaries(tmp_path):
    run = {"num-branches": 2, "data.records-per-branch": 12, "model.max-length": 16, "audit.canaries": 5,
           "audit.canary-branch": "branch-1", "output-dir": str(tmp_path)}
    cfg = RunConfig.from_flower(run)
    plain = RunConfig.from_flower({**run, "audit.canaries": 0})
    tok = load_tokenizer(cfg.model)
    for partition, planted in ((0, False), (1, True)):
        node = {"partition-id": partition, "num-partitions": 2}
        with_c = prepare_branch(cfg, branch_settings(node, cfg), tok)
        without = prepare_branch(plain, branch_settings(node, plain), tok)
        assert len(with_c.train) == len(without.train) + (5 if planted else 0)
        assert with_c.pii_counts == without.pii_counts  # canaries carry no PII
    planted_set, _ = canaries(cfg, with_c.labels)
    expected = tok(planted_set.texts, max_length=16, padding="max_length", truncation=True, return_tensors="pt")
    assert torch.equal(with_c.train.input_ids[-5:], expected["input_ids"])  # what the server scores


# --------------------------------------------------------------------------- the bound

def test_clopper_pearson_matches_closed_forms():
    lo, hi = clopper_pearson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10))
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))
    lo, hi = clopper_pearson(50, 100)
    assert lo < 0.5 < hi and hi - lo < 0.21


def test_perfect_separation_is_limited_by_sample_size():
    """Every planted canary below every never-seen one: the bound is what n canaries can show, no more."""
    delta = 1e-5
    bounds = []
    for k in (8, 20, 64, 400):
        rng = np.random.default_rng(k)
        res = empirical_epsilon(rng.uniform(0, 1, k), rng.uniform(2, 3, k), delta)
        n = k // 2  # the evaluation half of each group
        a = 0.025 ** (1 / n)
        assert res["tpr"] == 1.0 and res["fpr"] == 0.0
        assert res["epsilon"] == pytest.approx(max(0.0, math.log((a - delta) / (1 - a))))
        bounds.append(res["epsilon"])
    assert bounds == sorted(bounds) and bounds[0] == 0.0 and bounds[1] < 1.0 and math.isfinite(bounds[-1])
    assert roc_auc([0.1, 0.2], [1.0, 2.0]) == 1.0


def test_identical_distributions_give_no_bound():
    eps = [empirical_epsilon(np.random.default_rng(s).normal(size=200), np.random.default_rng(1000 + s).normal(size=200),
                             1e-5, seed=s)["epsilon"] for s in range(10)]
    assert max(eps) < 0.3 and sum(e > 0 for e in eps) <= 1


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_bound_never_exceeds_the_true_epsilon_of_an_exactly_dp_test(epsilon):
    """Randomized response is exactly epsilon-DP; the bound stays below epsilon and gets close with many canaries."""
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    found = []
    for s in range(5):
        rng = np.random.default_rng(s)
        planted = (rng.random(4000) >= p).astype(float)   # loss 0 ("member") with probability p
        held_out = (rng.random(4000) >= 1 - p).astype(float)
        found.append(empirical_epsilon(planted, held_out, 1e-5, seed=s)["epsilon"])
    assert max(found) <= epsilon
    assert min(found) >= 0.7 * epsilon


def test_bound_formula_uses_both_dp_inequalities():
    assert epsilon_from_rates(0.9, 0.1, 0.0) == pytest.approx(math.log(9))
    assert epsilon_from_rates(0.5, 0.01, 0.0) == pytest.approx(math.log(50))          # TPR <= e^eps FPR
    assert epsilon_from_rates(0.99, 0.5, 0.0) == pytest.approx(math.log(50))          # 1-FPR <= e^eps (1-TPR)
    assert epsilon_from_rates(0.3, 0.6, 0.0) == 0.0


def test_formal_epsilon_is_the_canary_branchs_latest_epsilon():
    metrics = {"rounds": [{"round": 0, "branches": {}},
                          {"round": 1, "branches": {"branch-0": {"epsilon": 0.4}, "branch-1": {"epsilon": 0.9}}},
                          {"round": 2, "branches": {"branch-0": {"epsilon": 0.7}}},
                          {"round": 3, "branches": {"branch-1": {"epsilon": 1.5}}}]}
    assert formal_epsilon_of(metrics, "branch-0", dp_enabled=True) == 0.7
    assert formal_epsilon_of(metrics, "branch-7", dp_enabled=True) == 0.0  # never trained: the canaries never left
    assert formal_epsilon_of({"rounds": [{"branches": {"branch-0": {"epsilon": None}}}]}, "branch-0", False) is None


# --------------------------------------------------------------------------- the audit of a trained branch

K = 64  # canaries planted (and as many never seen)
AUDIT_RUN = {"num-branches": 1, "num-server-rounds": 1, "min-train-branches": 1, "data.records-per-branch": 32,
             "model.max-length": 32, "train.batch-size": 16, "train.learning-rate": 1e-2, "train.local-epochs": 60,
             "audit.canaries": K, "dp.target-epsilon": 1.0}


def _train_and_audit(tmp_path, dp: bool) -> dict:
    """One round at the canary branch, as client/app.py trains it, then the server's audit."""
    cfg = RunConfig.from_flower({**AUDIT_RUN, "dp.enabled": dp, "output-dir": str(tmp_path)})
    branch = branch_settings({"partition-id": 0, "num-partitions": 1}, cfg)
    tok = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch, tok)
    state = PrivacyState.load(branch.state_dir, cfg.dp.accountant, cfg.dp.delta)
    plan = round_plan(cfg, len(data.train), noise_multiplier=0.0)
    if dp:
        plan.noise_multiplier = planned_noise_multiplier(cfg.dp.target_epsilon, cfg.dp.delta, plan.sample_rate,
                                                         plan.steps * cfg.federation.num_rounds, cfg.dp.accountant)
    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tok))
    outcome = train_round(model, data.train, cfg, plan, state.history, seed=11)
    formal = state.record_round(1, 1, outcome.accountant_history, outcome.steps) if dp else None
    return run_audit(cfg, model, tok, data.labels, tmp_path, formal_epsilon=formal, delta=cfg.dp.delta)


def test_audit_signal_is_higher_without_dp_and_never_exceeds_formal_epsilon(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is fastest and leaves the other core free
    try:
        no_dp = _train_and_audit(tmp_path / "nodp", dp=False)
        with_dp = _train_and_audit(tmp_path / "dp", dp=True)
    finally:
        torch.set_num_threads(threads)
    print(f"\naudit without DP: {no_dp}\naudit with DP:    {with_dp}")

    written = json.loads((tmp_path / "dp" / AUDIT_FILE).read_text(encoding="utf-8"))
    for key in ("canaries", "branch", "auc", "planted_predicted", "held_out_predicted", "empirical_epsilon_lower_bound",
                "formal_epsilon", "delta", "confidence", "method"):
        assert written[key] == with_dp[key]
    assert written["canaries"] == K and written["branch"] == "branch-0" and written["confidence"] == 0.95

    # Without DP the tiny model memorizes the random canaries; the audit sees it.
    assert no_dp["formal_epsilon"] is None
    assert no_dp["planted_predicted"] >= 0.9 * K > 2 * no_dp["held_out_predicted"]
    assert no_dp["auc"] >= 0.9
    assert no_dp["empirical_epsilon_lower_bound"] > 1.0

    # With DP at epsilon 1 the signal is measurably lower ...
    assert with_dp["formal_epsilon"] == pytest.approx(1.0, abs=0.05)
    assert with_dp["auc"] <= no_dp["auc"] - 0.2
    assert with_dp["planted_predicted"] <= no_dp["planted_predicted"] - K // 4
    assert with_dp["empirical_epsilon_lower_bound"] < no_dp["empirical_epsilon_lower_bound"]
    # ... and the empirical lower bound never exceeds the formal epsilon.
    assert with_dp["empirical_epsilon_lower_bound"] <= with_dp["formal_epsilon"]
