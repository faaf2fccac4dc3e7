"""The branch's privacy state: persisted accountant, composition over rounds, the budget gate."""

from __future__ import annotations

import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from opacus.accountants import PRVAccountant, RDPAccountant

from client.app import app as client_app
from client.budget import PrivacyState, planned_noise_multiplier
from common.config import RunConfig
from common.model import adapter_arrays, build_peft_model, load_tokenizer
from common.protocol import arrays_to_record


def test_state_survives_reload_and_composes(tmp_path):
    state = PrivacyState(accountant="rdp", delta=1e-5)
    state.record_round(1, 1, [(1.1, 0.1, 10)], 10)
    state.save(tmp_path)
    again = PrivacyState.load(tmp_path, "rdp", 1e-5)
    assert again.history == [[1.1, 0.1, 10]]
    acc = RDPAccountant()
    acc.history = [(1.1, 0.1, 10)]
    assert again.epsilon == pytest.approx(acc.get_epsilon(1e-5))
    assert again.epsilon_after(1.1, 0.1, 10) > again.epsilon


def test_planned_noise_spends_the_target_over_the_whole_run():
    noise = planned_noise_multiplier(4.0, 1e-5, 0.05, 200, "prv")
    acc = PRVAccountant()
    acc.history = [(noise, 0.05, 200)]
    assert acc.get_epsilon(1e-5) == pytest.approx(4.0, abs=0.05)


def test_changing_accountant_mid_history_is_refused(tmp_path):
    PrivacyState(accountant="rdp", delta=1e-5).save(tmp_path)
    with pytest.raises(Exception, match="dp.accountant"):
        PrivacyState.load(tmp_path, "prv", 1e-5)


def _train_message(cfg, server_round):
    tok = load_tokenizer(cfg.model)
    arrays = adapter_arrays(build_peft_model(cfg.model, 8, vocab_size=len(tok)))
    content = RecordDict({"arrays": arrays_to_record(arrays), "config": ConfigRecord({"server-round": server_round})})
    return Message(content=content, dst_node_id=1, message_type=MessageType.TRAIN)


def test_branch_continues_epsilon_across_restarts_and_stops_at_budget(tmp_path, server_task_identity):
    """Each call is a fresh ClientApp invocation (as after a process restart): only disk state carries over."""
    run = {"num-server-rounds": 2, "num-branches": 2, "data.records-per-branch": 24, "model.max-length": 64,
           "train.batch-size": 8, "dp.noise-multiplier": 0.8, "dp.budget-epsilon": 12.0, "output-dir": str(tmp_path)}
    cfg = RunConfig.from_flower(run)
    node = {"partition-id": 0, "num-partitions": 2}
    epsilons, statuses = [], []
    for server_round in range(1, 8):
        ctx = Context(run_id=9, node_id=1, node_config=node, state=RecordDict(), run_config=cfg.to_flower())
        reply = client_app(_train_message(cfg, server_round), ctx)
        statuses.append(reply.content["branch"]["status"])
        epsilons.append(float(reply.content["metrics"]["epsilon"]))
        if statuses[-1] == "budget-exhausted":
            assert "arrays" not in reply.content
            break
    assert statuses[0] == "trained" and statuses[-1] == "budget-exhausted"
    trained = epsilons[:-1]
    assert all(b > a for a, b in zip(trained, trained[1:]))  # never reset
    assert max(epsilons) <= 12.0
    assert epsilons[-1] == pytest.approx(trained[-1])  # refusing spends nothing
