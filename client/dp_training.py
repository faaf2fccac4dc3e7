"""Local training of the LoRA adapter at a branch, with or without Opacus DP-SGD.

One call trains one round: the model (base frozen, adapter + head trainable)
is built and moved to its device before ``make_private``; the optimizer gets
only trainable parameters; Poisson sampling with expected batch size
``train.batch-size`` gives sample rate ``q = 1 / ceil(n / B)`` and ``ceil(n / B)``
steps per epoch.  The accountant is restored from the branch's persisted
history before training, so the epsilon returned composes over all rounds.
"""

from __future__ import annotations

import math
import secrets
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from common.config import RunConfig
from common.data import TokenizedSet
from common.model import adapter_arrays


@dataclass
class RoundPlan:
    """The DP-SGD parameters of one local round."""

    sample_rate: float
    steps: int
    noise_multiplier: float


@dataclass
class TrainOutcome:
    """What one local round produced."""

    arrays: dict[str, np.ndarray]
    steps: int
    sample_rate: float
    noise_multiplier: float
    mean_loss: float
    accountant_history: list


def round_plan(cfg: RunConfig, num_examples: int, noise_multiplier: float) -> RoundPlan:
    """Sample rate and step count of one round for ``num_examples`` examples."""
    batches = max(1, math.ceil(num_examples / cfg.train.batch_size))
    return RoundPlan(sample_rate=1.0 / batches, steps=batches * cfg.train.local_epochs, noise_multiplier=noise_multiplier)


def train_round(model, data: TokenizedSet, cfg: RunConfig, plan: RoundPlan, history: list, seed: int) -> TrainOutcome:
    """Train ``model`` for one round; DP-SGD when ``cfg.dp.enabled``.

    Args:
        model: a PEFT model whose trainable parameters are the adapter and head.
        data: the branch's desensitized, tokenized training set.
        cfg: run config.
        plan: sample rate, steps and noise of this round.
        history: the accountant's history so far (restored before training).
        seed: seed of batch order for this branch and round (non-private runs only).
            With DP the server must not be able to predict the Poisson batches
            or the noise, so both come from a secret seed drawn here from the
            OS (or Opacus's CSPRNG with ``dp.secure-mode``), never from ``seed``.
    """
    if cfg.dp.enabled:
        seed = secrets.randbits(63)  # known to no one: the run seed, round and branch are public
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=0.0)
    batch = cfg.train.batch_size
    loader = torch.utils.data.DataLoader(
        data.as_dataset(), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    engine = None
    if cfg.dp.enabled:
        from opacus import PrivacyEngine

        with warnings.catch_warnings():
            # Opacus' reminder about secure_mode: dp.secure-mode turns it on (README).
            warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
            engine = PrivacyEngine(accountant=cfg.dp.accountant, secure_mode=cfg.dp.secure_mode)
            engine.accountant.history = [tuple(h) for h in history]
            model, optimizer, loader = engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=plan.noise_multiplier,
                max_grad_norm=cfg.dp.max_grad_norm,
                poisson_sampling=True,
            )
    model.train()
    losses, steps = [], 0
    with warnings.catch_warnings():
        # Frozen embeddings: the hook fires w.r.t. module outputs only, which is what Opacus needs.
        warnings.filterwarnings("ignore", message=".*[Ff]ull backward hook is firing.*")
        for _ in range(cfg.train.local_epochs):
            for input_ids, attention_mask, labels in loader:
                optimizer.zero_grad(set_to_none=True)
                if input_ids.shape[0] == 0:  # empty Poisson batch: still take (and account) the noisy step
                    for p in params:
                        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
                    optimizer.step()
                    steps += 1
                    continue
                out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
                out.loss.backward()
                optimizer.step()
                losses.append(float(out.loss.detach()))
                steps += 1
    model.eval()
    history_after = list(engine.accountant.history) if engine is not None else []
    if engine is not None:  # the steps the accountant saw, empty Poisson batches included
        steps = sum(int(n) for _, _, n in history_after) - sum(int(h[2]) for h in history)
    return TrainOutcome(
        arrays=adapter_arrays(model),
        steps=steps,
        sample_rate=plan.sample_rate if engine is not None else batch / max(len(data), 1),
        noise_multiplier=plan.noise_multiplier if engine is not None else 0.0,
        mean_loss=float(np.mean(losses)) if losses else float("nan"),
        accountant_history=history_after,
    )
