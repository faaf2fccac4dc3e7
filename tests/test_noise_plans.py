"""Remembered noise searches (common/privacy/noise_plans.py): used only when the accountant confirms them.

A branch plans its noise with Opacus's search; the answer is kept on disk so a
fresh process skips the search.  The file is outside what the branch can vouch
for, so an entry that would spend more than the target (weaker privacy) or far
less (wasted utility) must be searched again, never used.
"""

from __future__ import annotations

import json
import warnings

import pytest
from opacus.accountants.utils import get_noise_multiplier

from common.privacy import noise_plans
from common.privacy.accounting import NOISE_SEARCH_EPSILON_TOLERANCE, epsilon_of, planned_noise_multiplier

TARGET, DELTA, Q, STEPS = 4.0, 1e-5, 0.02, 2000  # a plan whose search takes well under a second


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBANK_CACHE_DIR", str(tmp_path / "cache"))
    planned_noise_multiplier.cache_clear()  # the per-process memo would hide the file
    yield noise_plans.cache_file()
    planned_noise_multiplier.cache_clear()


def _plan() -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order")
        return planned_noise_multiplier(TARGET, DELTA, Q, STEPS, "rdp")


def _opacus() -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order")
        return get_noise_multiplier(target_epsilon=TARGET, target_delta=DELTA, sample_rate=Q, steps=STEPS,
                                    accountant="rdp", epsilon_tolerance=NOISE_SEARCH_EPSILON_TOLERANCE)


def _plant(cache, noise: float) -> None:
    key = noise_plans.plan_key(TARGET, DELTA, Q, STEPS, "rdp", NOISE_SEARCH_EPSILON_TOLERANCE)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({key: noise}))


def _spent(noise: float) -> float:
    return epsilon_of([(noise, Q, STEPS)], "rdp", DELTA)


def test_the_first_search_is_opacus_s_and_is_remembered(cache):
    assert _plan() == _opacus()
    assert list(json.loads(cache.read_text()).values()) == [_opacus()]


def test_a_remembered_noise_that_meets_the_plan_is_used_without_a_search(cache):
    searched = _opacus()
    other = searched * 1.0005  # not what the search returns, still within its contract
    assert other != searched and TARGET - NOISE_SEARCH_EPSILON_TOLERANCE <= _spent(other) <= TARGET
    _plant(cache, other)
    assert _plan() == other


@pytest.mark.parametrize("factor,why", [(0.95, "spends more than the target"), (1.2, "spends far less than the target")])
def test_a_remembered_noise_outside_the_plan_is_searched_again_and_replaced(cache, factor, why):
    wrong = _opacus() * factor
    spent = _spent(wrong)
    assert spent > TARGET if factor < 1 else spent < TARGET - NOISE_SEARCH_EPSILON_TOLERANCE, why
    _plant(cache, wrong)
    assert _plan() == _opacus()
    assert list(json.loads(cache.read_text()).values()) == [_opacus()]


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"x": "y"}', ""])
def test_a_damaged_file_is_ignored_and_rewritten(cache, content):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(content)
    assert _plan() == _opacus()
    assert _opacus() in json.loads(cache.read_text()).values()


def test_a_cache_that_cannot_be_written_costs_only_the_search(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("FEDBANK_CACHE_DIR", str(blocker / "cache"))
    planned_noise_multiplier.cache_clear()
    try:
        assert _plan() == _opacus()
    finally:
        planned_noise_multiplier.cache_clear()
