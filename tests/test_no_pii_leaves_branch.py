"""No PII planted in a branch's raw records reaches a tokenized batch or a message the branch sends."""

from __future__ import annotations

import pytest
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from client.branch_data import prepare_branch
from common.config.run import RunConfig, branch_settings
from common.data.sources import synthetic_corpus
from common.data.synthetic.streams import synthetic_branch_rows, synthetic_held_out_rows
from common.wire.envelope import open_update
from common.model.build import load_tokenizer
from tests.branch_calls import call_branch, claim_of, make_keys, train_message

RUN = {"num-server-rounds": 1, "num-branches": 2, "data.records-per-branch": 40, "model.max-length": 160,
       "train.batch-size": 8, "data.zh-fraction": 0.5}


@pytest.fixture()
def cfg(tmp_path) -> RunConfig:
    return RunConfig.from_flower({**RUN, "output-dir": str(tmp_path)})


def planted_pii(cfg: RunConfig) -> set[str]:
    """Every PII value the generator planted in the run's data (its answer key): every branch's and the held-out set's."""
    records = [r for p in range(cfg.federation.num_branches) for r in synthetic_branch_rows(cfg, p)]
    records += synthetic_held_out_rows(cfg)
    assert [r.text for r in records] == synthetic_corpus(cfg).texts  # the answer key is of exactly these records
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


def test_no_planted_pii_and_no_plaintext_adapter_in_the_bytes_a_branch_sends(cfg, server_task_identity):
    keys = make_keys(cfg, 2)
    reply = call_branch(cfg, train_message(cfg, 1))
    assert not reply.has_error(), reply.error
    assert claim_of(reply)["status"] == "trained"
    # Exactly the objects Flower pushes to the SuperLink for this reply.
    wire = b"".join(obj.deflate() for obj in get_all_nested_objects(reply).values())
    assert len(wire) > 1000
    leaked = [v for v in planted_pii(cfg) if v.encode("utf-8") in wire]
    assert not leaked, f"PII in a branch's reply: {leaked}"
    # The update is only inside the envelope: open it as the server does, then look for its bytes in the wire.
    opened = open_update(reply.content["envelope"]["update"], expected_run_id=9, expected_round=1,
                         server_private_key=keys.decrypt_key, branch_verify_keys=keys.branch_keys)
    for name, array in opened.arrays.items():
        raw = array.tobytes()
        for start in range(0, max(len(raw) - 32, 1), max(len(raw) // 8, 1)):
            chunk = raw[start:start + 32]
            if len(chunk) == 32 and len(set(chunk)) > 4:
                assert chunk not in wire, f"plaintext bytes of {name} in the reply"
