"""Server crash and resume: the finished run's ledger is exactly an uninterrupted run's.

The server is killed (SIGKILL, by fault injection) after it has ledgered round 2
and before it checkpointed it -- the worst moment.  Resuming continues after
round 1: round 2's unfinished lines are set aside, the branches resend their
cached round-2 replies (spending nothing twice), and the run completes.
"""

from __future__ import annotations

import json

import pytest

from server.keyring import ledger_verify_keys
from server.ledger import verify_ledger
from simulations.cli import resume_config
from simulations.runner import RunFailed, simulate
from tests.conftest import ROOT

RUN = {"num-server-rounds": 3, "data.records-per-branch": 24, "model.max-length": 48, "train.batch-size": 8,
       "dp.target-epsilon": 6.0, "min-train-branches": 2}
SERVER_FIELDS = {"time", "hash", "prev_hash", "signature", "run_id", "seq"}


def _lines(run_dir):
    return [json.loads(l) for l in (run_dir / "ledger.jsonl").read_text().splitlines()]


def _spend(lines):
    return sorted((tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in l.items() if k not in SERVER_FIELDS))) for l in lines)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    clean = simulate(ROOT, base / "clean", num_branches=2, run_config=RUN, timeout=900).output_dir
    crashed = base / "crashed"
    with pytest.raises(RunFailed):
        simulate(ROOT, crashed, num_branches=2, run_config={**RUN, "faults.server-crash-round": 2}, timeout=900)
    before = _lines(crashed)
    simulate(ROOT, crashed, num_branches=2, run_config=resume_config(crashed), timeout=900)
    return clean, crashed, before


def test_crash_left_round_two_ledgered_but_not_checkpointed(runs):
    _, crashed, before = runs
    assert sorted({l["round"] for l in before}) == [1, 2]
    unfinished = [json.loads(l) for l in (crashed / "ledger.unfinished.jsonl").read_text().splitlines()]
    assert {l["round"] for l in unfinished} == {2} and len(unfinished) == 2


def test_resumed_ledger_equals_the_uninterrupted_one_and_verifies(runs):
    clean, crashed, _ = runs
    resumed = _lines(crashed)
    assert len(resumed) == len(_lines(clean)) == 6
    assert sorted((l["round"], l["branch"]) for l in resumed) == [(r, f"branch-{b}") for r in (1, 2, 3) for b in (0, 1)]
    assert _spend(resumed) == _spend(_lines(clean))  # same spend, round by round: none twice, none missing
    assert len({l["run_id"] for l in resumed}) == 1  # one fedbank run across the crash
    result = verify_ledger(crashed / "ledger.jsonl", ledger_verify_keys(crashed / "keys"), require_signatures=True)
    assert result.ok, result.reason


def test_branches_spent_once_per_round(runs):
    clean, crashed, _ = runs
    for branch in ("branch-0", "branch-1"):
        a = json.loads((clean / "branches" / branch / "privacy_state.json").read_text())
        b = json.loads((crashed / "branches" / branch / "privacy_state.json").read_text())
        assert [r["round"] for r in b["rounds"]] == [1, 2, 3]
        assert b["history"] == a["history"]
        assert b["rounds"][-1]["epsilon"] == pytest.approx(a["rounds"][-1]["epsilon"])
    metrics = json.loads((crashed / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2, 3] and metrics["resumed_after"] == [1]
