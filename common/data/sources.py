"""What each node loads: a simulated branch's training corpus, the server's held-out corpus, the whole federation.

Sources are the seeded synthetic generators (``data.source = "synthetic"``:
messages for ``task = intent``, applicants for ``credit``, transactions for
``fraud``, dialogues for ``chat``) or a user's CSV/JSONL read with the run's
column mapping (:func:`common.data.files.load_file`).  Every task goes
through the same functions here, with one :class:`~common.data.corpus.Corpus`
type.  Everything is deterministic for a seed, so every node derives the
same data without talking to the others.

* **Synthetic, in simulation**: a node makes only what it uses.  Branch ``p``'s
  records come from its own random stream, derived from ``(seed, p)``
  (:func:`common.data.synthetic.streams.synthetic_branch`), and the server's
  held-out set from a stream of its own (:func:`synthetic_held_out`), so a
  branch's data costs O(its own size) whatever ``num-branches`` is.  A
  branch's size and label mix follow the marginals of the Dirichlet partition
  :func:`common.data.split.partition` makes of a fixed corpus
  (:func:`common.data.synthetic.streams.synthetic_branch_labels`); the
  held-out set is ``data.test-fraction`` of the corpus the federation's
  records would make, at most :data:`common.data.synthetic.streams.HELD_OUT_CAP`
  rows (:func:`common.data.synthetic.streams.held_out_size`).
* **CSV/JSONL** (a fixed corpus): every node loads the same file, splits it
  train/held-out and partitions the training rows over ``num-branches``
  (:func:`file_split`); the parsed file and its split are kept per process,
  one file at a time, so a worker that trains many branches parses it once.
  In deployment a branch reads only its own file (``data-path`` in its node
  config).

The functions here take the checked task (:func:`common.tasks.checks.check_task`)
and return the label set they resolved (:mod:`common.data.labels`) with the
corpus, once; the tools' entry points (:func:`simulation_split`,
:func:`load_corpus`) run the task checks themselves.  Desensitization (and,
for records, serialization to text) happens between loading and
tokenization, at the branch and for the server's held-out set alike, with
the renderer of :func:`renderer_for`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.data.files import check_file, load_file
from common.data.labels import LabelSet, check_binary_held_out, check_label_coverage, resolve_labels
from common.data.split import partition, train_test_split
from common.data.synthetic.streams import SYNTHETIC, generator_id_columns, rows_corpus, synthetic_branch, synthetic_held_out_rows
from common.errors import DataError
from common.privacy.records import pipeline_for
from common.privacy.render import Renderer
from common.tasks.checks import check_task
from common.tasks.spec import Task


@dataclass(frozen=True)
class FileSplit:
    """A data file's seeded split: training rows, held-out rows, each branch's training indices, the label set."""

    train: Corpus
    test: Corpus
    parts: list[np.ndarray]
    labels: LabelSet


def renderer_for(cfg: RunConfig, task: Task) -> Renderer:
    """The desensitize-and-render step of the run: the record pipeline for credit/fraud (with the generator's identifiers)."""
    if not task.tabular:
        return Renderer()
    extra = generator_id_columns(task) if cfg.data.source == SYNTHETIC else ()
    return Renderer(pipeline_for(cfg, extra))


# --------------------------------------------------------------------------- a fixed corpus (CSV/JSONL)

# (key, split) of the last file split in this process: one entry, so memory stays bounded.
_FILE_SPLIT: tuple[tuple, FileSplit] | None = None


def file_split(cfg: RunConfig, task: Task) -> FileSplit:
    """The split of the CSV/JSONL ``data.source``, its label set read from the whole file when ``data.labels`` is empty.

    Cached per process, one file at a time, keyed by the file's content
    (SHA-256) and every setting the split depends on: a Ray worker that trains
    many branches parses and splits the file once.  The returned corpora are
    shared: treat them as read-only (``subset`` makes copies).
    """
    global _FILE_SPLIT
    path = check_file(cfg.data.source)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise DataError(f"cannot read data file '{path}': {err.strerror or err}; check that it is a readable file") from err
    fed = cfg.federation
    key = (str(path.resolve()), digest, cfg.data, cfg.task, fed.seed, fed.num_branches)
    if _FILE_SPLIT is not None and _FILE_SPLIT[0] == key:
        return _FILE_SPLIT[1]
    _FILE_SPLIT = None  # let the previous corpus go before loading this one
    corpus = load_file(cfg, task, path)
    labels = resolve_labels(cfg, task, corpus.labels)
    train_idx, test_idx = train_test_split(len(corpus), cfg.data.test_fraction, fed.seed,
                                           stratify=corpus.labels if task.binary else None)
    train, test = corpus.subset(train_idx), corpus.subset(test_idx)
    check_binary_held_out(labels, test)
    parts = partition(train.labels, fed.num_branches, cfg.data.partition, cfg.data.dirichlet_alpha, fed.seed)
    split = FileSplit(train, test, parts, labels)
    _FILE_SPLIT = (key, split)
    return split


# --------------------------------------------------------------------------- what each node loads


def synthetic_held_out(cfg: RunConfig, labels: LabelSet) -> Corpus:
    """The server's synthetic held-out corpus.

    Raises:
        DataError: a binary task's held-out set lacks a class (a held-out set of one row).
    """
    test = rows_corpus(synthetic_held_out_rows(cfg))
    check_binary_held_out(labels, test)
    return test


def partition_corpus(cfg: RunConfig, task: Task, partition_id: int) -> tuple[Corpus, LabelSet]:
    """Simulated branch ``partition_id``'s training corpus and the run's label set.

    Synthetic: made from the branch's own stream (O(its rows)); a file: its
    part of the (cached) split.

    Raises:
        DataError: ``partition_id`` is not below ``num-branches``, or as :func:`file_split`.
    """
    n_branches = cfg.federation.num_branches
    if not 0 <= partition_id < n_branches:
        raise DataError(f"partition-id {partition_id} but num-branches is {n_branches}: set num-branches to the number of SuperNodes")
    if cfg.data.source == SYNTHETIC:
        return synthetic_branch(cfg, partition_id), resolve_labels(cfg, task)
    split = file_split(cfg, task)
    return split.train.subset(split.parts[partition_id]), split.labels


def holdout_corpus(cfg: RunConfig, task: Task) -> tuple[Corpus, LabelSet]:
    """The server's held-out corpus and the run's label set.

    Synthetic: made from its own stream
    (:func:`common.data.synthetic.streams.held_out_size` rows, whatever
    ``num-branches``); a file: the held-out part of the (cached) split.

    Raises:
        DataError: a label is outside the run's label set, or (a file) a
            held-out label occurs in no training row: its metrics would mean nothing.
    """
    if cfg.data.source == SYNTHETIC:
        labels = resolve_labels(cfg, task)
        test = synthetic_held_out(cfg, labels)
        check_label_coverage(Corpus([], []), test, labels.names, require_trained=False)
        return test, labels
    split = file_split(cfg, task)
    check_label_coverage(split.train, split.test, split.labels.names, require_trained=True)
    return split.test, split.labels


# --------------------------------------------------------------------------- the whole federation (tools)


def simulation_split(cfg: RunConfig) -> tuple[Corpus, Corpus, list[np.ndarray], list[str]]:
    """The whole simulated federation: (train corpus, held-out corpus, per-branch train indices, label names).

    For tools that need every branch at once (deployment's per-branch files,
    preflight checks, tests): branch ``p``'s rows are ``train.subset(parts[p])``,
    equal to :func:`partition_corpus`'s.  Synthetic: O(num-branches) -- every
    branch's stream, concatenated in order; a file: :func:`file_split`.
    Runs the task checks.
    """
    task = check_task(cfg)
    if cfg.data.source != SYNTHETIC:
        split = file_split(cfg, task)
        return split.train, split.test, split.parts, list(split.labels.names)
    labels = resolve_labels(cfg, task)
    branches = [synthetic_branch(cfg, p) for p in range(cfg.federation.num_branches)]
    test = synthetic_held_out(cfg, labels)
    parts, start = [], 0
    for corpus in branches:
        parts.append(np.arange(start, start + len(corpus)))
        start += len(corpus)
    return concat_all(branches), test, parts, list(labels.names)


def synthetic_corpus(cfg: RunConfig) -> Corpus:
    """Every simulated branch's synthetic records (branch 0 first), then the held-out set.

    O(num-branches): for tools that need the whole federation at once; a node
    makes only its own part (:func:`partition_corpus`, :func:`holdout_corpus`).
    """
    train, test, _, _ = simulation_split(cfg)
    return concat_all([train, test])


def load_corpus(cfg: RunConfig) -> Corpus:
    """The full corpus named by ``data.source`` (synthetic: :func:`synthetic_corpus`, the whole federation); runs the task checks."""
    if cfg.data.source == SYNTHETIC:
        return synthetic_corpus(cfg)
    return load_file(cfg, check_task(cfg), cfg.data.source)


def concat_all(corpora: list[Corpus]) -> Corpus:
    """The corpora one after the other, in one pass (records kept if any has them; replies if all have them)."""
    texts = [t for c in corpora for t in c.texts]
    labels = [label for c in corpora for label in c.labels]
    records = None
    if any(c.records is not None for c in corpora):
        records = [r for c in corpora for r in (c.records if c.records is not None else [None] * len(c))]
    responses = None
    if corpora and all(c.responses is not None for c in corpora):
        responses = [r for c in corpora for r in c.responses]
    return Corpus(texts, labels, records, responses)
