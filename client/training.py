"""Local training of the trainable part (``model.peft``) at a branch, with or without Opacus DP-SGD.

One call trains one round: the model (base frozen, adapter + head trainable)
is built and moved to its device before ``make_private``; the optimizer gets
only trainable parameters; Poisson sampling with expected batch size
``train.batch-size`` gives sample rate ``q = 1 / ceil(n / B)`` and ``ceil(n / B)``
steps per epoch.  The accountant is restored from the branch's persisted
history before training, so the epsilon returned composes over all rounds.

The loss is the task's per-example loss (:class:`common.model.losses.TaskLoss`:
cross-entropy for the classifiers, reply-token NLL for ``chat``), so one
example -- one record, one dialogue -- is the privacy unit.  A logical batch
larger than ``train.physical-batch-size`` is split: by Opacus's
``BatchMemoryManager`` with DP (the noisy step is taken once per logical
batch), by gradient accumulation without.  ``dp.ghost-clipping`` uses
Opacus's ghost clipping (per-example gradient norms without per-example
gradients).  IA3 and P-Tuning, whose trainable tensors Opacus's hooks cannot
reach, take exact per-example gradients one example at a time
(:mod:`client.per_example`, Opacus's ``no_op`` mode).  The forward pass runs under the autocast of
``train.mixed-precision`` (:mod:`common.model.device`).
"""

from __future__ import annotations

import contextlib
import math
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from client.dp_adambc import DPAdamBC
from common.config.run import RunConfig
from common.model.device import autocast, autocast_dtype
from common.model.losses import TaskLoss
from common.model.adapter import adapter_arrays, unwrap
from common.model.methods import PER_EXAMPLE, only_head_trains
from client.per_example import per_example_backward
from common.tasks.spec import task_of
from common.tasks.tokens import TokenizedSet, trim_padding


@dataclass
class RoundPlan:
    """The DP-SGD parameters of one local round, and its phase (linear probe or not) and step size."""

    sample_rate: float
    steps: int
    noise_multiplier: float
    head_only: bool = False
    learning_rate: float | None = None


@dataclass
class TrainOutcome:
    """What one local round produced."""

    arrays: dict[str, np.ndarray]
    steps: int
    sample_rate: float
    noise_multiplier: float
    mean_loss: float
    accountant_history: list


def round_plan(cfg: RunConfig, num_examples: int, noise_multiplier: float, server_round: int = 1) -> RoundPlan:
    """Sample rate and step count of round ``server_round`` for ``num_examples`` examples.

    The round also sets the phase: rounds up to ``train.linear-probe-rounds``
    train the task head alone (LP-FT: linear probing, then fine-tuning, every
    step under the one accountant), and the step size decays by
    ``train.lr-decay`` per round.
    """
    batches = max(1, math.ceil(num_examples / cfg.train.batch_size))
    return RoundPlan(sample_rate=1.0 / batches, steps=batches * cfg.train.local_epochs, noise_multiplier=noise_multiplier,
                     head_only=server_round <= cfg.train.linear_probe_rounds,
                     learning_rate=cfg.train.learning_rate * cfg.train.lr_decay ** (server_round - 1))


def train_round(model, data: TokenizedSet, cfg: RunConfig, plan: RoundPlan, history: list, seed: int,
                class_weights: torch.Tensor | None = None,
                on_epoch: Callable[[int, int, float], None] | None = None) -> TrainOutcome:
    """Train ``model`` for one round; DP-SGD when ``cfg.dp.enabled``.

    Args:
        model: a PEFT model, already on its device, whose trainable parameters are the adapter (and head).
        data: the branch's desensitized, tokenized training set.
        cfg: run config.
        plan: sample rate, steps and noise of this round.
        history: the accountant's history so far (restored before training).
        seed: seed of batch order for this branch and round (non-private runs only).
            With DP the server must not be able to predict the Poisson batches
            or the noise, so both come from a secret seed drawn here from the
            OS, never from ``seed``.
        class_weights: per-class loss weights (``train.imbalance = weighted-loss``), or None.
        on_epoch: called after each local epoch with (epochs done, steps so far, the epoch's mean
            training loss): progress for long runs in one process (the benchmark's central arms).
            A branch's ClientApp passes none: its loss stays inside the branch.
    """
    if cfg.dp.enabled:
        seed = secrets.randbits(63)  # known to no one: the run seed, round and branch are public
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    dtype = autocast_dtype(cfg, device.type)
    criterion = TaskLoss(task_of(cfg).generative, class_weights)
    with only_head_trains(model, plan.head_only):
        outcome = _train(model, data, cfg, plan, history, seed, criterion, device, dtype, on_epoch)
    outcome.arrays = adapter_arrays(model)  # the whole adapter travels, also after a head-only round
    return outcome


def _train(model, data: TokenizedSet, cfg: RunConfig, plan: RoundPlan, history: list, seed: int, criterion,
           device, dtype, on_epoch=None) -> TrainOutcome:
    """The round's optimizer steps (DP-SGD when ``cfg.dp.enabled``) on the parameters that train now."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = local_optimizer(params, cfg, plan, len(data))
    batch = cfg.train.batch_size
    loader = torch.utils.data.DataLoader(
        data.as_dataset(), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    engine = None
    ghost = cfg.dp.enabled and cfg.dp.ghost_clipping
    per_example = cfg.dp.enabled and cfg.model.peft in PER_EXAMPLE
    if cfg.dp.enabled:
        engine, model, optimizer, criterion, loader = _make_private(model, optimizer, loader, criterion, cfg, plan, history)
    physical = cfg.train.physical_batch_size
    model.train()
    losses, steps = [], 0
    with warnings.catch_warnings():
        # Frozen embeddings: the hook fires w.r.t. module outputs only, which is what Opacus needs.
        warnings.filterwarnings("ignore", message=".*[Ff]ull backward hook is firing.*")
        for epoch in range(1, cfg.train.local_epochs + 1):
            seen = len(losses)
            with _physical_batches(loader, optimizer, physical if engine is not None else 0) as batches:
                for input_ids, attention_mask, labels in batches:
                    if input_ids.shape[0] == 0:  # empty Poisson batch: still take (and account) the noisy step
                        optimizer.zero_grad(set_to_none=True)
                        _zero_gradients(params, ghost)
                        optimizer.step()
                        steps += 1
                        continue
                    input_ids, attention_mask, labels = trim_padding(input_ids, attention_mask, labels)
                    optimizer.zero_grad(set_to_none=True)
                    if per_example:  # IA3, P-Tuning: exact per-example gradients where Opacus's hooks cannot reach
                        losses += per_example_backward(unwrap(model), criterion, input_ids, attention_mask, labels, device, dtype)
                        chunks = []
                    else:
                        chunks = _chunks(input_ids.shape[0], physical if engine is None else 0)
                    for chunk in chunks:
                        with autocast(device.type, dtype):
                            logits = model(input_ids=input_ids[chunk].to(device),
                                           attention_mask=attention_mask[chunk].to(device)).logits
                        loss = criterion(logits, labels[chunk].to(device))
                        share = (chunk.stop - chunk.start) / input_ids.shape[0]
                        (loss * share if len(chunks) > 1 else loss).backward()
                        losses.append(float(loss.detach()))
                    optimizer.step()
                    steps += 1
            if on_epoch is not None:
                taken = _accounted_steps(engine, history) if engine is not None else steps
                on_epoch(epoch, taken, float(np.mean(losses[seen:])) if len(losses) > seen else float("nan"))
    model.eval()
    history_after = list(engine.accountant.history) if engine is not None else []
    if engine is not None:  # logical steps, empty Poisson batches included; not the physical passes counted above
        steps = _accounted_steps(engine, history)
    return TrainOutcome(
        arrays={},  # filled by train_round once every adapter tensor trains again (LP-FT's head-only phase)
        steps=steps,
        sample_rate=plan.sample_rate if engine is not None else batch / max(len(data), 1),
        noise_multiplier=plan.noise_multiplier if engine is not None else 0.0,
        mean_loss=float(np.mean(losses)) if losses else float("nan"),
        accountant_history=history_after,
    )


def _accounted_steps(engine, history: list) -> int:
    """The DP steps this round has taken so far: the accountant's count beyond the ``history`` it started from."""
    return sum(int(n) for _, _, n in engine.accountant.history) - sum(int(h[2]) for h in history)


def _make_private(model, optimizer, loader, criterion, cfg: RunConfig, plan: RoundPlan, history: list):
    """Opacus's DP-SGD around the round's model, optimizer, loader (and, with ghost clipping, loss), the accountant restored."""
    from opacus import PrivacyEngine

    ghost = cfg.dp.ghost_clipping
    with warnings.catch_warnings():
        # Opacus' reminder about secure_mode: its CSPRNG (torchcsprng) does not install with torch 2;
        # the README's "Noise source" says what the default source defends against and what not.
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
        engine = PrivacyEngine(accountant=cfg.dp.accountant, secure_mode=False)
        engine.accountant.history = [tuple(h) for h in history]
        private = engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader, criterion=criterion,
            noise_multiplier=plan.noise_multiplier, max_grad_norm=cfg.dp.max_grad_norm, poisson_sampling=True,
            grad_sample_mode=grad_sample_mode(cfg),
        )
    if ghost:
        model, optimizer, criterion, loader = private
    else:
        model, optimizer, loader = private
    return engine, model, optimizer, criterion, loader


def grad_sample_mode(cfg: RunConfig) -> str:
    """How Opacus gets per-example gradients: ghost clipping, hooks, or (IA3, P-Tuning) none: :mod:`client.per_example` sets them."""
    if cfg.dp.ghost_clipping:
        return "ghost"
    return "no_op" if cfg.model.peft in PER_EXAMPLE else "hooks"


def local_optimizer(params: list[torch.Tensor], cfg: RunConfig, plan: RoundPlan | None = None,
                    num_examples: int = 0) -> torch.optim.Optimizer:
    """``train.optimizer``: AdamW (no weight decay), SGD with ``train.momentum``, or DP-AdamBC.

    DP-AdamBC needs the round's noise variance per coordinate of the averaged
    gradient, ``(noise_multiplier * max_grad_norm / expected_batch_size) ** 2``,
    from ``plan`` and the branch's ``num_examples`` (0 without DP: then it is Adam); its floor is
    ``max(train.adambc-gamma, train.adambc-floor x phi)``.
    """
    lr = plan.learning_rate if plan is not None and plan.learning_rate is not None else cfg.train.learning_rate
    if cfg.train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.train.momentum)
    if cfg.train.optimizer == "dp-adambc":
        phi = 0.0
        if cfg.dp.enabled and plan is not None and num_examples > 0:
            expected_batch = max(plan.sample_rate * num_examples, 1.0)
            phi = (plan.noise_multiplier * cfg.dp.max_grad_norm / expected_batch) ** 2
        gamma = max(cfg.train.adambc_gamma, cfg.train.adambc_floor * phi)
        return DPAdamBC(params, lr=lr, noise_variance=phi, gamma=gamma)
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def _physical_batches(loader, optimizer, physical: int):
    """Opacus's ``BatchMemoryManager`` over ``loader`` when DP splits logical batches, else ``loader`` itself."""
    if physical <= 0:
        return contextlib.nullcontext(loader)
    from opacus.utils.batch_memory_manager import BatchMemoryManager

    return BatchMemoryManager(data_loader=loader, max_physical_batch_size=physical, optimizer=optimizer)


def _chunks(n: int, physical: int) -> list[slice]:
    """Slices of a batch of ``n`` no larger than ``physical`` (gradient accumulation without DP; 0 = one slice)."""
    size = physical if 0 < physical < n else n
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _zero_gradients(params: list[torch.Tensor], ghost: bool) -> None:
    """What an empty batch contributes before the noise: nothing, in the form Opacus's optimizer reads."""
    for p in params:
        if ghost:  # ghost clipping leaves the clipped sum in .grad
            p.grad = torch.zeros_like(p)
        else:
            p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
