"""Accountant checks: the project's epsilon against Opacus, Google's dp-accounting and an integral.

What this file proves, for delta = 1e-5 and DP-SGD's Poisson-sampled Gaussian:

1. ``common.privacy.accounting.epsilon_of(..., "rdp")`` is exactly the epsilon of a fresh
   ``opacus.accountants.RDPAccountant`` stepped ``steps`` times through its public
   ``step()`` API, on a 3x3x3 grid of sigma x sample rate x steps; and the RDP
   behind it, at the order Opacus picks, is the Renyi divergence computed by
   numerical integration.
2. It agrees with dp-accounting's ``RdpAccountant`` given the same RDP orders: to
   rounding on the integer orders, and within a stated, explained tolerance
   overall, dp-accounting never below the project (dp-accounting 0.6 bounds the
   fractional orders more loosely; by point 1 the gap is its slack, not an error
   of the project).
3. ``epsilon_of(..., "prv")`` agrees with dp-accounting's PLD accountant within
   Opacus' PRV error window, and both are below the RDP epsilon.
4. A heterogeneous history (rounds with different sigma / q / steps, persisted
   and restored between rounds as a branch does, the gate's ``epsilon_after``
   prediction equal to the recorded spend every round) composes to the same
   epsilon in the project, in one continuously stepped Opacus accountant and in
   dp-accounting's ``ComposedDpEvent`` (RDP and PRV-vs-PLD).
5. ``planned_noise_multiplier`` returns a sigma that spends at most the target
   (per Opacus and per the integral) and within 2 % of it, whose last planned
   round the budget gate lets through, and that dp-accounting puts within 2 % of
   the target too (at most 0.5 % above it: its looser fractional orders).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings

import dp_accounting as dpa
import numpy as np
import pytest
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant, compute_epsilon
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.analysis import rdp as opacus_rdp
from scipy import integrate

from client.budget import PrivacyState
from common.privacy.accounting import epsilon_of, planned_noise_multiplier

DELTA = 1e-5

#: Opacus' RDP orders: 1.1, 1.2, ..., 10.9 and 12, ..., 63 (no 11).
OPACUS_ORDERS = list(RDPAccountant.DEFAULT_ALPHAS)
INTEGER_ORDERS = [a for a in OPACUS_ORDERS if float(a).is_integer()]
ORDERS_FROM_2 = [a for a in OPACUS_ORDERS if a >= 2]

# --- tolerances (each set from what was measured on this file's cases, dp-accounting 0.6.0, opacus 1.6.0) ---
#: Project vs Opacus: the same code path, so equal up to float summation order (measured: 0).
SAME_CODE_REL = 1e-12
#: Opacus vs dp-accounting at the integer orders 2..63: both sum the same finite binomial
#: series, so they agree to rounding (measured max 4.5e-14 relative).
INTEGER_ORDERS_REL = 1e-10
#: Opacus vs dp-accounting at Opacus' full order set.  Not equal, for two reasons found by
#: reading dp-accounting 0.6's ``_compute_log_a_frac``:
#:  * for a fractional order it adds the *absolute values* of the alternating binomial series
#:    (``_log_comb`` is gammaln, i.e. log|C(alpha, i)|, and every term goes through
#:    ``_log_add``), an upper bound: per-order RDP 0.04-0.4 % above the exact value, where
#:    Opacus' signed series matches a numerical integral to 1e-11
#:    (``test_rdp_equals_a_stepped_opacus_accountant``);
#:  * it stops that series after 1000 terms and drops the order (RDP = inf, with a logged
#:    warning) when it has not converged, which happens for orders 1.1-1.7 at q >= 0.05,
#:    sigma <= 2.
#: So dp-accounting is never below the project at the same orders, and where Opacus' best
#: order is >= 2 it is at most 1.71 % above (measured, sigma=2 q=0.2 steps=1000; <= 0.7 % for
#: every grid point with epsilon <= 16).  Where Opacus' best order is below 2 (only the
#: epsilon > 39 corner of the grid: sigma=0.6 with q=0.05/1000 steps or q=0.2/100+ steps,
#: sigma=1 q=0.2 1000 steps) dp-accounting has dropped that order and is up to 88 % above
#: (epsilon 361 vs 193), but never above the project's epsilon restricted to orders >= 2
#: (plus the same 2 %), which is what is asserted there.
DP_ACCOUNTING_RDP_REL = 0.02
#: Opacus PRV (``epsilon_of(..., "prv")``) vs dp-accounting PLD (pessimistic estimate).  Opacus
#: returns the *upper* end of its ``eps_error=0.01`` window, so it sits about 0.01 above the PLD
#: value: measured 0.0100-0.0108 absolute on PRV_CASES and the heterogeneous history with PLD at
#: its default discretisation 1e-4 (0.0146 at epsilon 182, sigma=0.6 q=0.2 1000 steps, not run
#: here).  Relative that is 0.06 % at epsilon 19 but 15 % at epsilon 0.066: an absolute bound.
PRV_VS_PLD_ABS = 0.02
#: Numerical integration of the Renyi divergence (scipy quad, epsrel 1.5e-8).
INTEGRAL_REL = 1e-6

GRID = list(itertools.product((0.6, 1.0, 2.0), (0.01, 0.05, 0.2), (10, 100, 1000)))


def _grid_id(case) -> str:
    sigma, q, steps = case
    return f"sigma{sigma}-q{q}-steps{steps}"


# PRV costs 0.02-0.4 s of CPU per case, PLD 0.01-0.1 s: a spread of 7 grid points (epsilon 0.07
# to 20, q 0.01 to 0.2, 10 to 1000 steps) keeps the file fast.
PRV_CASES = [
    (0.6, 0.01, 1000),
    (0.6, 0.05, 100),
    (1.0, 0.01, 1000),
    (1.0, 0.05, 100),
    (1.0, 0.2, 10),
    (2.0, 0.01, 10),
    (2.0, 0.2, 1000),
]

# Rounds of one branch whose data and noise change (sigma, q = batch / records, steps):
# 200 records at batch 16; the branch grows to 230; the noise is re-planned lower; back to the
# first setting (a repeat that is *not* adjacent, so Opacus keeps it as its own entry); and a
# small, heavily sampled round.
HETEROGENEOUS_ROUNDS = [
    (1.1, 16 / 200, 13),
    (1.1, 16 / 230, 15),
    (0.9, 16 / 180, 12),
    (1.1, 16 / 200, 13),
    (1.5, 0.2, 5),
]

# (target epsilon, sample rate, steps per round, rounds): the demo's shape (200 records,
# batch 16, 3 rounds), longer runs, small and large q, and targets 1, 4 and 8.
PLANNED_CASES = [
    (8.0, 16 / 200, 13, 3),
    (8.0, 0.2, 100, 3),
    (4.0, 0.01, 333, 3),
    (1.0, 0.05, 20, 5),
    (1.0, 0.2, 100, 10),
]


def _planned_id(case) -> str:
    target, q, steps, rounds = case
    return f"eps{target:g}-q{q:.3g}-{rounds}x{steps}steps"


# --- references ---------------------------------------------------------------------------
def _stepped(accountant_cls, rounds):
    """An Opacus accountant driven only through its public ``step()``, one call per DP-SGD step."""
    acc = accountant_cls()
    for sigma, q, steps in rounds:
        for _ in range(steps):
            acc.step(noise_multiplier=sigma, sample_rate=q)
    return acc


def _event(rounds) -> dpa.DpEvent:
    """dp-accounting's event for the rounds: each a self-composed Poisson-sampled Gaussian."""
    events = [dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma)), steps) for sigma, q, steps in rounds]
    return events[0] if len(events) == 1 else dpa.ComposedDpEvent(events)


def _dpa_rdp(rounds, orders) -> float:
    return RdpAccountant(orders=orders).compose(_event(rounds)).get_epsilon(DELTA)


def _pld(rounds) -> float:
    # Discretisation 1e-3 instead of the default 1e-4: 5-10x faster, still pessimistic, and
    # within 7e-4 of the 1e-4 result on every case here (measured).
    return PLDAccountant(value_discretization_interval=1e-3).compose(_event(rounds)).get_epsilon(DELTA)


def _integral_rdp(q: float, sigma: float, alpha: float) -> float:
    """RDP of order ``alpha`` of one Poisson-sampled Gaussian step, by numerical integration.

    ``D_alpha = log(A_alpha) / (alpha - 1)`` with
    ``A_alpha = E_{z ~ N(0, sigma^2)} [((1 - q) + q * exp((2z - 1) / (2 sigma^2)))^alpha]``
    (Mironov, Talwar, Zhang 2019, sec. 3.3), evaluated in log space with scipy's quad.  The
    integrand's mass lies between the means of its two extreme components, 0 and alpha.
    """
    def log_f(z):
        log_ratio = np.logaddexp(math.log1p(-q), math.log(q) + (2 * z - 1) / (2 * sigma**2))
        return -0.5 * (z / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi)) + alpha * log_ratio

    lo, hi = -40 * sigma, alpha + 40 * sigma
    shift = float(np.max(log_f(np.linspace(lo, hi, 2001))))
    value, _ = integrate.quad(lambda z: math.exp(log_f(z) - shift), lo, hi, points=[0.0, alpha / 2, alpha], limit=500)
    return (math.log(value) + shift) / (alpha - 1)


def _integral_epsilon(rounds, alpha: float) -> float:
    """Epsilon at order ``alpha`` from integrated RDP (dp-accounting's RDP-to-DP conversion)."""
    rdp = sum(steps * _integral_rdp(q, sigma, alpha) for sigma, q, steps in rounds)
    return compute_epsilon([alpha], [rdp], DELTA)[0]


@functools.cache
def _project_rdp(case) -> float:
    """The project's RDP epsilon of one setting (memoised: several tests compare it)."""
    return epsilon_of([case], "rdp", DELTA)


def _opacus_rdp_curve(rounds) -> np.ndarray:
    """Opacus' RDP of the rounds at each of its default orders (its public analysis module)."""
    return sum(opacus_rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=OPACUS_ORDERS) for sigma, q, steps in rounds)


def _epsilon_on(orders, curve) -> float:
    """Opacus' RDP-to-DP conversion restricted to a subset of its default orders."""
    picked = [OPACUS_ORDERS.index(a) for a in orders]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")  # an edge of a subset: expected
        eps, _ = opacus_rdp.get_privacy_spent(orders=list(orders), rdp=curve[picked], delta=DELTA)
    return float(eps)


# --- 1. RDP: project == Opacus stepped (and == the integral at the order it picks) -------
@pytest.mark.parametrize("case", GRID, ids=_grid_id)
def test_rdp_equals_a_stepped_opacus_accountant(case):
    sigma, q, steps = case
    acc = _stepped(RDPAccountant, [case])
    assert acc.history == [(sigma, q, steps)]
    reference, best_order = acc.get_privacy_spent(delta=DELTA)

    assert _project_rdp(case) == pytest.approx(reference, rel=SAME_CODE_REL)

    # The RDP behind it is the true Renyi divergence: a numerical integral at the order Opacus
    # picks gives the same epsilon (so any gap to dp-accounting below is dp-accounting's slack).
    assert _integral_epsilon([case], best_order) == pytest.approx(reference, rel=INTEGRAL_REL)


# --- 1b. RDP: project vs dp-accounting ----------------------------------------------------
@pytest.mark.parametrize("case", GRID, ids=_grid_id)
def test_rdp_agrees_with_dp_accounting(case):
    project = _project_rdp(case)
    curve = _opacus_rdp_curve([case])
    assert _epsilon_on(OPACUS_ORDERS, curve) == pytest.approx(project, rel=SAME_CODE_REL)

    # Integer orders: the same finite series in both libraries -> equal to rounding.
    opacus_integer = _epsilon_on(INTEGER_ORDERS, curve)
    assert _dpa_rdp([case], INTEGER_ORDERS) == pytest.approx(opacus_integer, rel=INTEGER_ORDERS_REL)

    # All of Opacus' orders: dp-accounting is never tighter, and above only by its slack.  The
    # orders->=2 epsilon it is held to is the project's own wherever Opacus' best order is >= 2
    # (23 of the 27 cases); in the other 4 dp-accounting has dropped the orders below 2.
    matched = _dpa_rdp([case], OPACUS_ORDERS)
    assert project <= matched * (1 + 1e-9)
    assert matched <= _epsilon_on(ORDERS_FROM_2, curve) * (1 + DP_ACCOUNTING_RDP_REL)


# --- 2. PRV vs PLD, and both tighter than RDP ---------------------------------------------
@pytest.mark.parametrize("case", PRV_CASES, ids=_grid_id)
def test_prv_agrees_with_pld_and_is_below_rdp(case):
    prv = epsilon_of([case], "prv", DELTA)
    pld = _pld([case])
    assert prv == pytest.approx(pld, abs=PRV_VS_PLD_ABS)

    rdp = _project_rdp(case)
    assert prv < rdp
    assert pld < rdp


# --- 3. a heterogeneous history composes the same everywhere ------------------------------
def _run_rounds_like_a_branch(accountant_cls, kind, rounds, state_dir):
    """Each round: restore the accountant from the persisted state, step it, record, save."""
    state = PrivacyState(accountant=kind, delta=DELTA)
    for number, (sigma, q, steps) in enumerate(rounds, start=1):
        predicted = state.epsilon_after(sigma, q, steps)
        acc = accountant_cls()
        acc.history = [tuple(h) for h in state.history]  # as client/training.py restores it
        for _ in range(steps):
            acc.step(noise_multiplier=sigma, sample_rate=q)
        spent = state.record_round(run_id=1, server_round=number, accountant_history=acc.history, steps=steps)
        assert spent == pytest.approx(predicted, rel=SAME_CODE_REL), f"round {number}: the gate's prediction is not the spend"
        state.save(state_dir)
        state = PrivacyState.load(state_dir, kind, DELTA)
    return state


def test_heterogeneous_rdp_history_composes_the_same(tmp_path):
    state = _run_rounds_like_a_branch(RDPAccountant, "rdp", HETEROGENEOUS_ROUNDS, tmp_path)
    assert [tuple(h) for h in state.history] == HETEROGENEOUS_ROUNDS  # one entry per round, none merged away
    spends = [r["epsilon"] for r in state.rounds]
    project = spends[-1]  # what the branch recorded (== epsilon_of(state.history), by record_round)
    assert all(later > earlier for earlier, later in zip(spends, spends[1:]))

    # One Opacus accountant stepped through every step of every round, never persisted.
    continuous = _stepped(RDPAccountant, HETEROGENEOUS_ROUNDS)
    reference, best_order = continuous.get_privacy_spent(delta=DELTA)
    assert reference == pytest.approx(project, rel=SAME_CODE_REL)

    # dp-accounting's ComposedDpEvent: the same brackets as the single-setting grid.
    assert _dpa_rdp(HETEROGENEOUS_ROUNDS, INTEGER_ORDERS) == pytest.approx(
        continuous.get_epsilon(DELTA, alphas=INTEGER_ORDERS), rel=INTEGER_ORDERS_REL
    )
    assert best_order >= 2  # so dp-accounting's dropped orders (< 2) do not matter here
    matched = _dpa_rdp(HETEROGENEOUS_ROUNDS, OPACUS_ORDERS)
    assert project <= matched * (1 + 1e-9)
    assert matched <= project * (1 + DP_ACCOUNTING_RDP_REL)
    assert _integral_epsilon(HETEROGENEOUS_ROUNDS, best_order) == pytest.approx(project, rel=INTEGRAL_REL)


def test_heterogeneous_prv_history_composes_the_same():
    # The restore/record/persist path is the same list for every accountant (checked with RDP
    # above, where it is cheap); PRV re-discretises the whole history per call (~1 s), so here
    # only the composition itself is compared.
    project = epsilon_of(HETEROGENEOUS_ROUNDS, "prv", DELTA)
    # A continuously stepped Opacus PRV accountant holds exactly this history (so its epsilon
    # is the project's by construction; computing it again would only cost another second).
    assert _stepped(PRVAccountant, HETEROGENEOUS_ROUNDS).history == HETEROGENEOUS_ROUNDS
    assert project == pytest.approx(_pld(HETEROGENEOUS_ROUNDS), abs=PRV_VS_PLD_ABS)
    assert project < epsilon_of(HETEROGENEOUS_ROUNDS, "rdp", DELTA)


# --- 4. the planned noise spends (at most) the target -------------------------------------
@pytest.mark.parametrize("case", PLANNED_CASES, ids=_planned_id)
def test_planned_noise_spends_at_most_the_target(case):
    target, q, steps, rounds = case
    with warnings.catch_warnings():
        # Opacus' search starts at sigma = 20, whose best order is the largest (63): expected.
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        sigma = planned_noise_multiplier(target, DELTA, q, steps * rounds, "rdp")
    run = [(sigma, q, steps * rounds)]

    # The project's own (Opacus) epsilon: at most the target, and within 2 % of it.
    project = epsilon_of(run, "rdp", DELTA)
    assert 0.98 * target <= project <= target

    # Independent of both libraries' series code: the integral at the order Opacus picks.
    acc = RDPAccountant()
    acc.history = run
    _, best_order = acc.get_privacy_spent(delta=DELTA)
    assert OPACUS_ORDERS[0] < best_order < OPACUS_ORDERS[-1]  # the planned sigma is not at an edge of the orders
    assert _integral_epsilon(run, best_order) <= target * (1 + INTEGRAL_REL)

    # dp-accounting (same orders) is within 2 % of the target too.  It can sit slightly *above*
    # the target (measured up to +0.18 %, at target 8, q=0.2, 300 steps) only through the
    # fractional-order slack explained at DP_ACCOUNTING_RDP_REL, hence the 0.5 % ceiling.
    matched = _dpa_rdp(run, OPACUS_ORDERS)
    assert 0.98 * target <= matched <= target * 1.005

    # The budget gate (client/app.py refuses a round when epsilon_after > budget) lets the
    # planned run's last, most expensive round through when the budget is the target, and its
    # prediction from the split history is the whole run's epsilon.
    state = PrivacyState(accountant="rdp", delta=DELTA)
    state.record_round(1, rounds - 1, [(sigma, q, steps * (rounds - 1))], steps * (rounds - 1))
    last = state.epsilon_after(sigma, q, steps)
    assert last <= target * (1 + 1e-9), f"the gate refuses round {rounds} of the planned {rounds}"
    assert last == pytest.approx(project, rel=1e-9)

