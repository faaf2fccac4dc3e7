"""A branch's training data, from raw records to desensitized, tokenized tensors.

Loading goes through ``common.data.sources`` (the branch's partition in simulation:
synthetic records from the branch's own seeded stream, or its part of the
run's CSV/JSONL; its own ``data-path`` file in deployment); every text is desensitized here,
at the branch, before it is tokenized, so no planted PII reaches a batch.
Records (``task = credit | fraud``) lose their identifier columns, have their
quasi-identifiers generalized and their values masked, and only then are
serialized to text (:mod:`common.privacy.records`).  ``train.imbalance`` is applied
here too: ``oversample`` duplicates rare-class rows (no DP only),
``weighted-loss`` gives :attr:`BranchData.class_weights`, which the model's
loss takes through ``train_round(..., class_weights=...)`` (:class:`common.model.losses.TaskLoss`).
With ``audit.canaries > 0`` the branch named by ``audit.canary-branch`` also
trains on the run's planted canaries (``common.audit.canaries``; random texts that
desensitization leaves unchanged), for the server's empirical privacy audit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.audit.canaries import canaries
from common.config.files import read_labels
from common.config.run import BranchSettings, RunConfig
from common.data.corpus import Corpus
from common.data.sources import SYNTHETIC, TokenizedSet, encode_labels, label_names, load_file, partition_corpus, tokenize
from common.privacy.desensitize import Desensitizer
from common.errors import ConfigError, DataError
from common.privacy.pii import PII_TYPES
from common.tasks.spec import class_weights, oversample_indices, render_corpus

if TYPE_CHECKING:
    import torch


@dataclass
class BranchData:
    """What a branch trains on, plus what desensitization removed.

    ``class_weights``: per-label loss weights with ``train.imbalance =
    weighted-loss`` (pass them to ``client.training.train_round``), else None.
    """

    train: TokenizedSet
    labels: list[str]
    pii_counts: dict[str, int]
    class_weights: "torch.Tensor | None" = None


def branch_corpus(cfg: RunConfig, branch: BranchSettings) -> tuple[Corpus, list[str]]:
    """The branch's raw records and the run's label set."""
    if branch.data_path:
        corpus = load_file(cfg, branch.data_path)
        return corpus, label_names(cfg, corpus)
    if branch.partition_id is None:
        raise DataError(f"branch '{branch.branch_id}' has no data-path in its node config: start it with --node-config \"data-path='FILE'\"")
    return partition_corpus(cfg, branch.partition_id)  # synthetic: its own stream, O(its rows); a file: its part


def with_canaries(cfg: RunConfig, branch: BranchSettings, corpus: Corpus, names: list[str]) -> Corpus:
    """The corpus plus the run's planted canaries if this is the audit's canary branch."""
    if cfg.audit.canaries <= 0 or branch.branch_id != cfg.audit.canary_branch:
        return corpus
    if branch.data_path and cfg.data.source != SYNTHETIC and not read_labels(cfg.data.labels):
        # The server draws the canaries' labels from the run's label set; a branch that
        # takes its label set from its own file could draw different ones.
        raise ConfigError("audit.canaries with a branch data-path needs an explicit label set: set data.labels")
    planted, _ = canaries(cfg, names)
    return corpus.concat(planted)


def desensitize_corpus(corpus: Corpus, desensitizer: Desensitizer | None = None, cfg: RunConfig | None = None) -> tuple[list[str], dict[str, int]]:
    """Mask PII in every text (records: drop identifiers, generalize, mask, serialize; needs ``cfg``).

    Returns the model texts and counts per PII type.
    """
    if corpus.records is not None:
        if cfg is None:
            raise ValueError("a corpus of records needs the run config (column mapping) to be desensitized")
        return render_corpus(corpus, cfg, desensitizer)
    desensitizer = desensitizer or Desensitizer()
    totals: Counter = Counter({t: 0 for t in PII_TYPES})
    masked = []
    for text in corpus.texts:
        result = desensitizer.apply(text)
        masked.append(result.text)
        totals.update(result.counts)
    return masked, dict(totals)


def prepare_branch(cfg: RunConfig, branch: BranchSettings, tokenizer) -> BranchData:
    """Load, desensitize (records: and serialize) and tokenize the branch's training records."""
    corpus, names = branch_corpus(cfg, branch)
    if len(corpus) == 0:
        raise DataError(f"branch '{branch.branch_id}' has no rows: give it data or remove it from the federation")
    corpus = with_canaries(cfg, branch, corpus, names)
    masked, counts = desensitize_corpus(corpus, cfg=cfg)
    labels = list(corpus.labels)
    if cfg.task.imbalance == "oversample":  # check_task refused it with DP: a duplicate would count twice
        idx = oversample_indices(labels, seed=cfg.federation.seed + (branch.partition_id or 0))
        masked, labels = [masked[i] for i in idx], [labels[i] for i in idx]
    encoded = encode_labels(labels, names, where=f"branch '{branch.branch_id}'")
    return BranchData(train=tokenize(masked, encoded, tokenizer, cfg.model.max_length), labels=names, pii_counts=counts,
                      class_weights=class_weights(encoded, len(names), cfg))
