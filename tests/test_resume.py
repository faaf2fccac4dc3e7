"""Server crash and resume in simulation, at the worst moment.

The server is killed (SIGKILL, by fault injection) after it has ledgered round 2
and before it checkpointed it.  Resuming continues after round 1: round 2's
unfinished lines are set aside, the branches resend their cached round-2 replies
(spending nothing twice), and the run completes with every round ledgered once.
(``tests/test_deployment_faults.py`` kills a deployed ServerApp from outside and
compares with an uninterrupted run line by line.)
"""

from __future__ import annotations

import json

import pytest

from server.records.keyring import ledger_verify_keys
from server.records.ledger import verify_ledger
from simulations.cli.main import resume_config
from common.errors import RunFailed
from simulations.local.runner import simulate
from tests.conftest import ROOT

RUN = {"num-server-rounds": 3, "data.records-per-branch": 24, "model.max-length": 48, "train.batch-size": 8,
       "dp.target-epsilon": 6.0, "min-train-branches": 2, "aggregation.server-momentum": 0.5}


def _lines(run_dir):
    return [e for e in map(json.loads, (run_dir / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    crashed = base / "crashed"
    with pytest.raises(RunFailed):
        simulate(ROOT, crashed, num_branches=2, run_config={**RUN, "faults.server-crash-round": 2}, timeout=900)
    before = _lines(crashed)
    simulate(ROOT, crashed, num_branches=2, run_config=resume_config(crashed), timeout=900)
    return crashed, before


def test_crash_left_round_two_ledgered_but_not_checkpointed(runs):
    crashed, before = runs
    assert sorted({l["round"] for l in before}) == [1, 2]
    unfinished = [json.loads(l) for l in (crashed / "ledger.unfinished.jsonl").read_text().splitlines()]
    assert {l["round"] for l in unfinished} == {2} and len(unfinished) == 2


def _epsilon_after(entries):
    from opacus.accountants import create_accountant

    acc = create_accountant(entries[0]["accountant"])
    acc.history = [(e["noise_multiplier"], e["sample_rate"], e["steps"]) for e in entries]
    return acc.get_epsilon(delta=entries[0]["delta"])


def test_resumed_ledger_has_every_round_once_and_verifies(runs):
    crashed, _ = runs
    resumed = _lines(crashed)
    assert sorted((l["round"], l["branch"]) for l in resumed) == [(r, f"branch-{b}") for r in (1, 2, 3) for b in (0, 1)]
    assert len({l["run_id"] for l in resumed}) == 1  # one fedbank run across the crash
    for branch in ("branch-0", "branch-1"):  # each epsilon = a fresh accountant over rounds 1..r: nothing twice
        mine = sorted((l for l in resumed if l["branch"] == branch), key=lambda l: l["round"])
        for r in (1, 2, 3):
            assert mine[r - 1]["epsilon"] == pytest.approx(_epsilon_after(mine[:r]), rel=1e-9)
    result = verify_ledger(crashed / "ledger.jsonl", ledger_verify_keys(crashed / "keys"), require_signatures=True)
    assert result.ok, result.reason


def test_branches_spent_once_per_round(runs):
    crashed, _ = runs
    lines = _lines(crashed)
    for branch in ("branch-0", "branch-1"):
        state = json.loads((crashed / "branches" / branch / "privacy_state.json").read_text())
        assert [r["round"] for r in state["rounds"]] == [1, 2, 3]
        assert sum(int(h[2]) for h in state["history"]) == sum(l["steps"] for l in lines if l["branch"] == branch)
    metrics = json.loads((crashed / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2, 3] and metrics["resumed_after"] == [1]


def test_server_momentum_velocity_is_checkpointed_each_round(runs):
    """The server's FedAvgM velocity is state: the resumed run reloads it and checkpoints the last round's."""
    crashed, _ = runs
    ckpt = json.loads((crashed / "checkpoint" / "checkpoint.json").read_text())
    assert ckpt["round"] == 3 and ckpt["momentum_file"] == "momentum-0003.safetensors"
    assert sorted(p.name for p in (crashed / "checkpoint").glob("*.safetensors")) == [
        "momentum-0003.safetensors", "round-0003.safetensors"]
