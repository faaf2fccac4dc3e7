"""Secure aggregation (security.secagg): Flower's SecAgg+ around the real ClientApp and ServerApp code.

Two levels:

* in process: the real ServerApp main (``server.app.main``) drives Flower's ``SecAggPlusWorkflow``
  through a grid that hands every message, serialized to Flower's wire format
  and back, to the real ClientApp (``client.app.app`` with ``secaggplus_mod``).
  It sees every byte the server receives, so it can show that no reply carries
  a branch's update in the clear, and compare the unmasked aggregate with the
  plain FedAvg of the branches' own updates (each branch caches its plain reply
  on disk) -- also after a branch drops out mid-protocol;
* a real Flower simulation (3 branches x 2 rounds, the e2e config) with
  ``security.secagg = true``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Error, Message, MessageType, RecordDict
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.quantization import dequantize, quantize
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
from flwr.common.serde import message_from_proto, message_to_proto
from safetensors.numpy import load_file

import client.secagg as client_secagg
import server.run.secagg_loop as server_secagg
from server.app import main as server_main
from client import reply_cache
from client.app import app as client_app
from client.channel import BranchChannel
from common.config.run import RunConfig
from common.wire.envelope import deserialize_arrays
from common.errors import FedbankError
from server.records.keyring import ledger_verify_keys
from server.records.ledger import verify_ledger
from tests.branch_calls import initial_arrays, make_keys
from tests.conftest import E2E_CONFIG, ROOT

C, T = server_secagg.CLIPPING_RANGE, server_secagg.QUANTIZATION_RANGE
RUN_ID = 7  # the in-process ServerApp's run id (conftest's server_task_identity)


def _wire(msg: Message) -> Message:
    """The message as the other side receives it: through Flower's protobuf serialization."""
    return message_from_proto(message_to_proto(msg))


class InProcessGrid:
    """A Grid that delivers each message to the real ClientApp of its node (one persistent Context per node)."""

    def __init__(self, cfg: RunConfig, node_ids: list[int], drop: tuple[int, int] | None = None) -> None:
        self.cfg = cfg
        self.partition = {nid: i for i, nid in enumerate(node_ids)}
        self.contexts = {nid: Context(run_id=RUN_ID, node_id=nid, state=RecordDict(), run_config=cfg.to_flower(),
                                      node_config={"partition-id": i, "num-partitions": len(node_ids)})
                         for nid, i in self.partition.items()}
        self.drop = drop  # (round, node): that node drops out in the collect-masked-vectors stage
        self.collected: list[dict] = []  # what the server received in that stage, per (round, node)

    def get_node_ids(self) -> list[int]:
        return list(self.contexts)

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for msg in messages:
            request = _wire(msg)
            nid, rnd = request.metadata.dst_node_id, int(request.metadata.group_id)
            stage = request.content.config_records[RECORD_KEY_CONFIGS][Key.STAGE]
            if stage == Stage.COLLECT_MASKED_VECTORS and self.drop == (rnd, nid):
                replies.append(_wire(Message(Error(code=1, reason="dropped out"), reply_to=request)))
                continue
            reply = _wire(client_app(request, self.contexts[nid]))
            if stage == Stage.COLLECT_MASKED_VECTORS:
                branch = f"branch-{self.partition[nid]}"
                cached = reply_cache.load(self.cfg.output_dir / "branches" / branch, RUN_ID, rnd)  # its plain update
                self.collected.append({"round": rnd, "node": nid, "branch": branch, "request": request, "reply": reply,
                                       "update": deserialize_arrays(cached.update) if cached else None,
                                       "examples": cached.examples if cached else 0})
            replies.append(reply)
        return replies


# The e2e test's small config with SecAgg on; a fixed noise multiplier spares the noise search
# (most of a branch's CPU time here), DP-SGD itself is unchanged.
SECAGG_CONFIG = {**E2E_CONFIG, "security.secagg": True, "dp.noise-multiplier": 1.0}


def _cfg(out, **overrides) -> RunConfig:
    return RunConfig.from_flower({**RunConfig().to_flower(), **SECAGG_CONFIG, "output-dir": str(out),
                                  "num-branches": 3, **overrides})


def _fedavg(updates: list[dict], weights: list[int]) -> dict:
    total = float(sum(weights))
    return {k: sum(w * u[k].astype(np.float64) for u, w in zip(updates, weights)) / total for k in updates[0]}


def _quantization_bound(contributors: int, weights: list[int], max_weight: float) -> float:
    """Largest error SecAgg+ can add to a coordinate of the average.

    Each contributor's ``(weight / max_weight) * delta`` is stochastically rounded to a
    step of ``2C / T``; the sum of those errors is divided by ``sum(weight) / max_weight``.
    (1e-6 covers float32 rounding and the quantized weights.)
    """
    return contributors * (2 * C / T) / (sum(weights) / max_weight) + 1e-6


def _max_diff(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in a)


def _global_sent(entry: dict, keys_dir) -> dict:
    """The global adapter a collect-stage request carried (signed by the server)."""
    config = entry["request"].content["fitins.config"]
    channel = BranchChannel.load(keys_dir, entry["branch"], 64 * 1024 * 1024)
    return channel.open_global(config[client_secagg.KEY_GLOBAL], RUN_ID, entry["round"])


# -- in process: what the server sees, and what it computes ---------------------------------------


@pytest.fixture(scope="module")
def in_process_run(tmp_path_factory):
    """2 rounds, 4 branches.  branch-2's budget is too small to train (it answers budget-exhausted both
    rounds: a zero update of weight 0 inside the sum); in round 2 branch-3 drops out after the key exchange."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, RUN_ID, 0
    try:
        cfg = _cfg(tmp_path_factory.mktemp("secagg-inproc") / "run", **{
            "min-train-branches": 2, "num-branches": 4, "dp.branch-budgets": "branch-2=0.01"})
        make_keys(cfg, 4)
        grid = InProcessGrid(cfg, [1101, 2202, 3303, 4404], drop=(2, 4404))
        server_ctx = Context(run_id=RUN_ID, node_id=0, node_config={}, state=RecordDict(), run_config=cfg.to_flower())
        server_main(grid, server_ctx)
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved
    return cfg, grid


def test_server_receives_only_masked_vectors(in_process_run):
    cfg, grid = in_process_run
    assert len(grid.collected) == 7  # 4 replies in round 1, 3 in round 2 (branch-3 dropped out)
    for entry in grid.collected:
        reply = entry["reply"]
        content = reply.content
        # No plain update anywhere: the mod empties every ArrayRecord; no 'arrays', no sealed 'envelope'.
        assert all(len(rec) == 0 for rec in content.array_records.values())
        assert "arrays" not in content and "envelope" not in content
        glob = _global_sent(entry, cfg.keys_dir)
        update = entry["update"] or glob  # a budget refusal's update is "no change"
        wire = message_to_proto(reply).SerializeToString()
        for name, value in update.items():
            if entry["update"] is not None:
                assert np.ascontiguousarray(value).tobytes()[:64] not in wire  # neither the trained adapter ...
                assert np.ascontiguousarray(value - glob[name]).tobytes()[:64] not in wire  # ... nor its delta
        # What does arrive is the masked integer vector: [weight factor] + one array per tensor.
        masked = [bytes_to_ndarray(b) for b in content.config_records[RECORD_KEY_CONFIGS][Key.MASKED_PARAMETERS]]
        names = json.loads(entry["request"].content["fitins.config"][client_secagg.KEY_NAMES])
        assert len(masked) == len(names) + 1
        ratio = entry["examples"] / server_secagg.FIRST_MAX_WEIGHT
        for name, m in zip(names, masked[1:]):
            delta = update[name].astype(np.float64) - glob[name]
            if entry["round"] == 1:  # the weight scale is known in round 1: compare with the plain quantized update
                plain_q = quantize([delta * ratio], C, T)[0].astype(np.int64)
                assert np.mean(np.abs(m.astype(np.int64) - plain_q) > 1000) > 0.99
            # Read as if it were an unmasked quantized update, it is noise over the whole range.
            assert float(np.abs(dequantize([m % T], C, T)[0] - delta).max()) > 1.0


def test_aggregate_equals_plain_fedavg_of_the_branch_updates(in_process_run):
    cfg, grid = in_process_run
    round1 = [e for e in grid.collected if e["round"] == 1]
    round2 = [e for e in grid.collected if e["round"] == 2]
    global0 = _global_sent(round1[0], cfg.keys_dir)
    global1 = _global_sent(round2[0], cfg.keys_dir)
    assert _max_diff(global0, initial_arrays(cfg)) == 0

    # Round 1: branches 0, 1, 3 trained; branch-2's zero update of weight 0 is in the sum and changes nothing.
    trained1 = [e for e in round1 if e["update"] is not None]
    assert sorted(e["branch"] for e in trained1) == ["branch-0", "branch-1", "branch-3"]
    w1 = [e["examples"] for e in trained1]
    expected1 = _fedavg([e["update"] for e in trained1], w1)
    bound1 = _quantization_bound(len(round1), w1, server_secagg.FIRST_MAX_WEIGHT)
    assert _max_diff(global1, expected1) <= bound1
    assert _max_diff(global1, global0) > 100 * bound1  # the check is not vacuous: the adapter moved

    # Round 2: branch-3 dropped out after the key exchange (its masks were removed with the others' shares).
    trained2 = [e for e in round2 if e["update"] is not None]
    assert sorted(e["branch"] for e in round2) == ["branch-0", "branch-1", "branch-2"]
    assert sorted(e["branch"] for e in trained2) == ["branch-0", "branch-1"]
    w2 = [e["examples"] for e in trained2]
    expected2 = _fedavg([e["update"] for e in trained2], w2)
    bound2 = _quantization_bound(len(round2), w2, float(max(w1)))  # round 2 scales by the largest weight seen
    final = load_file(str(cfg.output_dir / "adapter" / "adapter_model.safetensors"))
    assert _max_diff(final, expected2) <= bound2
    assert _max_diff(final, global1) > 100 * bound2


def test_ledger_and_metrics_in_process(in_process_run):
    cfg, _ = in_process_run
    lines = [json.loads(line) for line in (cfg.output_dir / "ledger.jsonl").read_text().splitlines()]
    rows = [r for r in lines if r["branch"] != "(server)"]
    # branch-3 dropped out in round 2: a failure line names it (learned from its round-1 claim) and what it may have spent
    failures = [r for r in lines if r["branch"] == "(server)" and r.get("kind") != "head"]
    assert [(f["round"], f["kind"], f["failed_branch"]) for f in failures] == [(2, "failure", "branch-3")]
    assert failures[0]["possible_epsilon"] > next(r["epsilon"] for r in rows if r["branch"] == "branch-3")
    assert sorted((r["round"], r["branch"], r["status"], r["aggregated"]) for r in rows) == [
        (1, "branch-0", "trained", True), (1, "branch-1", "trained", True),
        (1, "branch-2", "budget-exhausted", False), (1, "branch-3", "trained", True),
        (2, "branch-0", "trained", True), (2, "branch-1", "trained", True),
        (2, "branch-2", "budget-exhausted", False)]
    assert all(r["noise_multiplier"] > 0 and r["epsilon"] > 0 for r in rows if r["status"] == "trained")
    assert verify_ledger(cfg.output_dir / "ledger.jsonl", ledger_verify_keys(cfg.keys_dir), require_signatures=True).ok
    metrics = json.loads((cfg.output_dir / "metrics.json").read_text())
    assert metrics["secure_aggregation"]["protocol"].startswith("SecAgg+")
    r2 = next(r for r in metrics["rounds"] if r["round"] == 2)
    assert [f["node"] for f in r2["failures"]] == [4404]
    assert set(r2["branches"]) == {"branch-0", "branch-1", "branch-2"}


# -- the mod on the normal path, and the settings SecAgg cannot serve --------------------------------


def _train_msg(content: RecordDict) -> Message:
    return Message(content=content, dst_node_id=1, message_type=MessageType.TRAIN)


def test_mod_passes_plain_messages_through_untouched(server_task_identity):
    cfg = RunConfig()  # security.secagg = false
    ctx = Context(run_id=RUN_ID, node_id=1, node_config={}, state=RecordDict(), run_config=cfg.to_flower())
    msg = _train_msg(RecordDict({"config": ConfigRecord({"server-round": 1})}))
    seen = []
    sentinel = object()

    def call_next(m, c):
        seen.append((m, c))
        return sentinel

    assert client_secagg.secagg_mod(msg, ctx, call_next) is sentinel
    assert seen == [(msg, ctx)] and len(ctx.state.config_records) == 0
    query = Message(content=RecordDict(), dst_node_id=1, message_type=MessageType.QUERY)
    assert client_secagg.secagg_mod(query, ctx, call_next) is sentinel


def test_branch_refuses_a_plain_request_in_a_secagg_run(server_task_identity):
    cfg = RunConfig.from_flower({**RunConfig().to_flower(), "security.secagg": True})
    ctx = Context(run_id=RUN_ID, node_id=1, node_config={}, state=RecordDict(), run_config=cfg.to_flower())
    msg = _train_msg(RecordDict({"config": ConfigRecord({"server-round": 1})}))
    with pytest.raises(FedbankError, match="refuses a plain training request"):
        client_secagg.secagg_mod(msg, ctx, lambda m, c: pytest.fail("the handler must not run"))


@pytest.mark.parametrize("override, match", [
    ({"aggregation.method": "median"}, "fedavg"),  # refused by RunConfig itself
    ({"central-dp.mode": "fixed"}, "central-dp.mode"),
    ({"resume": True}, "resume"),
    ({"aggregation.server-momentum": 0.9}, "server-momentum"),
])
def test_settings_that_need_individual_updates_are_refused(tmp_path, override, match):
    with pytest.raises(FedbankError, match=match):
        _cfg(tmp_path, **override)


@pytest.mark.parametrize("override, match", [
    ({"faults.server-crash-round": 1}, "server-crash-round"),
    ({"num-branches": 1, "min-train-branches": 1}, "at least 2 branches"),
])
def test_settings_secagg_cannot_serve_are_refused_before_the_run(tmp_path, override, match):
    with pytest.raises(FedbankError, match=match):
        server_secagg.check_supported(_cfg(tmp_path, **override))


# -- a real Flower simulation -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secagg_run(tmp_path_factory):
    from simulations.local.runner import simulate

    out = tmp_path_factory.mktemp("secagg-sim") / "run"
    return simulate(ROOT, out, num_branches=3, run_config=SECAGG_CONFIG, timeout=900)


def test_simulation_with_secagg(secagg_run):
    out = secagg_run.output_dir
    assert (secagg_run.status, secagg_run.sub_status) in {("finished", "completed"), ("completed", "finished")}
    log = secagg_run.log_path.read_text()
    assert log.count("INFO:Secure aggregation completed") == 2 and "Secure aggregation halted" not in log

    rows = [e for e in map(json.loads, (out / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    assert sorted((r["round"], r["branch"]) for r in rows) == [(r, f"branch-{b}") for r in (1, 2) for b in range(3)]
    assert all(r["aggregated"] and r["status"] == "trained" and r["epsilon"] > 0 for r in rows)
    cfg = RunConfig.from_flower(json.loads((out / "metrics.json").read_text())["config"])
    assert verify_ledger(out / "ledger.jsonl", ledger_verify_keys(cfg.keys_dir), require_signatures=True).ok
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2]
    assert all({"loss", "accuracy", "macro_f1"} <= set(r) for r in metrics["rounds"])

    final = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert _max_diff(final, initial_arrays(cfg)) > 1e-3
    # The final adapter is the FedAvg of the three round-2 updates, which each branch cached in plain form.
    run_id = rows[0]["run_id"]
    cached = [reply_cache.load(out / "branches" / f"branch-{b}", run_id, 2) for b in range(3)]
    weights = [c.examples for c in cached]
    assert weights == [r["examples"] for r in sorted((r for r in rows if r["round"] == 2), key=lambda r: r["branch"])]
    expected = _fedavg([deserialize_arrays(c.update) for c in cached], weights)
    assert _max_diff(final, expected) <= _quantization_bound(3, weights, float(max(weights)))
