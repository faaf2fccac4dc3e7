"""Branch data, the core: the label set, the train/held-out split, partitioning
over branches, what each node loads, and tokenization.

Sources are the seeded synthetic generators (``data.source = "synthetic"``:
messages for ``task = intent``, applicants for ``credit``, transactions for
``fraud``) or a user's CSV/JSONL with the columns named in config: the text
column (intent) or the record's field columns (credit, fraud; every column
but the label by default), and the label column.  Everything here is
deterministic for a seed, so every node derives the same data without
talking to the others.  Two modules do the source-specific work:

* :mod:`common.data.files` reads a CSV/JSONL file (:func:`load_file` applies
  the run's column mapping);
* :mod:`common.data.synthetic.streams` makes the seeded synthetic records, one
  random stream per node.

The raw corpus type, :class:`common.data.corpus.Corpus`, sits below all three.

* **Synthetic, in simulation**: a node makes only what it uses.  Branch ``p``'s
  records come from its own random stream, derived from ``(seed, p)``
  (:func:`common.data.synthetic.streams.synthetic_branch`), and the server's held-out
  set from a stream of its own (:func:`synthetic_held_out`), so a branch's
  data costs O(its own size) whatever ``num-branches`` is.  A branch's size
  and label mix follow the marginals of the Dirichlet partition
  :func:`partition` makes of a fixed corpus
  (:func:`common.data.synthetic.streams.synthetic_branch_labels`); the held-out set is
  ``data.test-fraction`` of the corpus the federation's records would make,
  at most :data:`common.data.synthetic.streams.HELD_OUT_CAP` rows
  (:func:`common.data.synthetic.streams.held_out_size`).
* **CSV/JSONL** (a fixed corpus): every node loads the same file, splits it
  train/held-out and partitions the training rows over ``num-branches``
  (:func:`file_split`); the parsed file and its split are kept per process,
  one file at a time, so a worker that trains many branches parses it once.
  In deployment a branch reads only its own file (``data-path`` in its node
  config).

Desensitization (and, for records, serialization to text: :mod:`common.privacy.records`)
happens between loading and tokenization, at the branch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.config.files import read_labels
from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.data.files import check_file, load_records, load_table
from common.data.synthetic.streams import rows_corpus, synthetic_branch, synthetic_held_out_rows
from common.errors import DataError

if TYPE_CHECKING:
    import torch

SYNTHETIC = "synthetic"


@dataclass
class TokenizedSet:
    """Tokenized examples ready for a model."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def as_dataset(self) -> torch.utils.data.TensorDataset:
        """A ``TensorDataset`` of (input_ids, attention_mask, labels)."""
        import torch.utils.data

        return torch.utils.data.TensorDataset(self.input_ids, self.attention_mask, self.labels)

    def batches(self, batch_size: int, device) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(input_ids, attention_mask, labels)`` in order, each batch cut by :func:`trim_padding`, on ``device``."""
        for start in range(0, len(self), batch_size):
            sl = slice(start, start + batch_size)
            cut = trim_padding(self.input_ids[sl], self.attention_mask[sl], self.labels[sl])
            yield tuple(t.to(device) for t in cut)


def label_names(cfg: RunConfig, corpus: Corpus | None = None) -> list[str]:
    """The run's label set, identical on every node.

    Binary tasks (credit, fraud): ``[negative, positive]`` (see
    :func:`common.tasks.spec.binary_label_names`).  Intent: ``data.labels`` if
    given; the generator's intents for synthetic data; else the sorted labels
    found in ``corpus``.
    """
    from common.tasks.spec import binary_label_names, task_of

    task = task_of(cfg)
    if task.binary:
        if cfg.data.source == SYNTHETIC and not read_labels(cfg.data.labels):
            return list(task.synthetic_labels)
        if corpus is None and not read_labels(cfg.data.labels):
            raise DataError("data.labels is empty and there is no corpus to read labels from: set data.labels")
        return binary_label_names(cfg, corpus.labels if corpus is not None else None)
    explicit = read_labels(cfg.data.labels)
    if explicit:
        return explicit
    if cfg.data.source == SYNTHETIC:
        from common.data.synthetic.messages import INTENTS

        return list(INTENTS)
    if corpus is None:
        raise DataError("data.labels is empty and there is no corpus to read labels from: set data.labels")
    return sorted(set(corpus.labels))


def load_file(cfg: RunConfig, path: str | Path) -> Corpus:
    """A CSV/JSONL file read with the run's column mapping (texts for intent, records for credit/fraud)."""
    from common.tasks.spec import check_task, task_of

    check_task(cfg)
    if not task_of(cfg).tabular:
        return load_table(path, cfg.data.text_column, cfg.data.label_column, cfg.data.max_rows)
    named = {c: "data.field-columns" for c in cfg.task.field_list or ()}
    named.update({c: "data.id-columns" for c in cfg.task.id_list})
    named.update({c: "data.quasi-columns" for c in (cfg.task.quasi_rules or {})})
    return load_records(path, cfg.data.label_column, named, cfg.data.max_rows)


def train_test_split(n: int, test_fraction: float, seed: int, stratify: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into train and held-out indices.

    With ``stratify`` (the labels; used for the binary tasks) the split keeps
    each label's share in both parts (scikit-learn's stratified split), so a
    1 % fraud class still reaches the held-out set; it falls back to the plain
    split when a label has fewer than two rows.
    """
    n_test = max(1, int(round(n * test_fraction)))
    if stratify is not None:
        counts = np.unique(np.asarray(stratify), return_counts=True)[1]
        if len(counts) > 1 and counts.min() >= 2 and len(counts) <= n_test <= n - len(counts):
            from sklearn.model_selection import StratifiedShuffleSplit

            splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_test, random_state=seed % (2**32))
            train, test = next(splitter.split(np.zeros(n), np.asarray(stratify)))
            return np.sort(train), np.sort(test)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def partition(labels: list[str], num_parts: int, method: str, alpha: float, seed: int, min_size: int = 2) -> list[np.ndarray]:
    """Split example indices over ``num_parts`` branches, of unequal sizes.

    ``iid``: a random permutation cut at Dirichlet(5)-distributed sizes.
    ``dirichlet``: for each label, its examples are spread over branches in
    Dirichlet(alpha) proportions (label skew, the usual non-IID benchmark).
    Retries with the next seed until every branch has ``min_size`` examples.
    """
    n = len(labels)
    if n < num_parts * min_size:
        raise DataError(f"{n} training examples cannot give each of {num_parts} branches {min_size} rows (a branch would be empty or nearly so): use fewer branches (--branches / num-branches) or more data")
    y = np.asarray(labels)
    for attempt in range(200):
        rng = np.random.default_rng(seed + 7919 * attempt)
        if method == "iid":
            props = rng.dirichlet(np.full(num_parts, 5.0))
            cuts = (np.cumsum(props)[:-1] * n).astype(int)
            parts = np.split(rng.permutation(n), cuts)
        else:
            buckets: list[list[int]] = [[] for _ in range(num_parts)]
            for label in np.unique(y):
                idx = rng.permutation(np.flatnonzero(y == label))
                cuts = (np.cumsum(rng.dirichlet(np.full(num_parts, alpha)))[:-1] * len(idx)).astype(int)
                for b, chunk in enumerate(np.split(idx, cuts)):
                    buckets[b].extend(chunk.tolist())
            parts = [np.asarray(b, dtype=int) for b in buckets]
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(p) for p in parts]
    raise DataError(f"could not partition {n} examples over {num_parts} branches with at least {min_size} each: raise data.dirichlet-alpha or use fewer branches")


# --------------------------------------------------------------------------- synthetic corpora (records: common.data.synthetic.streams)


def synthetic_held_out(cfg: RunConfig) -> Corpus:
    """The server's synthetic held-out corpus.

    Raises:
        DataError: a binary task's held-out set lacks a class (a held-out set of one row).
    """
    test = rows_corpus(cfg, synthetic_held_out_rows(cfg))
    _check_binary_held_out(cfg, test, label_names(cfg))
    return test


def _concat_all(corpora: list[Corpus], records: bool) -> Corpus:
    texts = [t for c in corpora for t in c.texts]
    labels = [label for c in corpora for label in c.labels]
    if not records:
        return Corpus(texts, labels)
    return Corpus(texts, labels, [r for c in corpora for r in (c.records if c.records is not None else [None] * len(c))])


def synthetic_corpus(cfg: RunConfig) -> Corpus:
    """Every simulated branch's synthetic records (branch 0 first), then the held-out set.

    O(num-branches): for tools that need the whole federation at once; a node
    makes only its own part (:func:`partition_corpus`, :func:`holdout_corpus`).
    """
    train, test, _, _ = simulation_split(cfg)
    return _concat_all([train, test], records=train.records is not None)


# --------------------------------------------------------------------------- a fixed corpus (CSV/JSONL)

# (key, (train, held-out, parts, names)) of the last file split in this process: one entry, so memory stays bounded.
_FILE_SPLIT: tuple[tuple, tuple] | None = None


def file_split(cfg: RunConfig) -> tuple[Corpus, Corpus, list[np.ndarray], list[str]]:
    """(train, held-out, per-branch train indices, label names) of the CSV/JSONL ``data.source``.

    Cached per process, one file at a time, keyed by the file's content
    (SHA-256) and every setting the split depends on: a Ray worker that trains
    many branches parses and splits the file once.  The returned corpora are
    shared: treat them as read-only (``subset`` makes copies).
    """
    global _FILE_SPLIT
    from common.tasks.spec import check_task, task_of

    check_task(cfg)
    path = check_file(cfg.data.source)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise DataError(f"cannot read data file '{path}': {err.strerror or err}; check that it is a readable file") from err
    fed = cfg.federation
    key = (str(path.resolve()), digest, cfg.data, cfg.task, fed.seed, fed.num_branches, tuple(read_labels(cfg.data.labels) or ()))
    if _FILE_SPLIT is not None and _FILE_SPLIT[0] == key:
        return _FILE_SPLIT[1]
    _FILE_SPLIT = None  # let the previous corpus go before loading this one
    corpus = load_file(cfg, path)
    names = label_names(cfg, corpus)
    binary = task_of(cfg).binary
    train_idx, test_idx = train_test_split(len(corpus), cfg.data.test_fraction, fed.seed,
                                           stratify=corpus.labels if binary else None)
    train, test = corpus.subset(train_idx), corpus.subset(test_idx)
    _check_binary_held_out(cfg, test, names)
    parts = partition(train.labels, fed.num_branches, cfg.data.partition, cfg.data.dirichlet_alpha, fed.seed)
    value = (train, test, parts, names)
    _FILE_SPLIT = (key, value)
    return value


def _check_binary_held_out(cfg: RunConfig, test: Corpus, names: list[str]) -> None:
    from common.tasks.spec import task_of

    if task_of(cfg).binary and not set(names) <= set(test.labels):
        missing = sorted(set(names) - set(test.labels))
        raise DataError(f"the held-out evaluation set has no {missing[0]!r} rows ({len(test)} rows held out), so ROC/PR "
                        "metrics cannot be computed: use more data (data.records-per-branch for synthetic) or raise data.test-fraction")


# --------------------------------------------------------------------------- what each node loads


def load_corpus(cfg: RunConfig) -> Corpus:
    """The full corpus named by ``data.source`` (synthetic: :func:`synthetic_corpus`, the whole federation)."""
    if cfg.data.source == SYNTHETIC:
        return synthetic_corpus(cfg)
    return load_file(cfg, cfg.data.source)


def partition_corpus(cfg: RunConfig, partition_id: int) -> tuple[Corpus, list[str]]:
    """Simulated branch ``partition_id``'s training records and the run's label set.

    Synthetic: made from the branch's own stream (O(its rows)); a file: its
    part of the (cached) split.

    Raises:
        DataError: ``partition_id`` is not below ``num-branches``, or as :func:`simulation_split`.
    """
    n_branches = cfg.federation.num_branches
    if not 0 <= partition_id < n_branches:
        raise DataError(f"partition-id {partition_id} but num-branches is {n_branches}: set num-branches to the number of SuperNodes")
    if cfg.data.source == SYNTHETIC:
        from common.tasks.spec import check_task

        check_task(cfg)
        return synthetic_branch(cfg, partition_id), label_names(cfg)
    train, _, parts, names = file_split(cfg)
    return train.subset(parts[partition_id]), names


def holdout_corpus(cfg: RunConfig) -> tuple[Corpus, list[str]]:
    """The server's held-out corpus and the run's label set.

    Synthetic: made from its own stream
    (:func:`common.data.synthetic.streams.held_out_size` rows, whatever
    ``num-branches``); a file: the held-out part of the (cached) split.

    Raises:
        DataError: a label is outside the run's label set, or (a file) a
            held-out label occurs in no training row: its metrics would mean nothing.
    """
    if cfg.data.source == SYNTHETIC:
        from common.tasks.spec import check_task

        check_task(cfg)
        names = label_names(cfg)
        test = synthetic_held_out(cfg)
        check_label_coverage(Corpus([], []), test, names, require_trained=False)
        return test, names
    train, test, _, names = file_split(cfg)
    check_label_coverage(train, test, names, require_trained=True)
    return test, names


def simulation_split(cfg: RunConfig) -> tuple[Corpus, Corpus, list[np.ndarray], list[str]]:
    """The whole simulated federation: (train corpus, held-out corpus, per-branch train indices, label names).

    For tools that need every branch at once (deployment's per-branch files,
    preflight checks, tests): branch ``p``'s rows are ``train.subset(parts[p])``,
    equal to :func:`partition_corpus`'s.  Synthetic: O(num-branches) -- every
    branch's stream, concatenated in order; a file: :func:`file_split`.
    """
    if cfg.data.source != SYNTHETIC:
        return file_split(cfg)
    from common.tasks.spec import check_task

    check_task(cfg)
    names = label_names(cfg)
    branches = [synthetic_branch(cfg, p) for p in range(cfg.federation.num_branches)]
    test = synthetic_held_out(cfg)
    parts, start = [], 0
    for corpus in branches:
        parts.append(np.arange(start, start + len(corpus)))
        start += len(corpus)
    return _concat_all(branches, records=cfg.task.name != "intent"), test, parts, names


def check_label_coverage(train: Corpus, test: Corpus, names: list[str], require_trained: bool = True) -> None:
    """Every label is in the run's label set, and (``require_trained``) every
    held-out label occurs in the training data.

    Raises:
        DataError: naming the first offending label and the fix.
    """
    known = set(names)
    for where, corpus in (("training data", train), ("held-out evaluation set", test)):
        unknown = sorted(set(corpus.labels) - known)
        if unknown:
            raise DataError(f"label {_show_labels(unknown)} in the {where} is not in the run's label set: add it to data.labels or remove its rows")
    unseen = sorted(set(test.labels) - set(train.labels)) if require_trained else []
    if unseen:
        unseen_set = set(unseen)
        count = sum(1 for label in test.labels if label in unseen_set)
        raise DataError(
            f"label {_show_labels(unseen)} is in the held-out evaluation set ({count} row(s)) but in no training row: "
            "add training rows with that label, remove its rows, or change seed / data.test-fraction"
        )


def _show_labels(labels: list[str]) -> str:
    shown = ", ".join(repr(label) for label in labels[:5])
    return shown + (f" (and {len(labels) - 5} more)" if len(labels) > 5 else "")


def encode_labels(labels: list[str], names: list[str], where: str) -> torch.Tensor:
    """Label strings to indices; an unknown label is a DataError naming it."""
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"{where}: label(s) {unknown[:5]} are not in the run's label set; add them to data.labels")
    import torch  # lazily: loading and checking data needs no torch

    return torch.tensor([index[l] for l in labels], dtype=torch.long)


def trim_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor):
    """A batch without its trailing columns that are padding in every row.

    Exact for any model whose outputs at real positions ignore masked later
    positions (a bidirectional encoder with its attention mask, a causal
    LM): sets are padded to ``model.max-length``, most messages are much
    shorter, and the cost of a step grows with the padded length.  Token
    labels (a causal LM's, 2-D) are cut with the inputs.
    """
    used = attention_mask.any(dim=0).nonzero()
    length = int(used[-1]) + 1 if len(used) else 1
    if length >= input_ids.shape[1]:
        return input_ids, attention_mask, labels
    if labels.dim() == 2:
        labels = labels[:, :length]
    return input_ids[:, :length], attention_mask[:, :length], labels


def tokenize(texts: list[str], labels: torch.Tensor, tokenizer, max_length: int) -> TokenizedSet:
    """Tokenize (pad and truncate to ``max_length``)."""
    enc = tokenizer(texts, max_length=max_length, padding="max_length", truncation=True, return_tensors="pt")
    return TokenizedSet(enc["input_ids"], enc["attention_mask"], labels)


def corpus_table(corpus: Corpus, text_column: str, label_column: str) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` that :func:`load_file` reads back as ``corpus`` (for writing a branch's own file).

    A text corpus gives ``[text_column, label_column]``; a record corpus its
    record columns (in first-seen order) then ``label_column``.
    """
    if corpus.records is None:
        return [text_column, label_column], [[t or "", l] for t, l in zip(corpus.texts, corpus.labels)]
    columns: list[str] = []
    for record in corpus.records:
        for column in record or {}:
            if column not in columns and column != label_column:
                columns.append(column)
    rows = [[(record or {}).get(c, "") for c in columns] + [label] for record, label in zip(corpus.records, corpus.labels)]
    return columns + [label_column], rows
