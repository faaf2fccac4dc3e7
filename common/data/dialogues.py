"""The ``chat`` task's dialogues: loading, the train/held-out split, partitioning, desensitization.

Dialogues come from the seeded generator (``data.source = "synthetic"``,
:mod:`common.data.synthetic.dialogues`: Chinese and English customer-service
exchanges with PII planted on both sides) or from a user's CSV/JSONL with the
customer's message in ``data.prompt-column`` and the agent's reply in
``data.response-column``.  A topic column (``data.label-column``, optional
in a file) only steers the non-IID partition (Dirichlet over topics); the
model never sees it.  Both sides are desensitized at the branch before
tokenization (:func:`desensitize_dialogues`).

Simulated branches get their dialogues exactly as the classification tasks
get their records (:mod:`common.data.sources`, :mod:`common.data.synthetic.streams`):
synthetic ones from the branch's own seeded stream with its Dirichlet topic
mix (cost O(its own rows), whatever ``num-branches``), the held-out set from
a stream of its own (capped at :data:`common.data.synthetic.streams.HELD_OUT_CAP`); a
file is split and partitioned with the same seeded functions, so every node
derives the same parts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.config.run import RunConfig
from common.data.sources import SYNTHETIC, partition, train_test_split
from common.data.files import load_records
from common.data.synthetic.streams import derived_stream, held_out_size, synthetic_branch_labels, synthetic_held_out_labels
from common.errors import DataError


@dataclass
class ChatCorpus:
    """Raw dialogues: the customer's messages, the agent's replies, and a topic per dialogue ('' if unknown)."""

    prompts: list[str]
    responses: list[str]
    topics: list[str]

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx) -> "ChatCorpus":
        """The dialogues at positions ``idx``."""
        return ChatCorpus([self.prompts[i] for i in idx], [self.responses[i] for i in idx], [self.topics[i] for i in idx])

    def concat(self, other: "ChatCorpus") -> "ChatCorpus":
        return ChatCorpus(self.prompts + other.prompts, self.responses + other.responses, self.topics + other.topics)


def load_dialogues(cfg: RunConfig, path: str | Path) -> ChatCorpus:
    """A CSV/JSONL file of dialogues read with the run's column mapping.

    Raises:
        DataError: the file or a column is missing, a row has an empty reply, or there are no rows.
    """
    t = cfg.task
    if t.prompt_column == t.response_column:
        raise DataError(f"data.prompt-column and data.response-column are both '{t.prompt_column}': "
                        "name the customer's message and the agent's reply columns")
    corpus = load_records(path, t.response_column, {t.prompt_column: "data.prompt-column", t.response_column: "data.response-column"},
                          cfg.data.max_rows)
    topic = cfg.data.label_column
    prompts = [(r or {}).get(t.prompt_column, "") for r in corpus.records]
    return ChatCorpus(prompts, list(corpus.labels), [(r or {}).get(topic, "") for r in corpus.records])


def _dialogues(rows) -> ChatCorpus:
    return ChatCorpus([d.prompt for d in rows], [d.response for d in rows], [d.topic for d in rows])


def synthetic_branch_dialogues(cfg: RunConfig, partition_id: int) -> ChatCorpus:
    """Branch ``partition_id``'s generated dialogues, from its own stream (see :func:`common.data.synthetic.streams.synthetic_branch_labels`)."""
    from common.data.synthetic.dialogues import generate_labelled_dialogues

    rng = derived_stream(cfg.federation.seed, "branch", int(partition_id))
    return _dialogues(generate_labelled_dialogues(synthetic_branch_labels(cfg, rng), rng, cfg.data.zh_fraction))


def synthetic_held_out_dialogues(cfg: RunConfig) -> ChatCorpus:
    """The server's generated held-out dialogues (:func:`common.data.synthetic.streams.held_out_size` of them), from their own stream."""
    from common.data.synthetic.dialogues import generate_labelled_dialogues

    rng = derived_stream(cfg.federation.seed, "held-out")
    topics = synthetic_held_out_labels(cfg, held_out_size(cfg), rng)
    return _dialogues(generate_labelled_dialogues(topics, rng, cfg.data.zh_fraction))


def file_split(cfg: RunConfig) -> tuple[ChatCorpus, ChatCorpus, list[np.ndarray]]:
    """A dialogue file's (train, held-out, per-branch train indices); seeded, identical on every node."""
    corpus = load_dialogues(cfg, cfg.data.source)
    train_idx, test_idx = train_test_split(len(corpus), cfg.data.test_fraction, cfg.federation.seed)
    train, test = corpus.subset(train_idx), corpus.subset(test_idx)
    parts = partition(train.topics, cfg.federation.num_branches, cfg.data.partition, cfg.data.dirichlet_alpha, cfg.federation.seed)
    return train, test, parts


def partition_dialogues(cfg: RunConfig, partition_id: int) -> ChatCorpus:
    """Simulated branch ``partition_id``'s training dialogues."""
    if partition_id >= cfg.federation.num_branches:
        raise DataError(f"partition-id {partition_id} but num-branches is {cfg.federation.num_branches}: "
                        "set num-branches to the number of SuperNodes")
    if cfg.data.source == SYNTHETIC:
        return synthetic_branch_dialogues(cfg, partition_id)
    train, _, parts = file_split(cfg)
    return train.subset(parts[partition_id])


def held_out_dialogues(cfg: RunConfig) -> ChatCorpus:
    """The server's held-out dialogues."""
    return synthetic_held_out_dialogues(cfg) if cfg.data.source == SYNTHETIC else file_split(cfg)[1]


def desensitize_dialogues(corpus: ChatCorpus, desensitizer=None) -> tuple[list[str], list[str], dict[str, int]]:
    """Masked prompts, masked replies, and the PII counts of both sides together."""
    from common.privacy.desensitize import Desensitizer
    from common.privacy.pii import PII_TYPES

    desensitizer = desensitizer or Desensitizer()
    totals: Counter = Counter({t: 0 for t in PII_TYPES})
    sides = []
    for texts in (corpus.prompts, corpus.responses):
        masked = []
        for text in texts:
            result = desensitizer.apply(text)
            masked.append(result.text)
            totals.update(result.counts)
        sides.append(masked)
    return sides[0], sides[1], dict(totals)


def dialogue_table(corpus: ChatCorpus, cfg: RunConfig) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` that :func:`load_dialogues` reads back as ``corpus`` (a branch's own file in deployment)."""
    header = [cfg.task.prompt_column, cfg.task.response_column, cfg.data.label_column]
    return header, [[p, r, t] for p, r, t in zip(corpus.prompts, corpus.responses, corpus.topics)]
