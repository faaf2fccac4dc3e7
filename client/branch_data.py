"""A branch's training data, from raw records to desensitized, tokenized tensors -- one path for every task.

:func:`prepare_branch` follows one line: the task, checked once
(:func:`common.tasks.checks.check_task`) -> the branch's corpus and the
run's label set, resolved once (:mod:`common.data.sources`,
:mod:`common.data.labels`: its partition in simulation -- synthetic records
from the branch's own seeded stream, or its part of the run's CSV/JSONL --
its own ``data-path`` file in deployment) -> the audit's canaries when this
is the canary branch (:mod:`common.audit.canary_set`) -> the one
desensitize-and-render step (:mod:`common.privacy.render`), here, at the
branch, so no planted PII reaches a batch -> tokenization
(:func:`common.tasks.examples.task_examples`).

Records (``task = credit | fraud``) lose their identifier columns, have their
quasi-identifiers generalized and their values masked, and only then are
serialized to text (:mod:`common.privacy.records`); a dialogue (``chat``) has
both its prompt and its reply masked, and its loss is on the reply tokens
only.  ``train.imbalance`` applies to the labelled tasks: ``oversample``
duplicates rare-class rows (no DP only), ``weighted-loss`` gives
:attr:`BranchData.class_weights`, which the model's loss takes through
``train_round(..., class_weights=...)`` (:class:`common.model.losses.TaskLoss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.audit.canary_set import planted_canaries
from common.config.run import BranchSettings, RunConfig
from common.data.corpus import Corpus
from common.data.files import load_file
from common.data.labels import LabelSet, resolve_labels
from common.data.sources import partition_corpus, renderer_for
from common.errors import ConfigError, DataError
from common.tasks.checks import check_task
from common.tasks.examples import task_examples
from common.tasks.spec import Task, class_weights, oversample_indices
from common.tasks.tokens import TokenizedSet

if TYPE_CHECKING:
    import torch


@dataclass
class BranchData:
    """What a branch trains on, plus what desensitization removed.

    ``labels``: the run's label names (empty for ``chat``).  ``class_weights``:
    per-label loss weights with ``train.imbalance = weighted-loss`` (pass them
    to ``client.training.train_round``), else None.
    """

    train: TokenizedSet
    task: Task
    labels: list[str]
    pii_counts: dict[str, int]
    class_weights: "torch.Tensor | None" = None


def branch_corpus(cfg: RunConfig, task: Task, branch: BranchSettings) -> tuple[Corpus, LabelSet]:
    """The branch's raw records and the run's label set (from its own file when that file gives it)."""
    if branch.data_path:
        corpus = load_file(cfg, task, branch.data_path)
        return corpus, resolve_labels(cfg, task, corpus.labels)
    if branch.partition_id is None:
        raise DataError(f"branch '{branch.branch_id}' has no data-path in its node config: start it with --node-config \"data-path='FILE'\"")
    return partition_corpus(cfg, task, branch.partition_id)  # synthetic: its own stream, O(its rows); a file: its part


def with_canaries(cfg: RunConfig, task: Task, branch: BranchSettings, corpus: Corpus, labels: LabelSet) -> Corpus:
    """The corpus plus the run's planted canaries if this is the audit's canary branch."""
    if cfg.audit.canaries <= 0 or branch.branch_id != cfg.audit.canary_branch:
        return corpus
    if task.labelled and branch.data_path and not labels.fixed:
        # The server draws the canaries' labels from the run's label set; a branch that
        # takes its label set from its own file could draw different ones.
        raise ConfigError("audit.canaries with a branch data-path needs an explicit label set: set data.labels")
    return corpus.concat(planted_canaries(cfg, task, labels))


def prepare_branch(cfg: RunConfig, branch: BranchSettings, tokenizer) -> BranchData:
    """Load, desensitize (records: and serialize; dialogues: both sides) and tokenize the branch's training examples."""
    task = check_task(cfg)
    corpus, labels = branch_corpus(cfg, task, branch)
    if len(corpus) == 0:
        raise DataError(f"branch '{branch.branch_id}' has no rows: give it data or remove it from the federation")
    corpus = with_canaries(cfg, task, branch, corpus, labels)
    rendered = renderer_for(cfg, task).render(corpus.texts, corpus.records, corpus.responses)
    encoded = weights = None
    if task.labelled:
        examples = list(corpus.labels)
        if cfg.task.imbalance == "oversample":  # check_task refused it with DP: a duplicate would count twice
            idx = oversample_indices(examples, seed=cfg.federation.seed + (branch.partition_id or 0))
            rendered.texts, examples = [rendered.texts[i] for i in idx], [examples[i] for i in idx]
        encoded = labels.encode(examples, where=f"branch '{branch.branch_id}'")
        weights = class_weights(encoded, len(labels), cfg)
    train = task_examples(task, rendered, encoded, tokenizer, cfg.model.max_length)
    return BranchData(train=train, task=task, labels=list(labels.names), pii_counts=rendered.counts, class_weights=weights)
