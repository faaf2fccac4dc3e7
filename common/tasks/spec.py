"""The three tasks (``task = intent | credit | fraud``) and what differs between them.

=========  =====================================  ===========================  ==========================================
task       input                                  labels                       held-out metrics (scikit-learn)
=========  =====================================  ===========================  ==========================================
intent     one text column (``data.text-column``) many (Banking77: 77)          loss, accuracy, macro-F1
credit     an applicant record (field columns)    binary: good / bad           + ROC-AUC, KS statistic, F1 at eval.threshold
fraud      a transaction record (field columns)   binary: legit / fraud (~1 %) + PR-AUC, recall at 1 % false-positive rate
chat       a customer message (prompt column)     the agent's reply (text)     loss, perplexity (reply tokens), ROUGE-L
=========  =====================================  ===========================  ==========================================

``chat`` is generative: a causal LM learns the reply (:mod:`common.tasks.chat`);
its data and metrics differ, its privacy accounting does not.

One column mapping covers all three: ``data.label-column`` and, for the
record tasks, ``data.field-columns`` / ``data.id-columns`` /
``data.quasi-columns`` / ``data.value-map`` and ``data.positive-label``.
Records are desensitized and serialized to text at the branch
(:mod:`common.privacy.records`), so the model is the same sequence classifier for
every task.  A binary task's label set is always ``[negative, positive]``:
the positive class is index 1, whose softmax probability is the score that
ROC-AUC, KS and PR-AUC rank.

Class imbalance (``train.imbalance``):

* ``weighted-loss`` -- cross-entropy with per-class weights, averaged over the
  *batch size*: ``mean_i(w[y_i] * CE_i)``.  Each sample's loss term depends
  on that sample only, so Opacus's per-sample gradients (``loss_reduction =
  "mean"``, rescaled by the batch size) are exactly ``w[y_i] * grad CE_i``
  and per-sample clipping bounds every record's contribution as usual.
  (PyTorch's ``CrossEntropyLoss(weight=w)`` divides by the *sum of the
  batch's weights* instead, which makes one record's gradient depend on the
  other records in its batch -- not a per-sample loss, so not used.)  Under
  DP-SGD clipping caps a weighted gradient at ``dp.max-grad-norm`` like any
  other, so the weights act mainly on samples whose gradient is below the
  clipping norm.  Weights: ``[1, train.positive-weight]`` for a binary task,
  else scikit-learn's ``balanced`` weights from the branch's own label counts
  (with DP, those counts are a data-dependent setting outside the accountant:
  set ``train.positive-weight`` from a public prior for a strict guarantee).
  The loss itself is :class:`common.model.losses.TaskLoss`, which
  ``client.training`` trains on.
* ``oversample`` -- rare-class rows are duplicated (seeded) until every class
  is as frequent as the largest.  A duplicated record would count several
  times in DP-SGD's sensitivity, so this is refused with ``dp.enabled = true``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from common.config.files import read_labels
from common.config.run import RunConfig
from common.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from common.data.corpus import Corpus
    from common.privacy.desensitize import Desensitizer

BASE_METRICS = ("loss", "accuracy", "macro_f1")


@dataclass(frozen=True)
class Task:
    """What one task learns and reports.

    Attributes:
        name: ``intent``, ``credit`` or ``fraud``.
        binary: two labels, the positive one last.
        tabular: inputs are records of field columns, serialized at the branch.
        metrics: held-out metrics :func:`common.model.metrics.evaluate` returns.
        synthetic_labels: labels of the synthetic generator (binary: negative, positive).
        positive_names: label values taken as the positive class when ``data.positive-label`` is empty.
        generative: a causal LM writing a reply (``chat``) instead of a classifier.
    """

    name: str
    binary: bool
    tabular: bool
    metrics: tuple[str, ...]
    synthetic_labels: tuple[str, ...]
    positive_names: tuple[str, ...] = ()
    generative: bool = False


TASK_SPECS: dict[str, Task] = {
    "intent": Task("intent", False, False, BASE_METRICS, ()),
    "credit": Task("credit", True, True, BASE_METRICS + ("roc_auc", "ks", "f1"), ("good", "bad"),
                   ("bad", "default", "defaulted", "yes", "true")),
    "fraud": Task("fraud", True, True, BASE_METRICS + ("pr_auc", "recall_at_1pct_fpr"), ("legit", "fraud"),
                  ("fraud", "fraudulent", "yes", "true")),
    "chat": Task("chat", False, False, ("loss", "perplexity", "rouge_l"), (), generative=True),
}
#: Metrics of each task beyond loss, named as in metrics.json, with how the evaluator's log line shows them.
METRIC_TITLES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "roc_auc": "ROC-AUC", "ks": "KS", "f1": "F1",
                 "pr_auc": "PR-AUC", "recall_at_1pct_fpr": "recall@1%FPR", "perplexity": "perplexity", "rouge_l": "ROUGE-L"}


def task_of(cfg: RunConfig) -> Task:
    """The :class:`Task` named by ``task``."""
    return TASK_SPECS[cfg.task.name]


def check_task(cfg: RunConfig) -> None:
    """Column-mapping and imbalance settings that only make sense together.

    Raises:
        ConfigError: one line naming the key and the fix.
    """
    t, task = cfg.task, task_of(cfg)
    label = cfg.data.label_column
    if not task.tabular:
        for key, value in (("data.field-columns", t.field_columns), ("data.id-columns", t.id_columns),
                           ("data.value-map", t.value_map), ("data.positive-label", t.positive_label)):
            if value.strip():
                raise ConfigError(f"{key} is set but task is '{task.name}', whose input is the one text column "
                                  f"data.text-column: clear {key} or set task=credit|fraud")
    else:
        for key, columns in (("data.field-columns", t.field_list or []), ("data.id-columns", t.id_list)):
            if label in columns:
                raise ConfigError(f"{key} names the label column '{label}': the label must never be a model input; remove it from {key}")
        from common.privacy.records import pipeline_for

        pipeline_for(cfg)  # a malformed quasi rule or value map fails here
    if t.imbalance == "oversample" and cfg.dp.enabled:
        raise ConfigError("train.imbalance 'oversample' duplicates records, so one record would count several times in "
                          "DP-SGD's sensitivity: use train.imbalance=weighted-loss with dp.enabled=true (or dp.enabled=false)")
    if t.positive_weight > 0 and not task.binary:
        raise ConfigError(f"train.positive-weight applies to the binary tasks credit and fraud, not '{task.name}': "
                          "set it to 0 (balanced weights) or change task")


# --------------------------------------------------------------------------- labels
def positive_label(cfg: RunConfig, values: Sequence[str]) -> str:
    """The positive class: ``data.positive-label``, else a conventional name found among ``values``.

    Raises:
        DataError: none is given and none of the conventional names occurs.
    """
    if cfg.task.positive_label:
        return cfg.task.positive_label
    task = task_of(cfg)
    lowered = {str(v).lower(): v for v in values}
    for name in task.positive_names:
        if name in lowered:
            return lowered[name]
    shown = ", ".join(repr(v) for v in sorted(values)[:5]) or "none"
    raise DataError(f"task '{task.name}' needs the positive class: set data.positive-label to one of the values of "
                    f"column '{cfg.data.label_column}' ({shown})")


def binary_label_names(cfg: RunConfig, labels: Sequence[str] | None) -> list[str]:
    """``[negative, positive]`` for a binary task, identical on every node.

    From ``data.labels`` when given (two labels), else from the label values
    in ``labels`` (the corpus).

    Raises:
        DataError: the positive label is not a value, or there are not exactly two values.
    """
    task, column = task_of(cfg), cfg.data.label_column
    explicit = read_labels(cfg.data.labels)
    values = sorted(set(explicit) if explicit else set(labels or ()))
    where = "data.labels" if explicit else f"column '{column}'"
    if len(values) > 2:
        shown = ", ".join(repr(v) for v in values[:6]) + (" ..." if len(values) > 6 else "")
        raise DataError(f"task '{task.name}' is binary but {where} has {len(values)} values ({shown}): "
                        "keep two label values (map the others before loading) or use task=intent")
    pos = positive_label(cfg, values)
    if pos not in values:
        shown = ", ".join(repr(v) for v in values) or "none"
        raise DataError(f"data.positive-label '{pos}' is not a value of {where} ({shown}): "
                        "set data.positive-label to the label of the positive class")
    negatives = [v for v in values if v != pos]
    if not negatives:
        raise DataError(f"{where} holds only the positive label '{pos}': task '{task.name}' needs rows of both classes "
                        "(or name both in data.labels)")
    return [negatives[0], pos]


# --------------------------------------------------------------------------- texts
def render_corpus(corpus: "Corpus", cfg: RunConfig, desensitizer: "Desensitizer | None" = None) -> tuple[list[str], dict[str, int]]:
    """The model texts of ``corpus`` and the PII counts: desensitized text, or desensitized serialized records.

    A corpus of records may also hold plain-text rows (record ``None``: the
    audit's canaries); those are desensitized as text.
    """
    from common.privacy.desensitize import Desensitizer
    from common.privacy.pii import PII_TYPES

    desensitizer = desensitizer or Desensitizer()
    totals = {t: 0 for t in PII_TYPES}
    records = corpus.records
    texts: list[str] = [""] * len(corpus)
    record_rows = [i for i, r in enumerate(records) if r is not None] if records is not None else []
    if record_rows:
        from common.privacy.records import pipeline_for

        rendered, counts = pipeline_for(cfg, synthetic_id_columns(cfg)).render([records[i] for i in record_rows], desensitizer)
        for i, text in zip(record_rows, rendered):
            texts[i] = text
        for t, n in counts.items():
            totals[t] += n
    done = set(record_rows)
    for i, text in enumerate(corpus.texts):
        if i in done:
            continue
        result = desensitizer.apply(text)
        texts[i] = result.text
        for t, n in result.counts.items():
            totals[t] += n
    return texts, totals


def synthetic_id_columns(cfg: RunConfig) -> tuple[str, ...]:
    """Identifier columns of the synthetic generator of ``cfg``'s task (none for user data)."""
    from common.data.sources import SYNTHETIC

    if cfg.data.source != SYNTHETIC:
        return ()
    from common.data.synthetic.records import APPLICANT_ID_COLUMNS, TRANSACTION_ID_COLUMNS

    return {"credit": APPLICANT_ID_COLUMNS, "fraud": TRANSACTION_ID_COLUMNS}.get(cfg.task.name, ())


# --------------------------------------------------------------------------- imbalance
def class_weights(labels: "torch.Tensor", num_labels: int, cfg: RunConfig) -> "torch.Tensor | None":
    """Per-class loss weights for ``train.imbalance = weighted-loss`` (None otherwise).

    Binary task with ``train.positive-weight`` > 0: ``[1, weight]``.  Else
    scikit-learn's ``balanced`` weights ``n / (k * n_c)`` over the classes
    present in ``labels``; an absent class gets 1.
    """
    import torch
    from sklearn.utils.class_weight import compute_class_weight

    if cfg.task.imbalance != "weighted-loss":
        return None
    if task_of(cfg).binary and cfg.task.positive_weight > 0:
        weights = np.ones(num_labels)
        weights[-1] = cfg.task.positive_weight
        return torch.tensor(weights, dtype=torch.float32)
    y = labels.cpu().numpy()
    present = np.unique(y)
    weights = np.ones(num_labels)
    if len(present):
        weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.tensor(weights, dtype=torch.float32)


def oversample_indices(labels: Sequence[str], seed: int) -> np.ndarray:
    """Row indices with every rarer class resampled (with replacement, seeded) up to the largest class's count."""
    from sklearn.utils import resample

    y = np.asarray(labels)
    counts = Counter(y.tolist())
    if len(counts) < 2:
        return np.arange(len(y))
    top = max(counts.values())
    out = [np.arange(len(y))]
    for i, (label, n) in enumerate(sorted(counts.items())):
        if n < top:
            idx = np.flatnonzero(y == label)
            out.append(resample(idx, replace=True, n_samples=top - n, random_state=seed + i))
    return np.sort(np.concatenate(out))
