"""Server momentum (FedAvgM) after aggregation: Flower's FedAvgM arithmetic, and its velocity survives a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg, FedAvgM

from common.config.run import RunConfig
from common.errors import ConfigError
from common.wire.protocol import arrays_to_record, record_to_arrays
from server.records.checkpoint import Checkpoint, load_checkpoint, load_velocity, save_checkpoint
from server.aggregation.server_momentum import ServerMomentum


def _replies(rng, shapes, sizes):
    out = []
    for n in sizes:
        arrays = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
        content = RecordDict({"arrays": arrays_to_record(arrays), "metrics": MetricRecord({"num-examples": n})})
        out.append(Message(content=content, reply_to=Message(content=RecordDict(), dst_node_id=1, message_type="train")))
    return out


@pytest.mark.usefixtures("server_task_identity")  # Flower messages are made in a server process
def test_server_momentum_after_fedavg_equals_flowers_fedavgm():
    rng = np.random.default_rng(0)
    shapes = {"lora_A": (4, 8), "classifier": (3,)}
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    flower = FedAvgM(server_learning_rate=0.7, server_momentum=0.9)
    flower.current_arrays = arrays_to_record(start)  # what its configure_train records before round 1
    ours, plain, current = ServerMomentum(learning_rate=0.7, momentum=0.9), FedAvg(), start
    for server_round in (1, 2, 3):
        replies = _replies(rng, shapes, sizes=[10, 30, 5])
        expected, _ = flower.aggregate_train(server_round, replies)
        aggregate, _ = plain.aggregate_train(server_round, replies)
        current = ours.step(current, record_to_arrays(aggregate))
        for key, value in record_to_arrays(expected).items():
            np.testing.assert_allclose(current[key], value, rtol=1e-5, atol=1e-6)
        assert not np.allclose(current["lora_A"], record_to_arrays(aggregate)["lora_A"])  # momentum changed the step


def test_plain_averaging_is_left_untouched():
    opt = ServerMomentum()
    aggregate = {"w": np.ones(3, dtype=np.float32)}
    assert not opt.active and opt.step({"w": np.zeros(3, dtype=np.float32)}, aggregate) is aggregate
    assert opt.state_arrays() is None


def test_velocity_is_checkpointed_with_the_adapter_and_old_files_dropped(tmp_path):
    opt = ServerMomentum(momentum=0.5)
    current = {"w": np.zeros(5, dtype=np.float32)}
    for server_round in (1, 2):
        current = opt.step(current, {"w": np.full(5, float(server_round), dtype=np.float32)})
        save_checkpoint(tmp_path, Checkpoint(run_id=7, round=server_round, adapter_file="", ledger_entries=0,
                                             ledger_head=""), current, velocity=opt.state_arrays())
    ckpt, arrays = load_checkpoint(tmp_path)
    resumed = ServerMomentum(momentum=0.5)
    resumed.load_state_arrays(load_velocity(tmp_path, ckpt))
    np.testing.assert_array_equal(resumed.velocity["w"], opt.velocity["w"])
    np.testing.assert_array_equal(arrays["w"], current["w"])
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == [
        "checkpoint.json", "momentum-0002.safetensors", "round-0002.safetensors"]
    nxt = {"w": np.full(5, 3.0, dtype=np.float32)}
    np.testing.assert_array_equal(resumed.step(arrays, nxt)["w"], opt.step(current, nxt)["w"])  # resumes exactly


@pytest.mark.parametrize("overrides, fragment", [
    ({"aggregation.server-momentum": 1.0}, "aggregation.server-momentum"),
    ({"aggregation.server-learning-rate": 0}, "aggregation.server-learning-rate"),
    ({"aggregation.server-momentum": 0.9, "security.secagg": True}, "leave aggregation.server-momentum at 0"),
])
def test_bad_server_momentum_settings_are_one_line_errors(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        RunConfig.from_flower(overrides)
    assert "\n" not in str(err.value)
