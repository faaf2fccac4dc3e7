"""The run's label set, resolved once and passed in: names, positive class, encoding, coverage checks.

:func:`resolve_labels` reads ``data.labels`` once and returns a
:class:`LabelSet`, identical on every node:

* binary tasks (credit, fraud): ``[negative, positive]`` -- from
  ``data.labels`` (two labels), the synthetic generator's labels, or the
  label values of the corpus -- with the positive class last (index 1, whose
  probability ROC-AUC, KS and PR-AUC rank): ``data.positive-label``, else a
  conventional name (:attr:`common.tasks.spec.Task.positive_names`);
* intent: ``data.labels`` if given, the generator's intents for synthetic
  data, else the sorted labels found in the corpus;
* chat: none (a dialogue's topic only steers the partition).

Whoever resolves the set passes it on -- to the split's checks, the
canaries, the label encoding and the class weights -- so nothing below
re-reads the run config for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.config.files import read_labels
from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.data.synthetic.streams import SYNTHETIC, generator_labels
from common.errors import DataError
from common.tasks.spec import Task, task_of

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LabelSet:
    """The run's labels.

    Attributes:
        names: the labels in encoding order (binary: negative, positive); empty for ``chat``.
        fixed: set by the run config or the synthetic generator, so every node
            has it whatever its own rows (False: read from a data file).
        binary: two labels, the positive one last.
    """

    names: tuple[str, ...]
    fixed: bool
    binary: bool = False

    def __len__(self) -> int:
        return len(self.names)

    @property
    def positive(self) -> str | None:
        """The positive class of a binary task (None otherwise)."""
        return self.names[-1] if self.binary else None

    def encode(self, labels: Sequence[str], where: str) -> "torch.Tensor":
        """Label strings to indices; an unknown label is a DataError naming it."""
        index = {name: i for i, name in enumerate(self.names)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(f"{where}: label(s) {unknown[:5]} are not in the run's label set; add them to data.labels",
                            public=f"{len(unknown)} label value(s) of the data are not in the run's label set "
                                   f"({len(self.names)} labels): fix data.labels or data.label-column")
        import torch  # lazily: loading and checking data needs no torch

        return torch.tensor([index[label] for label in labels], dtype=torch.long)


def resolve_labels(cfg: RunConfig, task: Task, values: Sequence[str] | None = None) -> LabelSet:
    """The run's label set (``values``: the labels of the corpus it is read from, needed when the source is a file and ``data.labels`` is empty).

    Raises:
        DataError: the set cannot be told (no ``data.labels`` and no corpus), or a binary task's labels are wrong.
    """
    if not task.labelled:
        return LabelSet((), fixed=True)
    explicit = read_labels(cfg.data.labels)
    synthetic = cfg.data.source == SYNTHETIC
    if not explicit and not synthetic and values is None:
        raise DataError("data.labels is empty and there is no corpus to read labels from: set data.labels")
    fixed = bool(explicit) or synthetic
    if task.binary:
        if synthetic and not explicit:
            return LabelSet(tuple(generator_labels(task)), fixed, binary=True)
        return LabelSet(tuple(binary_label_names(cfg, task, explicit, values)), fixed, binary=True)
    if explicit:
        return LabelSet(tuple(explicit), fixed)
    if synthetic:
        return LabelSet(tuple(generator_labels(task)), fixed)
    return LabelSet(tuple(sorted(set(values))), fixed)


def label_names(cfg: RunConfig, corpus: Corpus | None = None) -> list[str]:
    """The names of the run's label set, for a tool outside a node's preparation (``corpus``: the one it is read from, if any)."""
    return list(resolve_labels(cfg, task_of(cfg), corpus.labels if corpus is not None else None).names)


def positive_label(cfg: RunConfig, task: Task, values: Sequence[str]) -> str:
    """The positive class: ``data.positive-label``, else a conventional name found among ``values``.

    Raises:
        DataError: none is given and none of the conventional names occurs.
    """
    if cfg.task.positive_label:
        return cfg.task.positive_label
    lowered = {str(v).lower(): v for v in values}
    for name in task.positive_names:
        if name in lowered:
            return lowered[name]
    shown = ", ".join(repr(v) for v in sorted(values)[:5]) or "none"
    raise DataError(f"task '{task.name}' needs the positive class: set data.positive-label to one of the values of "
                    f"column '{cfg.data.label_column}' ({shown})",
                    public=f"task '{task.name}' needs the positive class: set data.positive-label to one of the "
                           f"{len(values)} values of column '{cfg.data.label_column}'")


def binary_label_names(cfg: RunConfig, task: Task, explicit: list[str] | None, labels: Sequence[str] | None) -> list[str]:
    """``[negative, positive]`` for a binary task, identical on every node.

    From ``explicit`` (``data.labels``, two labels) when given, else from the
    label values in ``labels`` (the corpus).

    Raises:
        DataError: the positive label is not a value, or there are not exactly two values.
    """
    values = sorted(set(explicit) if explicit else set(labels or ()))
    where = "data.labels" if explicit else f"column '{cfg.data.label_column}'"
    if len(values) > 2:
        shown = ", ".join(repr(v) for v in values[:6]) + (" ..." if len(values) > 6 else "")
        raise DataError(f"task '{task.name}' is binary but {where} has {len(values)} values ({shown}): "
                        "keep two label values (map the others before loading) or use task=intent",
                        public=f"task '{task.name}' is binary but {where} has {len(values)} values: "
                               "keep two label values or use task=intent")
    pos = positive_label(cfg, task, values)
    if pos not in values:
        shown = ", ".join(repr(v) for v in values) or "none"
        raise DataError(f"data.positive-label '{pos}' is not a value of {where} ({shown}): "
                        "set data.positive-label to the label of the positive class",
                        public=f"data.positive-label is not one of the {len(values)} values of {where}: "
                               "set data.positive-label to the label of the positive class")
    negatives = [v for v in values if v != pos]
    if not negatives:
        raise DataError(f"{where} holds only the positive label '{pos}': task '{task.name}' needs rows of both classes "
                        "(or name both in data.labels)",
                        public=f"{where} holds only the positive label: task '{task.name}' needs rows of both classes")
    return [negatives[0], pos]


def check_binary_held_out(labels: LabelSet, test: Corpus) -> None:
    """A binary task's held-out set holds both classes (ROC/PR metrics need them).

    Raises:
        DataError: a class is missing (a held-out set of one row).
    """
    if labels.binary and not set(labels.names) <= set(test.labels):
        missing = sorted(set(labels.names) - set(test.labels))
        raise DataError(f"the held-out evaluation set has no {missing[0]!r} rows ({len(test)} rows held out), so ROC/PR "
                        "metrics cannot be computed: use more data (data.records-per-branch for synthetic) or raise data.test-fraction")


def check_label_coverage(train: Corpus, test: Corpus, names: Sequence[str], require_trained: bool = True) -> None:
    """Every label is in the run's label set, and (``require_trained``) every held-out label occurs in the training data.

    ``names`` empty: a task without labels (chat), nothing to check.

    Raises:
        DataError: naming the first offending label and the fix.
    """
    if not names:
        return
    known = set(names)
    for where, corpus in (("training data", train), ("held-out evaluation set", test)):
        unknown = sorted(set(corpus.labels) - known)
        if unknown:
            raise DataError(f"label {_show_labels(unknown)} in the {where} is not in the run's label set: add it to data.labels or remove its rows",
                            public=f"{len(unknown)} label value(s) in the {where} are not in the run's label set "
                                   f"({len(known)} labels): fix data.labels or data.label-column")
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
