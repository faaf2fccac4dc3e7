"""Calling the real ClientApp in-process, with messages built by the real server code."""

from __future__ import annotations

import json

from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

from client.app import app as client_app
from common.config.run import RunConfig
from common.wire.global_envelope import sign_global
from common.keys.provision import init_keys
from common.model.build import build_peft_model, load_tokenizer
from common.model.adapter import adapter_arrays
from common.wire.protocol import arrays_to_record
from server.records.keyring import ServerKeys


def make_keys(cfg: RunConfig, num_branches: int) -> ServerKeys:
    """Keys for branch-0..N-1 in the run's key directory; the server's view of them."""
    init_keys(cfg.keys_dir, [f"branch-{i}" for i in range(num_branches)])
    return ServerKeys.load(cfg.keys_dir)


def initial_arrays(cfg: RunConfig, num_labels: int = 8) -> dict:
    tok = load_tokenizer(cfg.model)
    return adapter_arrays(build_peft_model(cfg.model, num_labels, vocab_size=len(tok)))


def train_message(cfg: RunConfig, server_round: int, run_id: int = 9, arrays: dict | None = None) -> Message:
    """The message the server sends a branch to train ``server_round`` (signed when the envelope is on)."""
    arrays = arrays if arrays is not None else initial_arrays(cfg)
    config = ConfigRecord({"server-round": server_round, "run-id": run_id})
    if cfg.security.envelope:
        blob = sign_global(arrays, run_id=run_id, server_round=server_round,
                           server_signing_key=ServerKeys.load(cfg.keys_dir).signing_key)
        content = RecordDict({"config": config, "envelope": ConfigRecord({"global": blob})})
    else:
        content = RecordDict({"config": config, "arrays": arrays_to_record(arrays)})
    return Message(content=content, dst_node_id=1, message_type=MessageType.TRAIN)


def call_branch(cfg: RunConfig, msg: Message, partition: int = 0, num_partitions: int = 2,
                node_config: dict | None = None) -> Message:
    """One fresh ClientApp invocation (as after a process restart: only disk state carries over).

    ``node_config`` replaces the simulated partition with a deployed branch's node config.
    """
    node = node_config if node_config is not None else {"partition-id": partition, "num-partitions": num_partitions}
    ctx = Context(run_id=7, node_id=1, node_config=node, state=RecordDict(), run_config=cfg.to_flower())
    return client_app(msg, ctx)


def claim_of(reply: Message) -> dict:
    """The privacy claim a reply carries."""
    return json.loads(reply.content["branch"]["claim"])
