"""The server's own check of what a branch claims to have spent: config and epsilon.

A branch's claim states the figures of its DP-SGD round (noise multiplier,
sample rate, steps, clipping norm, delta, accountant) and its cumulative
epsilon.  :class:`SpendAudit` compares them with the run config and with the
server's own recomputation, per branch, from the figures of that branch's
earlier claims in this run:

``config-mismatch``
    the accountant, delta and clipping norm are the run's (``none``/null/0
    without DP); a trained claim's sample rate is ``1 / ceil(examples /
    batch-size)`` (its examples are its weight), its steps ``local-epochs /
    sample rate``, and its noise is ``dp.noise-multiplier`` or, when that is 0,
    the noise the branch must plan for that sample rate over the whole run
    (:func:`common.privacy.accounting.planned_noise_multiplier`) within
    NOISE_TOLERANCE (Opacus's search stops anywhere within 0.01 epsilon below
    its target, which moves the noise by well under 1 % at epsilon >= 1; 2 %
    leaves room for another Opacus version at the branch).
``epsilon-decreased``
    the claimed epsilon is below the largest this branch claimed before in
    the run (cumulative epsilon never goes down).
``epsilon-mismatch``
    the claimed epsilon is more than EPSILON_TOLERANCE (1 %) below the
    server's recomputation: the epsilon of every (noise, sample rate, steps)
    this branch claimed in this run, this round's included.

What the epsilon check proves: a branch's lifetime budget spans runs, and its
spend before this run is invisible here, so its claimed epsilon may exceed
this run's recomputation -- it can never be below it.  Every claim must be at
least the run-only epsilon (within 1 %): no branch can under-report this
run's spend.  A branch whose first claim of the run equals the recomputation
(within 1 %) started the run from zero (``fresh``); from then on every claim
must *equal* the recomputation within 1 %, so its claimed epsilon is exactly
the epsilon of the spend its signed claims describe.  A branch that spent
before the run is held to the lower bound only.  Claims rejected for their
epsilon do not raise the bar of ``epsilon-decreased``, but their figures count
toward the recomputation (the branch signed that it spent them); a claim whose
figures are not the run config's (``config-mismatch``) is not accounted at all.
On a resumed run the histories are rebuilt by checking the ledgered claims
again, in order.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from common.config.run import RunConfig
from common.errors import Rejection
from common.privacy.accounting import epsilon_of, planned_noise_multiplier
from common.wire.protocol import ACCOUNTANT_NONE, STATUS_TRAINED, check_vocabulary
from server.records.ledger import SERVER_BRANCH

#: Relative tolerance of the recomputed epsilon.
EPSILON_TOLERANCE = 0.01
#: Relative tolerance of a planned noise multiplier (see the module docstring).
NOISE_TOLERANCE = 0.02
#: Relative tolerance of figures copied from the run config (float round trips only).
EXACT = 1e-9


@dataclass
class BranchSpend:
    """What the server knows of one branch's spend in this run."""

    history: list[tuple[float, float, int]] = field(default_factory=list)
    highest: float | None = None  # the largest epsilon of a claim that passed these checks
    fresh: bool | None = None  # None until its first claim with an epsilon: did it start the run from zero?
    plan: tuple[float, float, int] | None = None  # the figures of its last trained claim


class SpendAudit:
    """Checks claims against the run config and recomputes each branch's epsilon."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.branches: dict[str, BranchSpend] = {}

    def rebuild(self, entries: Iterable[Mapping[str, Any]], run_id: int) -> None:
        """Check this run's ledgered branch claims again, in order (a resumed run): the same state as before the stop."""
        for entry in entries:
            if entry.get("run_id") == run_id and entry.get("branch") != SERVER_BRANCH:
                self.replay(entry)

    def replay(self, line: Mapping[str, Any]) -> None:
        """Check a claim the ledger already holds (its outcome is on its line): only its spend is recorded."""
        try:
            check_vocabulary(line)
        except (Rejection, KeyError, TypeError, AttributeError):
            return  # a bad-claim line: never counted
        self.check(line)

    def check(self, claim: Mapping[str, Any]) -> Rejection | None:
        """Check one vocabulary-valid claim; record its spend; return why it is rejected, or None."""
        try:
            self._check_config(claim)
        except Rejection as exc:
            return exc  # figures that are not the run's are not accounted: the claim is rejected, red in the report
        if not self.cfg.dp.enabled:
            return None
        spend = self.branches.setdefault(claim["branch"], BranchSpend())
        figures = _figures(claim)
        history = spend.history + ([figures] if figures else [])
        recomputed = self._epsilon(history)
        problem = _epsilon_problem(float(claim["epsilon"]), spend, recomputed)
        spend.history = history
        spend.plan = figures or spend.plan
        if problem is None:
            if spend.fresh is None:
                spend.fresh = _close(float(claim["epsilon"]), recomputed, EPSILON_TOLERANCE)
            spend.highest = max(float(claim["epsilon"]), spend.highest or 0.0)
        return problem

    def possible_epsilon(self, branch: str) -> float | None:
        """The epsilon ``branch`` reaches if it trained one more round at its last plan (None: not known).

        Known only for a branch that started this run from zero (its claims equal the
        recomputation): a branch that spent before the run has a history the server cannot see.
        """
        spend = self.branches.get(branch)
        if spend is None or spend.plan is None or not spend.fresh or not self.cfg.dp.enabled:
            return None
        return self._epsilon(spend.history + [spend.plan])

    def _epsilon(self, history: list[tuple[float, float, int]]) -> float:
        return _epsilon_of(tuple(history), self.cfg.dp.accountant, self.cfg.dp.delta)

    def _check_config(self, claim: Mapping[str, Any]) -> None:
        dp = self.cfg.dp
        expected = {"accountant": dp.accountant, "delta": dp.delta, "max_grad_norm": dp.max_grad_norm} if dp.enabled \
            else {"accountant": ACCOUNTANT_NONE, "delta": None, "max_grad_norm": 0.0, "noise_multiplier": 0.0,
                  "epsilon": None, "budget_epsilon": None}
        for key, value in expected.items():
            if not _same(claim[key], value, EXACT):
                raise Rejection("config-mismatch", f"claim has {key} {claim[key]!r}, the run config {value!r}")
        if dp.enabled and claim["epsilon"] is None:
            raise Rejection("config-mismatch", "claim has no epsilon in a DP run")
        if dp.enabled and claim["status"] == STATUS_TRAINED:
            self._check_plan(claim)

    def _check_plan(self, claim: Mapping[str, Any]) -> None:
        """A trained claim's sample rate, steps and noise are the ones its examples and the run config give."""
        cfg = self.cfg
        batches = max(1, math.ceil(claim["examples"] / cfg.train.batch_size))
        if not _same(claim["sample_rate"], 1.0 / batches, EXACT):
            raise Rejection("config-mismatch", f"claim has sample rate {claim['sample_rate']!r}; {claim['examples']} "
                            f"examples in batches of {cfg.train.batch_size} give 1/{batches}")
        if claim["steps"] != batches * cfg.train.local_epochs:
            raise Rejection("config-mismatch", f"claim has {claim['steps']} steps; the plan is "
                            f"{batches} x {cfg.train.local_epochs} local epoch(s)")
        noise = cfg.dp.noise_multiplier or planned_noise_multiplier(
            cfg.dp.target_epsilon, cfg.dp.delta, 1.0 / batches, batches * cfg.train.local_epochs * cfg.federation.num_rounds,
            cfg.dp.accountant)
        tolerance = EXACT if cfg.dp.noise_multiplier else NOISE_TOLERANCE
        if not _close(claim["noise_multiplier"], noise, tolerance):
            raise Rejection("config-mismatch", f"claim has noise multiplier {claim['noise_multiplier']:.6g}; "
                            f"the run config gives {noise:.6g}")

def _epsilon_problem(epsilon: float, spend: BranchSpend, recomputed: float) -> Rejection | None:
    """``epsilon-decreased`` or ``epsilon-mismatch`` for a claimed ``epsilon``, or None."""
    if spend.highest is not None and epsilon < spend.highest * (1 - EXACT):
        return Rejection("epsilon-decreased", f"claims epsilon {epsilon:.6g} after {spend.highest:.6g} in this run")
    if epsilon < recomputed * (1 - EPSILON_TOLERANCE):
        return Rejection("epsilon-mismatch", f"claims epsilon {epsilon:.6g}; its claimed spend in this run "
                         f"alone is epsilon {recomputed:.6g}")
    if spend.fresh and epsilon > recomputed * (1 + EPSILON_TOLERANCE):
        return Rejection("epsilon-mismatch", f"claims epsilon {epsilon:.6g}; it started the run from zero and "
                         f"its claimed spend is epsilon {recomputed:.6g}")
    return None


@functools.lru_cache(maxsize=1024)
def _epsilon_of(history: tuple[tuple[float, float, int], ...], accountant: str, delta: float) -> float:
    """:func:`epsilon_of`, remembered: the same histories come back (every branch of a run shares a plan; a
    resumed run checks its ledger again), and one RDP conversion at a fractional order takes milliseconds."""
    return epsilon_of(list(history), accountant, delta)


def _figures(claim: Mapping[str, Any]) -> tuple[float, float, int] | None:
    """A DP-trained claim's (noise multiplier, sample rate, steps), or None."""
    if claim.get("status") != STATUS_TRAINED or not claim.get("noise_multiplier") or not claim.get("steps"):
        return None
    return float(claim["noise_multiplier"]), float(claim["sample_rate"]), int(claim["steps"])


def _close(value: float, expected: float, rel: float) -> bool:
    return abs(value - expected) <= rel * max(abs(expected), 1e-12)


def _same(value: Any, expected: Any, rel: float) -> bool:
    if expected is None or isinstance(expected, str):
        return value == expected
    return isinstance(value, (int, float)) and _close(float(value), float(expected), rel)
