"""Budgets in a real Flower run: each branch stops at its own budget, the server ledgers the
refusals and goes on with the others, and the run ends cleanly once every branch is spent."""

from __future__ import annotations

import json

import pytest

from simulations.local.runner import simulate
from tests.conftest import ROOT

# Fixed noise: every round costs the same, so budgets are reached after a known number of rounds.
RUN = {"num-server-rounds": 8, "data.records-per-branch": 24, "model.max-length": 48, "train.batch-size": 8,
       "dp.noise-multiplier": 1.0, "dp.budget-epsilon": 6.0, "dp.branch-budgets": "branch-0=3",
       "min-train-branches": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return simulate(ROOT, tmp_path_factory.mktemp("budget") / "run", num_branches=2, run_config=RUN, timeout=900).output_dir


def test_each_branch_stops_at_its_own_budget_and_the_run_ends_early(run):
    lines = [e for e in map(json.loads, (run / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    by_branch = {b: [l for l in lines if l["branch"] == b] for b in ("branch-0", "branch-1")}
    for branch, budget in (("branch-0", 3.0), ("branch-1", 6.0)):
        mine = by_branch[branch]
        statuses = [l["status"] for l in mine]
        trained = [l for l in mine if l["status"] == "trained"]
        assert statuses[-1] == "budget-exhausted" and "trained" not in statuses[statuses.index("budget-exhausted"):]
        assert all(l["budget_epsilon"] == budget for l in mine)
        assert max(l["epsilon"] for l in mine) <= budget
        eps = [l["epsilon"] for l in trained]
        assert eps == sorted(eps) and len(set(eps)) == len(eps)  # grows every trained round, never reset
    # branch-0 (budget 3) stops before branch-1 (budget 6); branch-1 keeps training meanwhile.
    first_refusal = {b: next(l["round"] for l in m if l["status"] == "budget-exhausted") for b, m in by_branch.items()}
    assert first_refusal["branch-0"] < first_refusal["branch-1"]
    last_round = max(l["round"] for l in lines)
    assert last_round < RUN["num-server-rounds"]  # ended cleanly once both were spent
    assert all(l["status"] == "budget-exhausted" for l in lines if l["round"] == last_round)
