"""The server optimizer after aggregation: Flower's FedAvgM / FedAdam / FedYogi / FedAdagrad arithmetic, and its state survives a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAdagrad, FedAdam, FedAvg, FedAvgM, FedYogi

from common.config.run import RunConfig
from common.errors import ConfigError
from common.wire.protocol import arrays_to_record, record_to_arrays
from server.records.checkpoint import Checkpoint, load_checkpoint, load_velocity, save_checkpoint
from server.aggregation.server_optimizer import ServerAdaptive, ServerMomentum, build_server_optimizer


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
    opt = build_server_optimizer(RunConfig.from_flower({}))
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


@pytest.mark.usefixtures("server_task_identity")
@pytest.mark.parametrize("kind, flower_cls", [("adam", FedAdam), ("yogi", FedYogi), ("adagrad", FedAdagrad)])
def test_adaptive_server_step_after_fedavg_equals_flowers_strategy(kind, flower_cls):
    """FedAvg of the replies, then our step, lands where Flower's own strategy lands on the same replies."""
    rng = np.random.default_rng(1)
    shapes = {"lora_B": (8, 4), "classifier": (3,)}
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    settings = {"eta": 0.05, "tau": 1e-2} | ({} if kind == "adagrad" else {"beta_1": 0.8, "beta_2": 0.95})
    flower = flower_cls(**settings)
    cfg = RunConfig.from_flower({"aggregation.server-optimizer": kind, "aggregation.server-learning-rate": 0.05,
                                 "aggregation.server-beta1": 0.8, "aggregation.server-beta2": 0.95,
                                 "aggregation.server-tau": 1e-2})
    ours, plain, expected_now, current = build_server_optimizer(cfg), FedAvg(), start, start
    assert isinstance(ours, ServerAdaptive)
    for server_round in (1, 2, 3):
        replies = _replies(rng, shapes, sizes=[12, 3, 40])
        flower.current_arrays = {k: v.copy() for k, v in expected_now.items()}
        expected, _ = flower.aggregate_train(server_round, replies)
        expected_now = record_to_arrays(expected)
        aggregate, _ = plain.aggregate_train(server_round, replies)
        current = ours.step(current, record_to_arrays(aggregate), server_round)
        for key, value in expected_now.items():
            np.testing.assert_allclose(current[key], value, rtol=1e-5, atol=1e-6)
        assert not np.allclose(current["lora_B"], record_to_arrays(aggregate)["lora_B"])  # not plain averaging


@pytest.mark.usefixtures("server_task_identity")
@pytest.mark.parametrize("kind", ["adam", "yogi", "adagrad"])
def test_adaptive_moments_survive_a_checkpoint_and_resume_exactly(tmp_path, kind):
    opt = ServerAdaptive(kind, learning_rate=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3)
    current = {"w": np.zeros(5, dtype=np.float32)}
    assert opt.state_arrays() is None
    for server_round in (1, 2):
        current = opt.step(current, {"w": np.full(5, float(server_round), dtype=np.float32)}, server_round)
        save_checkpoint(tmp_path, Checkpoint(run_id=7, round=server_round, adapter_file="", ledger_entries=0,
                                             ledger_head=""), current, velocity=opt.state_arrays())
    ckpt, arrays = load_checkpoint(tmp_path)
    resumed = ServerAdaptive(kind, learning_rate=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3)
    resumed.load_state_arrays(load_velocity(tmp_path, ckpt))
    nxt = {"w": np.full(5, 3.0, dtype=np.float32)}
    np.testing.assert_array_equal(resumed.step(arrays, nxt, 3)["w"], opt.step(current, nxt, 3)["w"])
    fresh = ServerAdaptive(kind, learning_rate=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3)
    assert not np.array_equal(fresh.step(arrays, nxt, 3)["w"], resumed.step(arrays, nxt, 3)["w"])  # state mattered


@pytest.mark.parametrize("overrides, fragment", [
    ({"aggregation.server-optimizer": "adamw"}, "aggregation.server-optimizer"),
    ({"aggregation.server-optimizer": "adam", "aggregation.server-momentum": 0.5}, "aggregation.server-beta1"),
    ({"aggregation.server-optimizer": "yogi", "aggregation.server-beta2": 1.0}, "aggregation.server-beta2"),
    ({"aggregation.server-optimizer": "adam", "aggregation.server-tau": 0}, "aggregation.server-tau"),
    ({"aggregation.server-optimizer": "adam", "security.secagg": True}, "aggregation.server-optimizer at 'sgd'"),
    ({"aggregation.server-momentum": 1.0}, "aggregation.server-momentum"),
    ({"aggregation.server-learning-rate": 0}, "aggregation.server-learning-rate"),
    ({"aggregation.server-momentum": 0.9, "security.secagg": True}, "aggregation.server-momentum at 0"),
])
def test_bad_server_optimizer_settings_are_one_line_errors(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        RunConfig.from_flower(overrides)
    assert "\n" not in str(err.value)


def test_a_simulation_with_flowers_fedadam_checkpoints_its_moments(tmp_path):
    """A real run with aggregation.server-optimizer=adam: it completes, logs the optimizer and checkpoints m and v."""
    from server.records.checkpoint import CHECKPOINT_DIR
    from simulations.local.runner import simulate
    from tests.conftest import ROOT

    run = {"num-server-rounds": 2, "data.records-per-branch": 24, "model.max-length": 48, "train.batch-size": 8,
           "dp.target-epsilon": 6.0, "min-train-branches": 2, "aggregation.server-optimizer": "adam",
           "aggregation.server-learning-rate": 0.05}
    simulate(ROOT, tmp_path, num_branches=2, run_config=run, timeout=900)
    ckpt, arrays = load_checkpoint(tmp_path)
    assert ckpt.round == 2 and ckpt.momentum_file
    state = load_velocity(tmp_path, ckpt)
    assert {k[2:] for k in state if k.startswith("m/")} == set(arrays) == {k[2:] for k in state if k.startswith("v/")}
    assert (tmp_path / CHECKPOINT_DIR / ckpt.momentum_file).exists()
    assert "server adam (Flower FedAdam)" in (tmp_path / "flower.log").read_text(encoding="utf-8", errors="replace")
