"""Privacy accounting shared by the branches and the server.

A branch plans its DP-SGD noise and reports the epsilon of its accountant's
history; the server recomputes both from the figures of the branch's signed
claims to check them.  Both sides call these functions, so they cannot drift
apart: the epsilon of an Opacus history ``(noise_multiplier, sample_rate,
steps)`` and the noise that spends a target epsilon over a planned run.  The
only side effect is the machine's memo of noise searches
(:mod:`common.privacy.noise_plans`), which never decides a noise unchecked.
"""

from __future__ import annotations

import functools

import numpy as np
from opacus.accountants import RDPAccountant, create_accountant
from opacus.accountants.analysis import rdp as rdp_analysis
from opacus.accountants.utils import get_noise_multiplier

from common.privacy import noise_plans

#: Opacus's noise search stops once its epsilon is within this much below the target.
NOISE_SEARCH_EPSILON_TOLERANCE = 0.01


@functools.lru_cache(maxsize=4096)
def _rdp_per_step(sample_rate: float, noise_multiplier: float, orders: tuple[float, ...]) -> tuple[float, ...]:
    """Opacus's RDP curve of one step of the sampled Gaussian at ``orders`` (a tuple: it is shared)."""
    return tuple(rdp_analysis.compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=list(orders)))


class _MemoRDPAccountant(RDPAccountant):
    """Opacus's RDP accountant for histories of Python floats, each (noise, sample rate)'s curve computed once
    per process.

    Opacus's ``compute_rdp`` is the one-step curve (float64) times ``steps``, and a
    history's RDP is the sum over its entries; this sums the same products in the
    same order, so for float entries (what :func:`epsilon_of` passes) its epsilon is
    Opacus's to the bit.  The curve is about 0.6 s of pure Python per entry (its
    fractional orders), and every branch and the server ask for the same entries
    again each round: a history grows by one repeated entry per round.
    """

    def get_privacy_spent(self, *, delta: float, alphas=None) -> tuple[float, float]:
        if not self.history:
            return 0, 0
        orders = tuple(self.DEFAULT_ALPHAS if alphas is None else alphas)
        rdp = sum([np.array(_rdp_per_step(float(q), float(sigma), orders), dtype=np.float64) * steps
                   for sigma, q, steps in self.history])
        eps, best_alpha = rdp_analysis.get_privacy_spent(orders=list(orders), rdp=rdp, delta=delta)
        return float(eps), float(best_alpha)


def epsilon_of(history: list[tuple[float, float, int]], accountant: str, delta: float) -> float:
    """Epsilon of a history under a fresh Opacus accountant of the given kind."""
    if not history:
        return 0.0
    acc = _MemoRDPAccountant() if accountant == "rdp" else create_accountant(accountant)
    acc.history = [(float(s), float(q), int(n)) for s, q, n in history]
    return float(acc.get_epsilon(delta=delta))


@functools.lru_cache(maxsize=256)
def planned_noise_multiplier(target_epsilon: float, delta: float, sample_rate: float, total_steps: int, accountant: str) -> float:
    """Noise that spends ``target_epsilon`` over the whole planned run: at most it, and within
    NOISE_SEARCH_EPSILON_TOLERANCE below it (Opacus's search).

    The search takes seconds and every process that plans a run asks it again,
    so answers are kept per process and on disk (:mod:`common.privacy.noise_plans`);
    a remembered answer is used only once the accountant confirms that contract
    for this plan.
    """
    key = noise_plans.plan_key(target_epsilon, delta, sample_rate, total_steps, accountant, NOISE_SEARCH_EPSILON_TOLERANCE)
    remembered = noise_plans.recall(key)
    if remembered is not None and _meets_plan(remembered, target_epsilon, delta, sample_rate, total_steps, accountant):
        return remembered  # confirmed for this plan: neither weaker privacy than the target nor wasted budget
    noise = float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=total_steps,
            accountant=accountant,
            epsilon_tolerance=NOISE_SEARCH_EPSILON_TOLERANCE,
        )
    )
    noise_plans.remember(key, noise)
    return noise


def _meets_plan(noise: float, target_epsilon: float, delta: float, sample_rate: float, total_steps: int,
                accountant: str) -> bool:
    """Whether ``noise`` spends at most the target over the plan, and at most the search's tolerance less.

    ``noise`` comes from a file: a value the accountant cannot convert (it
    overflows, or divides by zero) is no plan, and the search runs instead.
    """
    try:
        spent = epsilon_of([(noise, sample_rate, total_steps)], accountant, delta)
    except (ArithmeticError, ValueError):
        return False
    return target_epsilon - NOISE_SEARCH_EPSILON_TOLERANCE <= spent <= target_epsilon
