"""Client-level (central) DP with Flower's server-side DP wrappers, end to end in a real
Flower simulation: the ledger carries both kinds of epsilon, each labelled with what it
protects, and the client-level epsilon equals an independent dp-accounting computation."""

from __future__ import annotations

import json

import dp_accounting
import pytest

from common.config.run import RunConfig
from common.errors import ConfigError
from server.records.keyring import ledger_verify_keys
from server.records.ledger import verify_ledger
from simulations.local.runner import simulate
from tests.conftest import ROOT

RUN = {"num-server-rounds": 2, "data.records-per-branch": 24, "model.max-length": 48, "train.batch-size": 8,
       "dp.target-epsilon": 8.0, "min-train-branches": 3, "central-dp.mode": "fixed",
       "central-dp.noise-multiplier": 1.2, "central-dp.clipping-norm": 0.5, "central-dp.delta": 1e-3}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return simulate(ROOT, tmp_path_factory.mktemp("central") / "run", num_branches=3, run_config=RUN, timeout=900).output_dir


def test_ledger_has_record_and_client_level_lines_labelled(run):
    lines = [e for e in map(json.loads, (run / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    record = [l for l in lines if l["kind"] == "record-level"]
    client = [l for l in lines if l["kind"] == "client-level"]
    assert len(record) == 6 and len(client) == 2
    assert {l["protects"] for l in record} == {"one customer record within a branch"}
    assert {l["protects"] for l in client} == {"a whole branch's contribution"}
    assert client[1]["epsilon"] > client[0]["epsilon"] > 0
    assert verify_ledger(run / "ledger.jsonl", ledger_verify_keys(run / "keys"), require_signatures=True).ok


def test_client_level_epsilon_matches_dp_accounting(run):
    lines = [e for e in map(json.loads, (run / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    client = [l for l in lines if l["kind"] == "client-level"]
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.GaussianDpEvent(RUN["central-dp.noise-multiplier"]), 2)  # no amplification
    assert client[-1]["epsilon"] == pytest.approx(acc.get_epsilon(RUN["central-dp.delta"]), rel=0.02)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["rounds"][-1]["client_level"]["epsilon"] == pytest.approx(client[-1]["epsilon"])


def test_central_dp_with_a_robust_aggregator_is_refused():
    with pytest.raises(ConfigError, match="central-dp.mode"):
        RunConfig.from_flower({"central-dp.mode": "fixed", "aggregation.method": "median"})
