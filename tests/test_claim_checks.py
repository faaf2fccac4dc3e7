"""A dishonest branch cannot steer the aggregate, crash the round or bend the ledger.

Each reproduction of the issue "A ledger and a report that hold against a
dishonest server or branch" (weights, one-message crashes, claim vocabulary,
epsilon that goes down, spend that never reached HQ) as a test: real branch
replies (real ClientApp, real envelopes), altered and, where the branch itself
lies, signed again with that branch's own key.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from flwr.app import ConfigRecord, Error, Message, MetricRecord, RecordDict

from common.config.run import RunConfig
from common.privacy.accounting import epsilon_of, planned_noise_multiplier
from common.wire.protocol import STATUS_REFUSED, STATUS_TRAINED, branch_record, claim_bytes, privacy_claim
from server.admission.claims import ClaimChecks
from server.admission.spend import SpendAudit
from server.aggregation.aggregators import build_aggregator
from server.aggregation.strategy import BranchStrategy
from server.records.ledger import PrivacyLedger
from server.records.metrics import RunRecorder
from tests.branch_calls import claim_of
from tests.test_intake import RUN_ID, copy_reply, make_intake, signing_key, world  # noqa: F401  (world: the fixture)

pytestmark = pytest.mark.usefixtures("server_task_identity")


def _signed(world, reply: Message, *, metrics=None, drop=(), **changes) -> Message:
    """``reply`` with its claim changed and signed again by its own branch (the branch lies, not the wire)."""
    claim = {**claim_of(reply), **changes}
    record = branch_record(claim, signing_key(world["cfg"], claim["branch"]).sign(claim_bytes(claim)))
    content = RecordDict({"branch": record, "metrics": reply.content["metrics"] if metrics is None else metrics,
                          "envelope": ConfigRecord(dict(reply.content["envelope"]))})
    for name in drop:
        del content[name]
    return Message(content=content, reply_to=Message(content=RecordDict(), dst_node_id=1, message_type="train"))


def _epsilon_after(claim: dict, rounds: int) -> float:
    """The epsilon of ``rounds`` rounds at the figures of ``claim`` (the server's recomputation)."""
    figures = (claim["noise_multiplier"], claim["sample_rate"], claim["steps"])
    return epsilon_of([figures] * rounds, claim["accountant"], claim["delta"])


def _metrics(examples, unit=1, loss=0.5, **extra) -> MetricRecord:
    return MetricRecord({"num-examples": examples, "unit-weight": unit, "train-loss": loss, **extra})


def _strategy(world, tmp_path, cfg=None, min_train=2, **kw) -> BranchStrategy:
    cfg = cfg or world["cfg"]
    strategy = BranchStrategy(build_aggregator(cfg), intake=make_intake(world), ledger=PrivacyLedger(tmp_path / "ledger.jsonl"),
                              recorder=RunRecorder(tmp_path / "metrics.json", {}), keys=world["keys"],
                              min_train_branches=min_train, **kw)
    strategy._global = world["arrays"]
    return strategy


def _lines(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]


def _outcome(tmp_path) -> set:
    return {(l["branch"], l["aggregated"], l.get("reject_reason")) for l in _lines(tmp_path) if l["branch"] != "(server)"}


# -- 1. aggregation weights are the signed claim's ---------------------------------------------------------


def test_unsigned_weights_100_and_minus_99_cannot_steer_the_aggregate(world, tmp_path):
    honest = world["replies"][1]
    replies = [copy_reply(honest[0], metrics=_metrics(100)), copy_reply(honest[1], metrics=_metrics(-99)), honest[2], honest[3]]
    arrays, _ = _strategy(world, tmp_path).aggregate_train(1, replies)
    assert _outcome(tmp_path) == {("branch-0", False, "bad-weight"), ("branch-1", False, "bad-weight"),
                                  ("branch-2", True, None), ("branch-3", True, None)}
    step = math.sqrt(sum(float(np.sum((arrays[k].numpy() - v) ** 2)) for k, v in world["arrays"].items()))
    assert step < 10  # the 100/-99 gave a step of norm 56 from updates of norm 0.28


@pytest.mark.parametrize("weights", [(100, -100), (float("nan"), 8), (8.0, 8), ([8], 8)])
def test_weights_that_would_divide_by_zero_or_poison_the_average_are_bad_weights(world, tmp_path, weights):
    honest = world["replies"][1]
    replies = [copy_reply(honest[0], metrics=_metrics(weights[0])), copy_reply(honest[1], metrics=_metrics(weights[1]))]
    arrays, _ = _strategy(world, tmp_path, min_train=1).aggregate_train(1, replies)  # no ZeroDivisionError
    assert ("branch-0", False, "bad-weight") in _outcome(tmp_path)
    assert arrays is None or all(np.all(np.isfinite(a.numpy())) for a in arrays.values())


def test_central_dp_unit_weights_are_the_servers(world):
    honest = world["replies"][1]
    intake = make_intake(world).admit_round(1, [copy_reply(honest[0], metrics=_metrics(16, unit=-0.9)), honest[1], honest[2]],
                                        world["arrays"])
    assert [(r.branch_id, r.reason) for r in intake.rejected] == [("branch-0", "bad-weight")]
    assert [a.message.content["metrics"]["unit-weight"] for a in intake.trained] == [1, 1]


def test_a_trained_claim_without_examples_and_a_secagg_weight_that_differs_are_bad_weights(world):
    honest = world["replies"][1][0]
    out = make_intake(world).admit_round(1, [_signed(world, honest, examples=0, metrics=_metrics(0))], world["arrays"])
    assert [(r.reason, r.claim is not None) for r in out.rejected] == [("bad-weight", True)]
    metrics = {**dict(honest.content["branch"]), "train-loss": 0.5}
    for weight, reason in ((100, "bad-weight"), (claim_of(honest)["examples"], None)):
        checks = ClaimChecks(run_id=RUN_ID, keys=world["keys"], spend=SpendAudit(world["cfg"]))
        result = checks.check(metrics, 1, set(), weights={"SecAgg+ weight": weight})
        assert getattr(result, "reason", None) == reason


# -- 3. one message cannot crash the ServerApp -----------------------------------------------------------


def test_deeply_nested_claim_is_malformed_not_a_recursion_error(world, tmp_path):
    honest = world["replies"][1][0]
    deep = copy_reply(honest, branch=ConfigRecord({"branch-id": "branch-0", "status": "trained",
                                              "claim": "[" * 200_000 + "]" * 200_000}))
    arrays, _ = _strategy(world, tmp_path, min_train=1).aggregate_train(1, [deep, world["replies"][1][1]])
    assert arrays is not None and _outcome(tmp_path) == {("branch-1", True, None)}


def test_signed_reply_with_an_extra_metric_or_no_metrics_is_malformed_and_ledgered(world, tmp_path):
    honest = world["replies"][1]
    replies = [copy_reply(honest[0], metrics=_metrics(16, extra=1.0)), _signed(world, honest[1], drop=("metrics",)),
               honest[2], honest[3]]
    arrays, _ = _strategy(world, tmp_path).aggregate_train(1, replies)  # no InconsistentMessageReplies, no KeyError
    assert arrays is not None
    assert _outcome(tmp_path) == {("branch-0", False, "malformed"), ("branch-1", False, "malformed"),
                                  ("branch-2", True, None), ("branch-3", True, None)}


# -- 4. claim text comes from fixed vocabularies -----------------------------------------------------------


@pytest.mark.parametrize("changes", [
    {"kind": "client-level"}, {"protects": "nothing"}, {"accountant": "mine"}, {"status": "fine"},
    {"pii_counts": {"SHOE_SIZE": 1}}, {"pii_counts": {"PHONE": -1}}, {"reason": "policy: no"},
])
def test_a_signed_claim_outside_the_vocabularies_is_a_bad_claim_and_ledgered(world, tmp_path, changes):
    honest = world["replies"][1]
    arrays, _ = _strategy(world, tmp_path).aggregate_train(1, [_signed(world, honest[0], **changes), honest[1], honest[2]])
    assert arrays is not None
    assert ("branch-0", False, "bad-claim") in _outcome(tmp_path)


# -- 5. epsilon that goes down, or disagrees with the server's recomputation -----------------------------


def test_epsilon_that_goes_down_is_noticed(world, tmp_path):
    r1 = world["replies"][1][0]
    strategy = _strategy(world, tmp_path, min_train=1)
    strategy.aggregate_train(1, [_signed(world, r1, epsilon=9.5)])  # spent before this run: above the recomputation
    strategy.aggregate_train(2, [_signed(world, r1, round=2, epsilon=1.0)])
    assert [l.get("reject_reason") for l in _lines(tmp_path)] == [None, "epsilon-decreased"]
    rebuilt = SpendAudit(world["cfg"])  # a resumed run rebuilds the same state from the ledger
    rebuilt.rebuild(_lines(tmp_path)[:1], RUN_ID)
    assert rebuilt.check({**claim_of(r1), "round": 2, "epsilon": 1.0}).reason == "epsilon-decreased"


def test_epsilon_below_the_servers_recomputation_or_off_for_a_fresh_branch_is_a_mismatch(world, tmp_path):
    r1 = world["replies"][1]
    honest = claim_of(r1[1])
    assert honest["epsilon"] == pytest.approx(_epsilon_after(honest, 1), rel=1e-9)  # the branches start from zero
    strategy = _strategy(world, tmp_path, min_train=1)
    strategy.aggregate_train(1, [_signed(world, r1[0], epsilon=claim_of(r1[0])["epsilon"] * 0.95), r1[1]])
    twice = _epsilon_after(honest, 2)
    strategy.aggregate_train(2, [_signed(world, r1[0], round=2, epsilon=_epsilon_after(claim_of(r1[0]), 2)),
                                 _signed(world, r1[1], round=2, epsilon=twice * 1.5)])
    assert [(l["round"], l["branch"], l.get("reject_reason")) for l in _lines(tmp_path)] == [
        (1, "branch-0", "epsilon-mismatch"), (1, "branch-1", None), (2, "branch-0", "replayed"),
        (2, "branch-1", "epsilon-mismatch")]


@pytest.mark.parametrize("changes", [{"noise_multiplier": 0.5}, {"delta": 1e-3}, {"max_grad_norm": 5.0},
                                     {"accountant": "prv"}, {"sample_rate": 0.25}, {"steps": 1}, {"epsilon": None}])
def test_figures_that_disagree_with_the_run_config_are_a_config_mismatch(world, changes):
    out = make_intake(world).admit_round(1, [_signed(world, world["replies"][1][0], **changes)], world["arrays"])
    assert [r.reason for r in out.rejected] == ["config-mismatch"]


def test_a_planned_noise_is_recomputed_from_the_run_config():
    cfg = RunConfig.from_flower({"num-server-rounds": 3, "train.batch-size": 8, "dp.target-epsilon": 4.0})
    noise = planned_noise_multiplier(4.0, cfg.dp.delta, 1 / 4, 4 * 3, cfg.dp.accountant)
    claim = privacy_claim(cfg, run_id=1, server_round=1, branch_id="branch-0", status=STATUS_TRAINED, budget_epsilon=4.0,
                          examples=30, steps=4, sample_rate=0.25, noise=noise, pii_counts={},
                          epsilon=epsilon_of([(noise, 0.25, 4)], cfg.dp.accountant, cfg.dp.delta))
    assert SpendAudit(cfg).check(claim) is None
    assert SpendAudit(cfg).check({**claim, "noise_multiplier": noise * 0.9}).reason == "config-mismatch"


# -- 6. a failure line names the branch and what it may have spent; a line not aggregated says why ---------


def test_failure_line_names_the_branch_and_its_possible_epsilon(world, tmp_path):
    sent = [Message(content=RecordDict(), dst_node_id=1, message_type="train")]
    sent[0].metadata.__dict__["_message_id"] = sent[0].object_id
    strategy = _strategy(world, tmp_path, min_train=1)
    strategy.aggregate_train(1, [world["replies"][1][1]])  # node 1 is branch-1
    strategy._sent = sent
    strategy.aggregate_train(2, [Message(Error(code=0, reason="Node Unavailable"), reply_to=sent[0])])
    failure = _lines(tmp_path)[-1]
    assert (failure["kind"], failure["failed_branch"]) == ("failure", "branch-1")
    assert failure["possible_epsilon"] == pytest.approx(_epsilon_after(claim_of(world["replies"][1][1]), 2))


def test_a_round_below_min_train_branches_says_why(world, tmp_path):
    arrays, _ = _strategy(world, tmp_path, min_train=3).aggregate_train(1, list(world["replies"][1][:2]))
    assert arrays is None
    assert _outcome(tmp_path) == {("branch-0", False, "below-min-train-branches"),
                                  ("branch-1", False, "below-min-train-branches")}


# -- a branch's refusal ----------------------------------------------------------------------------------


def test_a_refused_claim_is_ledgered_as_the_branchs_refusal_and_the_round_goes_on(world, tmp_path):
    honest = world["replies"][1]
    refused = {"status": STATUS_REFUSED, "examples": 0, "steps": 0, "reason": "policy: dp.noise-multiplier too low"}
    replies = [_signed(world, honest[0], metrics=_metrics(0), drop=("envelope",), **refused), honest[1], honest[2]]
    strategy = _strategy(world, tmp_path)
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None
    assert _outcome(tmp_path) == {("branch-0", False, "refused-by-branch"), ("branch-1", True, None),
                                  ("branch-2", True, None)}
    assert strategy.recorder.data["rounds"][0]["branches"]["branch-0"]["status"] == STATUS_REFUSED
    bad = _signed(world, honest[0], metrics=_metrics(0), drop=("envelope",), **{**refused, "reason": "because"})
    assert [r.reason for r in make_intake(world).admit_round(1, [bad], world["arrays"]).rejected] == ["bad-claim"]


def test_privacy_claim_carries_a_refusals_reason():
    cfg = RunConfig()
    claim = privacy_claim(cfg, run_id=1, server_round=1, branch_id="b", status=STATUS_REFUSED, budget_epsilon=8.0,
                          examples=0, steps=0, sample_rate=0.5, noise=1.0, epsilon=0.0, pii_counts={},
                          reason="replay: round 3 was answered")
    assert claim["reason"] == "replay: round 3 was answered"
    assert "reason" not in privacy_claim(cfg, run_id=1, server_round=1, branch_id="b", status=STATUS_TRAINED,
                                         budget_epsilon=8.0, examples=1, steps=1, sample_rate=1.0, noise=1.0,
                                         epsilon=1.0, pii_counts={})
