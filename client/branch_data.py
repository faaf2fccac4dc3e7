"""A branch's training data, from raw records to desensitized, tokenized tensors.

Loading goes through ``common.data`` (the branch's partition in simulation,
its own ``data-path`` file in deployment); every text is desensitized here,
at the branch, before it is tokenized, so no planted PII reaches a batch.
With ``audit.canaries > 0`` the branch named by ``audit.canary-branch`` also
trains on the run's planted canaries (``common.canary``; random texts that
desensitization leaves unchanged), for the server's empirical privacy audit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from common.canary import canaries
from common.config import BranchSettings, RunConfig, read_labels
from common.data import SYNTHETIC, Corpus, TokenizedSet, encode_labels, load_table, label_names, simulation_split, tokenize
from common.desensitize import Desensitizer
from common.errors import ConfigError, DataError
from common.pii import PII_TYPES


@dataclass
class BranchData:
    """What a branch trains on, plus what desensitization removed."""

    train: TokenizedSet
    labels: list[str]
    pii_counts: dict[str, int]


def branch_corpus(cfg: RunConfig, branch: BranchSettings) -> tuple[Corpus, list[str]]:
    """The branch's raw records and the run's label set."""
    if branch.data_path:
        corpus = load_table(branch.data_path, cfg.data.text_column, cfg.data.label_column, cfg.data.max_rows)
        return corpus, label_names(cfg, corpus)
    if branch.partition_id is None:
        raise DataError(f"branch '{branch.branch_id}' has no data-path in its node config: start it with --node-config \"data-path='FILE'\"")
    train, _, parts, names = simulation_split(cfg)
    if branch.partition_id >= len(parts):
        raise DataError(f"partition-id {branch.partition_id} but num-branches is {len(parts)}: set num-branches to the number of SuperNodes")
    return train.subset(parts[branch.partition_id]), names


def with_canaries(cfg: RunConfig, branch: BranchSettings, corpus: Corpus, names: list[str]) -> Corpus:
    """The corpus plus the run's planted canaries if this is the audit's canary branch."""
    if cfg.audit.canaries <= 0 or branch.branch_id != cfg.audit.canary_branch:
        return corpus
    if branch.data_path and cfg.data.source != SYNTHETIC and not read_labels(cfg.data.labels):
        # The server draws the canaries' labels from the run's label set; a branch that
        # takes its label set from its own file could draw different ones.
        raise ConfigError("audit.canaries with a branch data-path needs an explicit label set: set data.labels")
    planted, _ = canaries(cfg, names)
    return Corpus(corpus.texts + planted.texts, corpus.labels + planted.labels)


def desensitize_corpus(corpus: Corpus, desensitizer: Desensitizer | None = None) -> tuple[list[str], dict[str, int]]:
    """Mask PII in every text; return masked texts and counts per PII type."""
    desensitizer = desensitizer or Desensitizer()
    totals: Counter = Counter({t: 0 for t in PII_TYPES})
    masked = []
    for text in corpus.texts:
        result = desensitizer.apply(text)
        masked.append(result.text)
        totals.update(result.counts)
    return masked, dict(totals)


def prepare_branch(cfg: RunConfig, branch: BranchSettings, tokenizer) -> BranchData:
    """Load, desensitize and tokenize the branch's training records."""
    corpus, names = branch_corpus(cfg, branch)
    if len(corpus) == 0:
        raise DataError(f"branch '{branch.branch_id}' has no rows: give it data or remove it from the federation")
    corpus = with_canaries(cfg, branch, corpus, names)
    masked, counts = desensitize_corpus(corpus)
    labels = encode_labels(corpus.labels, names, where=f"branch '{branch.branch_id}'")
    return BranchData(train=tokenize(masked, labels, tokenizer, cfg.model.max_length), labels=names, pii_counts=counts)
