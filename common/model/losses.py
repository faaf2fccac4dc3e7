"""The training loss of each task, as DP-SGD needs it: one loss per example, averaged over the batch.

Opacus bounds each example's gradient, so each example's loss term must
depend on that example only:

* classification (intent, credit, fraud): cross-entropy of the example, times
  its class weight with ``train.imbalance = weighted-loss``
  (:func:`classification_nll`); PyTorch's ``CrossEntropyLoss(weight=w)`` divides by
  the sum of the *batch's* weights instead, coupling the examples, so it is
  not used;
* chat (a causal LM): the mean next-token negative log-likelihood over the
  example's *reply* tokens (:func:`response_nll`).  A token-level mean over the
  whole batch (what Hugging Face models return for ``labels=``) would weigh a
  dialogue by its length relative to the others; here one dialogue is one
  unit, whatever its token count.

:class:`TaskLoss` is the criterion :func:`client.training.train_round`
calls with ``(logits, labels)``.  It has the ``reduction`` attribute Opacus's
ghost clipping switches to ``"none"`` to get the per-example losses.
"""

from __future__ import annotations

import torch

IGNORE = -100


def classification_nll(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-example cross-entropy ``(B,)``, times ``weights[y]`` when given."""
    per = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")
    return per if weights is None else weights.to(per.device)[labels] * per


def response_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token NLL summed over each example's labelled (reply) tokens, and their count: ``(B,)``, ``(B,)``."""
    shifted = logits[:, :-1].float()
    target = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), target.reshape(-1),
                                            ignore_index=IGNORE, reduction="none").view(target.shape)
    mask = (target != IGNORE).to(nll.dtype)
    return (nll * mask).sum(dim=1), mask.sum(dim=1)


def response_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example mean NLL over its reply tokens ``(B,)`` (0 for an example without any)."""
    total, count = response_token_nll(logits, labels)
    return total / count.clamp(min=1)


class TaskLoss(torch.nn.Module):
    """``loss(logits, labels)``: the task's per-example loss, reduced by ``self.reduction`` (mean, sum or none)."""

    def __init__(self, generative: bool, class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.generative = generative
        self.class_weights = class_weights
        self.reduction = "mean"

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        per = response_nll(logits, labels) if self.generative else classification_nll(logits, labels, self.class_weights)
        if self.reduction == "none":
            return per
        return per.sum() if self.reduction == "sum" else per.mean()
