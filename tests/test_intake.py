"""The server admits only honest updates: real branch replies (real ClientApp, real
AES-GCM/Ed25519 envelopes) are tampered with, forged, replayed, duplicated or made
invalid, and each is excluded with its reason while the round completes with the
honest branches."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from flwr.app import ConfigRecord, Error, Message, RecordDict

from common.config.run import RunConfig
from common.wire.envelope import open_update, seal_update
from common.keys.layout import KeyLayout, load_ed25519_private
from common.wire.protocol import branch_record, claim_bytes
from server.aggregation.aggregators import build_aggregator
from server.admission.intake import Intake
from server.admission.spend import SpendAudit
from server.records.ledger import PrivacyLedger, verify_ledger
from server.records.metrics import RunRecorder
from server.aggregation.strategy import BranchStrategy
from tests.branch_calls import call_branch, claim_of, initial_arrays, make_keys, train_message

RUN = {"num-server-rounds": 2, "num-branches": 4, "data.records-per-branch": 16, "model.max-length": 48,
       "train.batch-size": 8, "dp.noise-multiplier": 0.8, "min-train-branches": 2}
RUN_ID = 9
pytestmark = pytest.mark.usefixtures("server_task_identity")  # the server process creates messages


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Four branches' real round-1 and round-2 replies, and the server's keys."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 7, 0
    try:
        out = tmp_path_factory.mktemp("intake")
        cfg = RunConfig.from_flower({**RUN, "output-dir": str(out)})
        keys = make_keys(cfg, 4)
        arrays = initial_arrays(cfg)
        replies = {r: [call_branch(cfg, train_message(cfg, r, RUN_ID, arrays), p, 4) for p in range(4)] for r in (1, 2)}
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved
    return {"cfg": cfg, "keys": keys, "arrays": arrays, "replies": replies, "out": out}


def signing_key(cfg, branch):
    return load_ed25519_private(KeyLayout.from_dir(cfg.keys_dir).branch(branch).ed25519_key)


def copy_reply(msg: Message, **changes) -> Message:
    """A reply with some records replaced (a new Message, the original untouched)."""
    content = RecordDict({
        "branch": ConfigRecord(dict(msg.content["branch"])),
        "metrics": msg.content["metrics"],
        "envelope": ConfigRecord(dict(msg.content["envelope"])),
    })
    for name, record in changes.items():
        content[name] = record
    return Message(content=content, reply_to=Message(content=RecordDict(), dst_node_id=1, message_type="train"))


def make_intake(world, max_norm=0.0):
    return Intake(run_id=RUN_ID, keys=world["keys"], max_update_norm=max_norm, max_bytes=64 << 20,
                  spend=SpendAudit(world["cfg"]))


def _sealed_by(world, branch, arrays, server_round=1, run_id=RUN_ID):
    return seal_update(arrays, run_id=run_id, server_round=server_round, branch_id=branch,
                       branch_signing_key=signing_key(world["cfg"], branch),
                       server_public_key=world["keys"].decrypt_key.public_key())


def test_honest_replies_are_all_admitted(world):
    out = make_intake(world).admit_round(1, list(world["replies"][1]), world["arrays"])
    assert [a.branch_id for a in out.admitted] == ["branch-0", "branch-1", "branch-2", "branch-3"]
    assert not out.rejected and all(a.wire_bytes > 0 for a in out.admitted)


def test_tampered_ciphertext_is_rejected_as_tampered(world):
    honest = world["replies"][1][0]
    blob = bytearray(honest.content["envelope"]["update"])
    blob[len(blob) // 2] ^= 0x01
    bad = copy_reply(honest, envelope=ConfigRecord({"update": bytes(blob)}))
    out = make_intake(world).admit_round(1, [bad], world["arrays"])
    assert [(r.branch_id, r.reason) for r in out.rejected] == [("branch-0", "tampered")]
    assert out.rejected[0].claim is not None  # the claim verified: the spend is ledgered, not aggregated


def test_update_sealed_by_another_branch_is_forged(world):
    honest = world["replies"][1][1]
    update = _sealed_by(world, "branch-2", world["arrays"])  # branch-2 pretends to be branch-1's update
    bad = copy_reply(honest, envelope=ConfigRecord({"update": update}))
    out = make_intake(world).admit_round(1, [bad], world["arrays"])
    assert [(r.branch_id, r.reason) for r in out.rejected] == [("branch-1", "forged")]


def test_claim_signed_with_the_wrong_key_is_forged(world):
    honest = world["replies"][1][1]
    claim = claim_of(honest)
    claim["epsilon"] = 0.01  # under-report the spend, sign with another branch's key
    record = branch_record(claim, signing_key(world["cfg"], "branch-3").sign(claim_bytes(claim)))
    out = make_intake(world).admit_round(1, [copy_reply(honest, branch=record)], world["arrays"])
    assert [(r.branch_id, r.reason, r.claim) for r in out.rejected] == [("branch-1", "forged", None)]


def test_unknown_branch_is_rejected(world):
    honest = world["replies"][1][0]
    claim = {**claim_of(honest), "branch": "branch-99"}
    out = make_intake(world).admit_round(1, [copy_reply(honest, branch=branch_record(claim, b"\0" * 64))], world["arrays"])
    assert [(r.branch_id, r.reason) for r in out.rejected] == [("branch-99", "unknown-branch")]


def test_round_one_reply_sent_in_round_two_is_replayed(world):
    out = make_intake(world).admit_round(2, [world["replies"][1][2]], world["arrays"])
    assert [(r.branch_id, r.reason) for r in out.rejected] == [("branch-2", "replayed")]


def test_second_reply_from_a_branch_in_a_round_is_a_duplicate(world):
    first = world["replies"][1][3]
    out = make_intake(world).admit_round(1, [first, copy_reply(first)], world["arrays"])
    assert [a.branch_id for a in out.admitted] == ["branch-3"]
    assert [(r.branch_id, r.reason) for r in out.rejected] == [("branch-3", "duplicate")]


@pytest.mark.parametrize("reason", ["keys", "shape", "dtype", "non-finite", "norm"])
def test_invalid_update_from_a_compromised_branch_is_rejected_with_its_reason(world, reason):
    honest = world["replies"][1][0]
    arrays = {k: v.copy() for k, v in world["arrays"].items()}
    name = sorted(arrays)[0]
    if reason == "keys":
        arrays.pop(name)
    elif reason == "shape":
        arrays[name] = np.zeros(arrays[name].shape[:-1] + (arrays[name].shape[-1] + 1,), arrays[name].dtype)
    elif reason == "dtype":
        arrays[name] = arrays[name].astype(np.float64)
    elif reason == "non-finite":
        arrays[name].flat[0] = np.nan
    else:
        arrays[name] = arrays[name] + 100.0
    bad = copy_reply(honest, envelope=ConfigRecord({"update": _sealed_by(world, "branch-0", arrays)}))
    out = make_intake(world, max_norm=50.0).admit_round(1, [bad], world["arrays"])
    assert [(r.branch_id, r.reason) for r in out.rejected] == [("branch-0", reason)]


def test_round_completes_with_the_honest_branches_and_everything_is_logged(world, tmp_path, caplog):
    cfg = world["cfg"]
    honest = world["replies"][1]
    blob = bytearray(honest[0].content["envelope"]["update"])
    blob[-100] ^= 0xFF
    replies = [copy_reply(honest[0], envelope=ConfigRecord({"update": bytes(blob)})),  # tampered
               honest[1], honest[2], copy_reply(honest[2]),  # duplicate
               world["replies"][2][3]]  # replayed (round 2 reply in round 1)
    recorder = RunRecorder(tmp_path / "metrics.json", {})
    ledger = PrivacyLedger(tmp_path / "ledger.jsonl")
    strategy = BranchStrategy(build_aggregator(cfg), intake=make_intake(world), ledger=ledger, recorder=recorder,
                              keys=world["keys"], min_train_branches=2)
    strategy._global = world["arrays"]
    with caplog.at_level(logging.WARNING, logger="flwr"):
        arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None
    # FedAvg of exactly the two honest updates, weighted by examples.
    keys = world["keys"]
    opened = [open_update(m.content["envelope"]["update"], expected_run_id=RUN_ID, expected_round=1,
                          server_private_key=keys.decrypt_key, branch_verify_keys=keys.branch_keys) for m in honest[1:3]]
    weights = [claim_of(m)["examples"] for m in honest[1:3]]
    for name, value in arrays.items():
        expected = sum(w * o.arrays[name] for w, o in zip(weights, opened)) / sum(weights)
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-5, atol=1e-6)
    text = caplog.text
    for reason in ("tampered", "duplicate", "replayed"):
        assert f": {reason} (" in text
    rejected = {(r["branch"], r["reason"]) for r in recorder.data["rounds"][0]["rejected"]}
    assert rejected == {("branch-0", "tampered"), ("branch-2", "duplicate"), ("branch-3", "replayed")}
    lines = [json.loads(l) for l in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    # tampered branch-0 spent privacy (its claim verified): ledgered, not aggregated; honest ones aggregated.
    assert {(l["branch"], l["aggregated"], l.get("reject_reason")) for l in lines} == {
        ("branch-0", False, "tampered"), ("branch-1", True, None), ("branch-2", True, None)}
    from server.records.keyring import ledger_verify_keys

    assert verify_ledger(tmp_path / "ledger.jsonl", ledger_verify_keys(cfg.keys_dir), require_signatures=True).ok


def test_a_sampled_branch_that_never_answers_gets_a_failure_line(world, tmp_path):
    """The round's time limit ran out before one sampled branch answered: the ledger names it, the rest aggregates."""
    cfg = world["cfg"]
    sent = [Message(content=RecordDict(), dst_node_id=node, message_type="train") for node in (11, 12, 13)]
    for msg in sent:  # the SuperLink gives each pushed message its object id as message id
        msg.metadata.__dict__["_message_id"] = msg.object_id
    assert len({msg.metadata.message_id for msg in sent}) == 3
    answered = Message(content=world["replies"][1][1].content, reply_to=sent[0])
    unavailable = Message(Error(code=0, reason="Node Unavailable"), reply_to=sent[2])  # as the SuperLink answers
    ledger = PrivacyLedger(tmp_path / "ledger.jsonl")
    strategy = BranchStrategy(build_aggregator(cfg), intake=make_intake(world), ledger=ledger,
                              recorder=RunRecorder(tmp_path / "metrics.json", {}), keys=world["keys"],
                              min_train_branches=1, round_timeout=45.0)
    strategy._global, strategy._sent = world["arrays"], sent
    arrays, _ = strategy.aggregate_train(1, [answered, unavailable])
    assert arrays is not None  # the branch that answered is aggregated
    lines = [json.loads(l) for l in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    failures = sorted((l for l in lines if l.get("kind") == "failure"), key=lambda l: l["failed_branch"])
    # one line per failed branch: the silent one, and the one Flower answered for (not counted twice)
    assert [(l["failed_branch"], l["status"]) for l in failures] == [("node-12", "branch-failed"),
                                                                    ("node-13", "branch-failed")]
    assert "no reply had arrived when the round closed (round-timeout=45 s)" in failures[0]["reason"]
    assert failures[1]["reason"] == "Node Unavailable"
    assert [(l["branch"], l["aggregated"]) for l in lines if l.get("kind") != "failure"] == [("branch-1", True)]


def test_a_branch_not_sampled_again_after_a_crash_keeps_its_spend_in_the_ledger(world, tmp_path):
    """Resume with fraction-train < 1: Flower samples the unfinished round anew, and no spend may drop out.

    Branches 0 and 1 answered the interrupted attempt of round 1 (both spent and
    were ledgered), then the server died before its checkpoint.  The round runs
    again with branches 1 and 2: branch 1 resends its cached reply; branch 0,
    not sampled, must still have its signed claim in the ledger, once.
    """
    from server.records.checkpoint import Checkpoint, rewind_ledger, unfinished_claims
    from server.records.keyring import ledger_verify_keys
    from server.report.build import build_report

    cfg, replies = world["cfg"], world["replies"][1]
    ledger = PrivacyLedger(tmp_path / "ledger.jsonl")
    ckpt = Checkpoint(run_id=RUN_ID, round=0, adapter_file="", ledger_entries=len(ledger), ledger_head=ledger.head)
    crashed = BranchStrategy(build_aggregator(cfg), intake=make_intake(world), ledger=ledger,
                             recorder=RunRecorder(tmp_path / "metrics.json", {}), keys=world["keys"], min_train_branches=1)
    crashed._global = world["arrays"]
    crashed.aggregate_train(1, [replies[0], replies[1]])
    spent = {l["branch"]: l for l in map(json.loads, (tmp_path / "ledger.jsonl").read_text().splitlines())}
    assert rewind_ledger(tmp_path / "ledger.jsonl", ckpt) == 2

    recorder = RunRecorder(tmp_path / "metrics.json", {})
    resumed = BranchStrategy(build_aggregator(cfg), intake=make_intake(world), ledger=PrivacyLedger(tmp_path / "ledger.jsonl"),
                             recorder=recorder, keys=world["keys"], min_train_branches=1,
                             interrupted={1: unfinished_claims(tmp_path, 1)})
    resumed._global = world["arrays"]
    arrays, _ = resumed.aggregate_train(1, [replies[1], replies[2]])
    assert arrays is not None
    lines = [json.loads(l) for l in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert sorted((l["branch"], l["aggregated"], l.get("reject_reason")) for l in lines) == [
        ("branch-0", False, "interrupted"), ("branch-1", True, None), ("branch-2", True, None)]
    carried = next(l for l in lines if l["branch"] == "branch-0")
    assert {k: carried[k] for k in ("epsilon", "steps", "noise_multiplier", "signature")} == {
        k: spent["branch-0"][k] for k in ("epsilon", "steps", "noise_multiplier", "signature")}
    assert verify_ledger(tmp_path / "ledger.jsonl", ledger_verify_keys(cfg.keys_dir), require_signatures=True).ok
    assert [(r["branch"], r["reason"]) for r in recorder.data["rounds"][0]["rejected"]] == [("branch-0", "interrupted")]
    recorder.save()
    report = build_report(tmp_path)  # the reviewer sees branch 0's spend, and metrics.json agrees with the ledger
    assert report["consistency"]["metrics_vs_ledger"] == []
    assert next(b for b in report["branches"] if b["branch"] == "branch-0")["final_epsilon"] == spent["branch-0"]["epsilon"]


def test_a_broken_set_aside_ledger_file_stops_the_resume_with_one_line(tmp_path):
    from common.errors import LedgerError
    from server.records.checkpoint import UNFINISHED_FILE, unfinished_claims

    assert unfinished_claims(tmp_path, 2) == []  # nothing was set aside
    (tmp_path / UNFINISHED_FILE).write_bytes(b'{"round": 2, "branch": "branch-0"}\n{"round": 2, "bran\n')
    with pytest.raises(LedgerError, match=r"ledger.unfinished.jsonl line 2 is not JSON .*restore it from a backup") as err:
        unfinished_claims(tmp_path, 2)
    assert "\n" not in str(err.value)
    (tmp_path / UNFINISHED_FILE).write_bytes(b'{"round": 2, "branch": "branch-0", "signature": "not hex"}\n')
    with pytest.raises(LedgerError, match="line 1 has a malformed signature"):
        unfinished_claims(tmp_path, 2)
