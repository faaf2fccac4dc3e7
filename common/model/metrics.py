"""Evaluation of a classifier on tokenized examples, with each task's metrics.

Shared by the server's held-out evaluation, the branches' federated
evaluation and the tests that reload a saved adapter.  Every metric comes
from scikit-learn:

* every task: ``loss`` (mean cross-entropy), ``accuracy``, ``macro_f1``
  (argmax predictions; macro-F1 over the labels present);
* ``credit``: ``roc_auc`` (:func:`~sklearn.metrics.roc_auc_score`), ``ks`` --
  the Kolmogorov-Smirnov statistic, ``max(TPR - FPR)`` over the ROC curve
  (:func:`~sklearn.metrics.roc_curve`) --, and ``f1`` of the positive class
  at ``eval.threshold`` on its probability;
* ``fraud``: ``pr_auc`` (average precision,
  :func:`~sklearn.metrics.average_precision_score`, the step-wise area under
  the precision-recall curve) and ``recall_at_1pct_fpr`` (the highest TPR on
  the ROC curve at a false-positive rate of at most 1 %).

A binary task's score is the softmax probability of label index 1 (the
positive class, :mod:`common.tasks.spec`).  A ranking metric is NaN when the data
hold only one class.

``chat`` (:func:`evaluate_chat`): ``loss``, the mean next-token NLL over all
held-out reply tokens, ``perplexity = exp(loss)``, and ``rouge_l``, the mean
ROUGE-L F-measure (Google's ``rouge_score``, with a tokenizer that splits
Chinese into characters) of greedy replies to the first
``eval.generate-examples`` held-out prompts against the reference replies.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, roc_auc_score, roc_curve)

from common.tasks.tokens import TokenizedSet

MAX_FPR = 0.01


def binary_metrics(task: str, y_true, scores, threshold: float = 0.5) -> dict[str, float]:
    """The ranking and threshold metrics of binary task ``task`` for positive-class ``scores``."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=float)
    both = len(np.unique(y)) == 2
    out: dict[str, float] = {}
    if task == "credit":
        if both:
            fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
            out["roc_auc"] = float(roc_auc_score(y, s))
            out["ks"] = float(np.max(tpr - fpr))
        else:
            out["roc_auc"] = out["ks"] = math.nan
        out["f1"] = float(f1_score(y, (s >= threshold).astype(int), pos_label=1, zero_division=0))
    elif task == "fraud":
        if both:
            fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
            out["pr_auc"] = float(average_precision_score(y, s))
            out["recall_at_1pct_fpr"] = float(np.max(tpr[fpr <= MAX_FPR]))
        else:
            out["pr_auc"] = out["recall_at_1pct_fpr"] = math.nan
    return out


@torch.no_grad()
def evaluate(model, data: TokenizedSet, batch_size: int = 64, task: str = "intent", threshold: float = 0.5) -> dict[str, float]:
    """Metrics of ``model`` on ``data``: loss, accuracy, macro-F1, plus ``task``'s own (see the module doc)."""
    model.eval()
    device = next(model.parameters()).device
    total_loss, preds, probs = 0.0, [], []
    for input_ids, attention_mask, labels in data.batches(batch_size, device):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        total_loss += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        preds.append(logits.argmax(-1).cpu())
        probs.append(torch.softmax(logits, dim=-1).cpu())
    y_pred = torch.cat(preds).numpy() if preds else []
    y_true = data.labels.numpy()
    n = max(len(data), 1)
    metrics = {
        "loss": total_loss / n,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
    if task != "intent" and probs:
        p = torch.cat(probs).numpy()
        if p.shape[1] != 2:
            raise ValueError(f"task '{task}' is binary but the model has {p.shape[1]} labels")
        metrics.update(binary_metrics(task, y_true, p[:, 1], threshold))
    return metrics


@torch.no_grad()
def evaluate_chat(model, holdout, tokenizer, max_length: int, max_new_tokens: int, generate_examples: int,
                  batch_size: int = 32) -> dict[str, float]:
    """Held-out reply-token loss and perplexity, and ROUGE-L of generated replies (``holdout``: a ``ChatHoldout``)."""
    from common.tasks.chat import generate_replies, rouge_l
    from common.model.losses import response_token_nll

    model.eval()
    device = next(model.parameters()).device
    data = holdout.tokens
    total, count = 0.0, 0.0
    for input_ids, attention_mask, labels in data.batches(batch_size, device):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        nll, n = response_token_nll(logits, labels)
        total += float(nll.sum())
        count += float(n.sum())
    loss = total / max(count, 1.0)
    k = min(generate_examples, len(holdout.prompts))
    replies = generate_replies(model, tokenizer, holdout.prompts[:k], max_length, max_new_tokens)
    return {"loss": loss, "perplexity": float(math.exp(min(loss, 700.0))), "rouge_l": rouge_l(replies, holdout.references[:k])}
