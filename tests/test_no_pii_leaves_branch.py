"""No PII planted in a branch's raw records reaches a tokenized batch or a message the branch sends."""

from __future__ import annotations

import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from client.app import app as client_app
from client.branch_data import prepare_branch
from common.config import RunConfig, branch_settings
from common.data import synthetic_corpus
from common.model import adapter_arrays, build_peft_model, load_tokenizer
from common.protocol import arrays_to_record
from common.synthetic import generate_records

RUN = {"num-server-rounds": 1, "num-branches": 2, "data.records-per-branch": 40, "model.max-length": 160,
       "train.batch-size": 8, "data.zh-fraction": 0.5}


@pytest.fixture()
def cfg(tmp_path) -> RunConfig:
    return RunConfig.from_flower({**RUN, "output-dir": str(tmp_path)})


def planted_pii(cfg: RunConfig) -> set[str]:
    """Every PII value the generator planted in the run's corpus (its answer key)."""
    total = len(synthetic_corpus(cfg))
    records = generate_records(total, seed=cfg.federation.seed, zh_fraction=cfg.data.zh_fraction)
    values = {p.value for r in records for p in r.pii}
    assert len(values) > 50
    return values


def test_no_planted_pii_in_any_tokenized_batch(cfg):
    tokenizer = load_tokenizer(cfg.model)
    pii = planted_pii(cfg)
    for partition in range(cfg.federation.num_branches):
        branch = branch_settings({"partition-id": partition, "num-partitions": 2}, cfg)
        data = prepare_branch(cfg, branch, tokenizer)
        assert sum(data.pii_counts.values()) > 0
        decoded = tokenizer.batch_decode(data.train.input_ids, skip_special_tokens=True)
        for text in decoded:
            leaked = [v for v in pii if v in text]
            assert not leaked, f"PII reached a tokenized batch: {leaked}"


def test_no_planted_pii_in_the_bytes_a_branch_sends(cfg, server_task_identity):
    tokenizer = load_tokenizer(cfg.model)
    model = build_peft_model(cfg.model, 8, vocab_size=len(tokenizer))
    content = RecordDict({"arrays": arrays_to_record(adapter_arrays(model)),
                          "config": ConfigRecord({"server-round": 1})})
    msg = Message(content=content, dst_node_id=1, message_type=MessageType.TRAIN)
    context = Context(run_id=7, node_id=1, node_config={"partition-id": 0, "num-partitions": 2},
                      state=RecordDict(), run_config=cfg.to_flower())
    reply = client_app(msg, context)
    assert not reply.has_error(), reply.error
    assert reply.content["branch"]["status"] == "trained"
    # Exactly the objects Flower pushes to the SuperLink for this reply.
    wire = b"".join(obj.deflate() for obj in get_all_nested_objects(reply).values())
    assert len(wire) > 1000
    leaked = [v for v in planted_pii(cfg) if v.encode("utf-8") in wire]
    assert not leaked, f"PII in a branch's reply: {leaked}"
