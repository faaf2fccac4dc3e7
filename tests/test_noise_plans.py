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


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order")
        return fn(*args, **kwargs)


def _plan(accountant: str = "rdp") -> float:
    return _quiet(planned_noise_multiplier, TARGET, DELTA, Q, STEPS, accountant)


def _opacus(accountant: str = "rdp") -> float:
    return _quiet(get_noise_multiplier, target_epsilon=TARGET, target_delta=DELTA, sample_rate=Q, steps=STEPS,
                  accountant=accountant, epsilon_tolerance=NOISE_SEARCH_EPSILON_TOLERANCE)


def _key(accountant: str = "rdp") -> str:
    return noise_plans.plan_key(TARGET, DELTA, Q, STEPS, accountant, NOISE_SEARCH_EPSILON_TOLERANCE)


def _plant(cache, noise, accountant: str = "rdp") -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({_key(accountant): noise}))


def _spent(noise: float, accountant: str = "rdp") -> float:
    return epsilon_of([(noise, Q, STEPS)], accountant, DELTA)


def test_the_first_search_is_opacus_s_and_is_remembered(cache):
    assert _plan() == _opacus()
    assert list(json.loads(cache.read_text()).values()) == [_opacus()]


def test_a_remembered_noise_that_meets_the_plan_is_used_without_a_search(cache):
    searched = _opacus()
    other = searched * 1.0005  # not what the search returns, still within its contract
    assert other != searched and TARGET - NOISE_SEARCH_EPSILON_TOLERANCE <= _spent(other) <= TARGET
    _plant(cache, other)
    assert _plan() == other


# 0.999 (RDP) and 0.998 (GDP): about the smallest loosening that spends over the target; 0.95 a plain one;
# 1.2: more noise than the plan needs (budget wasted)
@pytest.mark.parametrize("accountant,factor", [("rdp", 0.999), ("rdp", 0.95), ("rdp", 1.2), ("gdp", 0.998),
                                               ("gdp", 1.2)])
def test_a_remembered_noise_outside_the_plan_is_searched_again_and_replaced(cache, accountant, factor):
    searched = _opacus(accountant)
    wrong = searched * factor
    spent = _spent(wrong, accountant)
    assert spent > TARGET if factor < 1 else spent < TARGET - NOISE_SEARCH_EPSILON_TOLERANCE
    _plant(cache, wrong, accountant)
    assert _plan(accountant) == searched
    assert json.loads(cache.read_text()) == {_key(accountant): searched}


# what no search returns: each must cost a search, never a hang or an error (Infinity once hung Opacus)
@pytest.mark.parametrize("raw", ["Infinity", "-Infinity", "NaN", "-1", "0", "true", "1e300", "1e-300", "5e-324",
                                 "9" * 400, '"0.9"', "null", "[1.0]"])
def test_a_remembered_value_no_search_returns_is_no_plan(cache, raw):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(f'{{"{_key()}": {raw}}}')
    assert _plan() == _opacus()


def test_a_broken_entry_of_another_plan_does_not_spoil_this_one(cache):
    cache.parent.mkdir(parents=True, exist_ok=True)
    valid = _opacus()
    cache.write_text(f'{{"another plan": {"9" * 400}, "{_key()}": {valid!r}}}')
    assert _plan() == valid


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"x": "y"}', "", "[" * 100_000 + "]" * 100_000])
def test_a_damaged_file_is_ignored_and_rewritten(cache, content):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(content)
    assert _plan() == _opacus()
    assert _opacus() in json.loads(cache.read_text()).values()


def test_without_a_home_directory_there_is_no_cache_and_no_error(monkeypatch):
    from pathlib import Path

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    for name in ("FEDBANK_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    planned_noise_multiplier.cache_clear()
    try:
        assert noise_plans.cache_file() is None
        assert _plan() == _opacus()
    finally:
        planned_noise_multiplier.cache_clear()


def test_a_cache_that_cannot_be_written_costs_only_the_search(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("FEDBANK_CACHE_DIR", str(blocker / "cache"))
    planned_noise_multiplier.cache_clear()
    try:
        assert _plan() == _opacus()
    finally:
        planned_noise_multiplier.cache_clear()
