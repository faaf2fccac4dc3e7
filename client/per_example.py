"""Exact per-example gradients, one backward pass per example, for methods Opacus's hooks cannot reach.

Opacus computes per-example gradients with hooks on the layers that own the
trainable parameters.  Two methods defeat them (``common.model.methods.PER_EXAMPLE``):
IA3 keeps its scaling vectors in a ``ParameterDict``, a module that is never
called, so no hook fires; P-Tuning runs its prompt encoder once per batch and
repeats the result, so a hook would see one summed gradient for the batch.
``torch.func.vmap`` over the whole transformer fails on its data-dependent
control flow, so here each example of the batch is run alone: its gradient
(of its own loss, as Opacus's hooks give it) is exact and depends on no other
example.  The gradients are stacked into ``p.grad_sample``, where Opacus's
``DPOptimizer`` (``grad_sample_mode = "no_op"``) clips each, sums, adds the
noise and accounts the step as it does for the hooks.
"""

from __future__ import annotations

import torch

from common.model.device import autocast


def per_example_backward(model, criterion, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         labels: torch.Tensor, device: torch.device, dtype) -> list[float]:
    """Set ``p.grad_sample`` (one row per example) of every trainable parameter of ``model``; return the losses."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows: list[list[torch.Tensor]] = [[] for _ in params]
    losses = []
    for i in range(input_ids.shape[0]):
        with autocast(device.type, dtype):
            logits = model(input_ids=input_ids[i:i + 1].to(device), attention_mask=attention_mask[i:i + 1].to(device)).logits
        loss = criterion(logits, labels[i:i + 1].to(device))
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for row, param, grad in zip(rows, params, grads):
            row.append(torch.zeros_like(param) if grad is None else grad.detach())
        losses.append(float(loss.detach()))
    for param, row in zip(params, rows):
        param.grad_sample = torch.stack(row)
    return losses
