"""The four tasks (``task = intent | credit | fraud | chat``) and what differs between them.

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

Each task is one :class:`Task` in :data:`TASK_SPECS`; the rest of the code
asks it (``binary``, ``tabular``, ``labelled``, ``generative``, ``metrics``)
instead of testing the task's name.  The checks of a task's settings run once
(:func:`common.tasks.checks.check_task`); how its examples are tokenized is
:func:`common.tasks.examples.task_examples`.  This package imports nothing
from :mod:`common.data`: the data layer asks the task, never the reverse.

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

from common.config.run import RunConfig

if TYPE_CHECKING:
    import torch

BASE_METRICS = ("loss", "accuracy", "macro_f1")


@dataclass(frozen=True)
class Task:
    """What one task learns and reports.

    Attributes:
        name: ``intent``, ``credit``, ``fraud`` or ``chat``.
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

    @property
    def labelled(self) -> bool:
        """Each example has a class the model predicts (not ``chat``, whose topic only steers the partition)."""
        return not self.generative


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
