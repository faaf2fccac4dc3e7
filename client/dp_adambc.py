"""DP-AdamBC: Adam whose second moment has DP-SGD's noise variance taken out (Tang et al., AAAI 2024).

Under DP-SGD every coordinate of the averaged gradient carries Gaussian noise of
variance ``phi = (noise_multiplier * max_grad_norm / expected_batch_size) ** 2``.
Plain Adam's second moment then estimates ``E[g^2] + phi``; where the true
gradient is small, ``phi`` dominates and Adam degenerates to SGD with a step of
about ``lr / sqrt(phi)`` (the paper's title: "your DP-Adam is actually DP-SGD").
DP-AdamBC subtracts the known ``phi`` from the bias-corrected second moment
and floors it at ``gamma``:

    m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
    step = lr * m_hat / sqrt(max(v_hat - phi, gamma))

``phi`` is public (it follows from the round's noise multiplier, clipping norm
and sample rate), so the correction post-processes the privatized gradient and
spends no privacy.  With ``phi = 0`` it is Adam with ``eps`` inside the root.
Used by :func:`client.training.local_optimizer` for ``train.optimizer = dp-adambc``.
"""

from __future__ import annotations

import torch


class DPAdamBC(torch.optim.Optimizer):
    """Adam with the DP noise variance ``noise_variance`` removed from its second moment."""

    def __init__(self, params, lr: float, noise_variance: float, betas: tuple[float, float] = (0.9, 0.999),
                 gamma: float = 1e-8) -> None:
        if lr <= 0 or noise_variance < 0 or gamma <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"DPAdamBC: bad settings lr={lr}, noise_variance={noise_variance}, betas={betas}, gamma={gamma}")
        super().__init__(params, {"lr": lr, "betas": betas, "noise_variance": noise_variance, "gamma": gamma})

    @torch.no_grad()
    def step(self, closure=None):
        """One DP-AdamBC step on the (already privatized) gradients."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t, g = state["step"], p.grad
                state["m"].mul_(b1).add_(g, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = state["m"] / (1 - b1 ** t)
                v_hat = state["v"] / (1 - b2 ** t)
                denom = (v_hat - group["noise_variance"]).clamp_min(group["gamma"]).sqrt()
                p.addcdiv_(m_hat, denom, value=-group["lr"])
        return loss
