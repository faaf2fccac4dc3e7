"""Evaluation of a classifier on tokenized examples: loss, accuracy, macro-F1.

Shared by the server's held-out evaluation, the branches' federated
evaluation and the tests that reload a saved adapter.  Metrics come from
scikit-learn.
"""

from __future__ import annotations

import torch
from sklearn.metrics import accuracy_score, f1_score

from common.data import TokenizedSet


@torch.no_grad()
def evaluate(model, data: TokenizedSet, batch_size: int = 64) -> dict[str, float]:
    """Mean cross-entropy, accuracy and macro-F1 (over the labels present) of ``model`` on ``data``."""
    model.eval()
    device = next(model.parameters()).device
    total_loss, preds = 0.0, []
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        out = model(
            input_ids=data.input_ids[sl].to(device),
            attention_mask=data.attention_mask[sl].to(device),
        )
        logits = out.logits.float()
        labels = data.labels[sl].to(device)
        total_loss += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        preds.append(logits.argmax(-1).cpu())
    y_pred = torch.cat(preds).numpy() if preds else []
    y_true = data.labels.numpy()
    n = max(len(data), 1)
    return {
        "loss": total_loss / n,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
