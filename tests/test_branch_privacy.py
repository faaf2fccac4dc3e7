"""The branch's privacy state: persisted accountant, composition over rounds, the budget gate."""

from __future__ import annotations

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from client.budget import PrivacyState
from common.privacy.accounting import planned_noise_multiplier
from common.config.policy import POLICY_FILE, BranchPolicy
from common.config.run import RunConfig
from tests.branch_calls import call_branch, claim_of, make_keys, train_message


def test_state_survives_reload_and_composes(tmp_path):
    state = PrivacyState(accountant="rdp", delta=1e-5)
    state.record_round(1, 1, [(1.1, 0.1, 10)], 10)
    state.save(tmp_path)
    again = PrivacyState.load(tmp_path, "rdp", 1e-5)
    assert again.history == [[1.1, 0.1, 10]]
    acc = RDPAccountant()
    acc.history = [(1.1, 0.1, 10)]
    assert again.epsilon == pytest.approx(acc.get_epsilon(1e-5))
    assert again.epsilon_after(1.1, 0.1, 10) > again.epsilon


def test_planned_noise_spends_the_target_over_the_whole_run():
    noise = planned_noise_multiplier(4.0, 1e-5, 0.05, 200, "prv")
    acc = PRVAccountant()
    acc.history = [(noise, 0.05, 200)]
    assert acc.get_epsilon(1e-5) == pytest.approx(4.0, abs=0.05)


def test_changing_accountant_mid_history_is_refused(tmp_path):
    PrivacyState(accountant="rdp", delta=1e-5).save(tmp_path)
    with pytest.raises(Exception, match="dp.accountant"):
        PrivacyState.load(tmp_path, "prv", 1e-5)


def own_policy(cfg: RunConfig, branches: int, **rules) -> None:
    """Each branch's own policy (the branch decides its limits; HQ's budgets may only tighten them)."""
    for b in range(branches):
        state = cfg.output_dir / "branches" / f"branch-{b}"
        state.mkdir(parents=True, exist_ok=True)
        (state / POLICY_FILE).write_text(BranchPolicy(**rules).to_toml())


def test_branch_continues_epsilon_across_restarts_and_stops_at_budget(tmp_path, server_task_identity):
    """Each call is a fresh ClientApp invocation (as after a process restart): only disk state carries over."""
    run = {"num-server-rounds": 2, "num-branches": 2, "data.records-per-branch": 24, "model.max-length": 64,
           "train.batch-size": 8, "dp.noise-multiplier": 0.8, "dp.budget-epsilon": 12.0, "output-dir": str(tmp_path)}
    cfg = RunConfig.from_flower(run)
    make_keys(cfg, 2)
    own_policy(cfg, 2, lifetime_budget_epsilon=20.0, max_run_epsilon=20.0)
    epsilons, statuses = [], []
    for server_round in range(1, 8):
        reply = call_branch(cfg, train_message(cfg, server_round))
        claim = claim_of(reply)
        statuses.append(claim["status"])
        epsilons.append(claim["epsilon"])
        if statuses[-1] == "budget-exhausted":
            assert "arrays" not in reply.content and "envelope" not in reply.content
            break
    assert statuses[0] == "trained" and statuses[-1] == "budget-exhausted"
    trained = epsilons[:-1]
    assert all(b > a for a, b in zip(trained, trained[1:]))  # never reset
    assert max(epsilons) <= 12.0
    assert epsilons[-1] == pytest.approx(trained[-1])  # refusing spends nothing


def test_per_branch_budgets_are_enforced_separately(tmp_path, server_task_identity):
    """dp.branch-budgets gives branch-0 a smaller budget: it stops first, branch-1 goes on."""
    run = {"num-server-rounds": 2, "num-branches": 2, "data.records-per-branch": 24, "model.max-length": 64,
           "train.batch-size": 8, "dp.noise-multiplier": 0.8, "dp.budget-epsilon": 12.0,
           "dp.branch-budgets": "branch-0=5", "output-dir": str(tmp_path)}
    cfg = RunConfig.from_flower(run)
    make_keys(cfg, 2)
    own_policy(cfg, 2, lifetime_budget_epsilon=20.0, max_run_epsilon=20.0)
    claims = {0: [], 1: []}
    for server_round in range(1, 4):
        for partition in (0, 1):
            claims[partition].append(claim_of(call_branch(cfg, train_message(cfg, server_round), partition)))
    assert claims[0][0]["budget_epsilon"] == 5.0 and claims[1][0]["budget_epsilon"] == 12.0
    assert claims[0][-1]["status"] == "budget-exhausted" and claims[1][-1]["status"] == "trained"
    assert max(c["epsilon"] for c in claims[0]) <= 5.0


def test_a_resent_round_is_answered_from_the_cache_without_spending_again(tmp_path, server_task_identity):
    """After a server crash the same round is asked again: same reply, same epsilon, no second spend."""
    run = {"num-server-rounds": 2, "num-branches": 2, "data.records-per-branch": 24, "model.max-length": 64,
           "train.batch-size": 8, "dp.noise-multiplier": 0.8, "output-dir": str(tmp_path)}
    cfg = RunConfig.from_flower(run)
    make_keys(cfg, 2)
    first = call_branch(cfg, train_message(cfg, 1))
    again = call_branch(cfg, train_message(cfg, 1))
    assert claim_of(again) == claim_of(first)
    assert again.content["envelope"]["update"] == first.content["envelope"]["update"]
    state = PrivacyState.load(tmp_path / "branches" / "branch-0", "rdp", 1e-5)
    assert len(state.rounds) == 1 and state.epsilon == pytest.approx(claim_of(first)["epsilon"])


@pytest.mark.parametrize("dp", [True, False])
def test_dp_noise_and_batches_cannot_be_replayed_from_the_public_seed(tmp_path, dp):
    """The run seed, round and branch are known to the server: with DP they must not fix the noise."""
    import numpy as np

    from client.branch_data import prepare_branch
    from client.training import round_plan, train_round
    from common.config.run import branch_settings
    from common.model.build import build_peft_model, load_tokenizer

    cfg = RunConfig.from_flower({"num-branches": 2, "data.records-per-branch": 24, "model.max-length": 48,
                                 "train.batch-size": 8, "dp.enabled": dp, "output-dir": str(tmp_path)})
    tok = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch_settings({"partition-id": 0, "num-partitions": 2}, cfg), tok)
    plan = round_plan(cfg, len(data.train), noise_multiplier=1.0 if dp else 0.0)
    runs = [train_round(build_peft_model(cfg.model, len(data.labels), vocab_size=len(tok)), data.train, cfg, plan, [], seed=7)
            for _ in range(2)]
    same = all(np.array_equal(runs[0].arrays[k], runs[1].arrays[k]) for k in runs[0].arrays)
    assert same is (not dp)
