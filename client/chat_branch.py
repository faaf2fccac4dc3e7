"""A branch's ``chat`` training data: its dialogues, desensitized on both sides, tokenized for SFT.

The generative counterpart of :func:`client.branch_data.prepare_branch`:
the branch's partition in simulation or its own ``data-path`` file in
deployment (:mod:`common.data.dialogues`), the audit's reply canaries when this is
the canary branch (:mod:`common.audit.reply_canaries`), every prompt and reply
desensitized here, at the branch, then tokenized with the loss on the reply
tokens only (:func:`common.tasks.chat.tokenize_dialogues`).
"""

from __future__ import annotations

from client.branch_data import BranchData
from common.tasks.chat import tokenize_dialogues
from common.audit.reply_canaries import with_reply_canaries
from common.data.dialogues import ChatCorpus, desensitize_dialogues, load_dialogues, partition_dialogues
from common.config.run import BranchSettings, RunConfig
from common.errors import DataError


def branch_dialogues(cfg: RunConfig, branch: BranchSettings) -> ChatCorpus:
    """The branch's raw dialogues: its own file, or its partition of the simulated federation's."""
    if branch.data_path:
        return load_dialogues(cfg, branch.data_path)
    if branch.partition_id is None:
        raise DataError(f"branch '{branch.branch_id}' has no data-path in its node config: start it with --node-config \"data-path='FILE'\"")
    return partition_dialogues(cfg, branch.partition_id)  # synthetic: its own stream, O(its rows); a file: its part


def prepare_chat_branch(cfg: RunConfig, branch: BranchSettings, tokenizer) -> BranchData:
    """Load, desensitize (prompt and reply) and tokenize the branch's dialogues."""
    corpus = branch_dialogues(cfg, branch)
    if len(corpus) == 0:
        raise DataError(f"branch '{branch.branch_id}' has no rows: give it data or remove it from the federation")
    if branch.branch_id == cfg.audit.canary_branch:
        corpus = with_reply_canaries(cfg, corpus)
    prompts, replies, counts = desensitize_dialogues(corpus)
    return BranchData(train=tokenize_dialogues(prompts, replies, tokenizer, cfg.model.max_length), labels=[], pii_counts=counts)
