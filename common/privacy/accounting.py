"""Pure privacy accounting shared by the branches and the server.

A branch plans its DP-SGD noise and reports the epsilon of its accountant's
history; the server recomputes both from the figures of the branch's signed
claims to check them.  Both sides call these functions, so they cannot drift
apart: the epsilon of an Opacus history ``(noise_multiplier, sample_rate,
steps)`` and the noise that spends a target epsilon over a planned run.
"""

from __future__ import annotations

import functools

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

#: Opacus's noise search stops once its epsilon is within this much below the target.
NOISE_SEARCH_EPSILON_TOLERANCE = 0.01


def epsilon_of(history: list[tuple[float, float, int]], accountant: str, delta: float) -> float:
    """Epsilon of a history under a fresh Opacus accountant of the given kind."""
    if not history:
        return 0.0
    acc = create_accountant(accountant)
    acc.history = [(float(s), float(q), int(n)) for s, q, n in history]
    return float(acc.get_epsilon(delta=delta))


@functools.lru_cache(maxsize=256)
def planned_noise_multiplier(target_epsilon: float, delta: float, sample_rate: float, total_steps: int, accountant: str) -> float:
    """Noise that spends exactly ``target_epsilon`` over the whole planned run.

    Opacus's search takes about a second; a branch asks the same question every
    round (same data size, same plan), so answers are kept per process.
    """
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=total_steps,
            accountant=accountant,
            epsilon_tolerance=NOISE_SEARCH_EPSILON_TOLERANCE,
        )
    )
