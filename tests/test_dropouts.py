"""Dropouts: 10 branches, each failing a round with probability 0.3 (fault injection by the
branches' own policy), complete 3 rounds; every failure is counted in metrics.json and the ledger."""

from __future__ import annotations

import json

import pytest

from common.config.policy import BranchPolicy
from server.records.keyring import ledger_verify_keys
from server.records.ledger import verify_ledger
from simulations.local.runner import simulate
from tests.conftest import ROOT

RUN = {"num-server-rounds": 3, "data.records-per-branch": 12, "model.max-length": 32, "train.batch-size": 8,
       "dp.target-epsilon": 8.0, "min-train-branches": 4}
POLICY = BranchPolicy(fault_injection=True, fail_before_train=0.3)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dropouts")
    (root / "policy.toml").write_text(POLICY.to_toml())
    return simulate(ROOT, root / "run", num_branches=10, run_config=RUN, timeout=1200,
                    branch_policy=root / "policy.toml").output_dir


def test_three_rounds_complete_with_the_branches_that_answered(run):
    metrics = json.loads((run / "metrics.json").read_text())
    rounds = [r for r in metrics["rounds"] if r["round"] > 0]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    failed = sum(len(r["failures"]) for r in rounds)
    assert 3 <= failed <= 18  # 30 expected-ish draws of p=0.3: about 9
    for r in rounds:
        answered = [b for b, v in r["branches"].items() if v["status"] == "trained"]
        assert len(answered) + len(r["failures"]) == 10
        assert len(answered) >= RUN["min-train-branches"] and "accuracy" in r
        assert all("injected fault" in f["reason"] for f in r["failures"])


def test_failures_are_in_the_ledger_and_it_verifies(run):
    lines = [e for e in map(json.loads, (run / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    failures = [l for l in lines if l.get("kind") == "failure"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(failures) == sum(len(r["failures"]) for r in metrics["rounds"])
    trained = [l for l in lines if l.get("kind") == "record-level"]
    assert len(trained) + len(failures) == 30
    assert verify_ledger(run / "ledger.jsonl", ledger_verify_keys(run / "keys"), require_signatures=True).ok
