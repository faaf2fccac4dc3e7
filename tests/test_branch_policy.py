"""The branch's own policy: read strictly, written once with safe defaults, and never loosened by the run config."""

from __future__ import annotations

import dataclasses

import pytest

from common.config.policy import POLICY_FILE, BranchPolicy, requested_columns
from common.config.run import RunConfig
from common.errors import ConfigError


def cfg(**overrides) -> RunConfig:
    return RunConfig.from_flower({**RunConfig().to_flower(), **overrides})


def test_defaults_written_once_and_never_overwritten(tmp_path):
    policy = BranchPolicy.ensure(tmp_path)
    path = tmp_path / POLICY_FILE
    assert policy == BranchPolicy() and path.is_file()
    assert BranchPolicy.from_toml(path.read_text()) == policy  # what is written reads back the same
    path.write_text("[dp]\nlifetime-budget-epsilon = 2.0\n")
    assert BranchPolicy.ensure(tmp_path).lifetime_budget_epsilon == 2.0  # the branch's edit stays
    assert path.read_text() == "[dp]\nlifetime-budget-epsilon = 2.0\n"


def test_every_field_has_a_key_in_the_file():
    text = BranchPolicy().to_toml()
    assert text.count(" = ") == len(dataclasses.fields(BranchPolicy))
    changed = BranchPolicy.from_toml(text.replace("required = true", "required = false")
                                         .replace("poison-kind = \"scale\"", "poison-kind = \"sign-flip\""))
    assert not changed.dp_required and not changed.envelope_required and changed.poison_kind == "sign-flip"


@pytest.mark.parametrize("text, words", [
    ("[dp]\nbudget = 3\n", ["unknown key 'dp.budget'", "lifetime-budget-epsilon"]),
    ("[privacy]\nx = 1\n", ["unknown section [privacy]"]),
    ("[dp]\nrequired = \"yes\"\n", ["'dp.required' must be true or false"]),
    ("[dp]\nlifetime-budget-epsilon = \"8\"\n", ["'dp.lifetime-budget-epsilon' must be a finite number"]),
    ("[dp]\nlifetime-budget-epsilon = -1\n", ["'dp.lifetime-budget-epsilon'", "a number > 0"]),
    ("[dp]\naccountants = [\"rdp\", \"magic\"]\n", ["'dp.accountants'"]),
    ("[dp]\nmax-sample-rate = 1.5\n", ["'dp.max-sample-rate'"]),
    ("[testing]\npoison-branches = [\"branch-1\"]\n", ["'testing.fault-injection' is false"]),
    ("[dp\n", ["not valid TOML"]),
])
def test_bad_policy_is_one_line_naming_the_key(text, words):
    with pytest.raises(ConfigError) as err:
        BranchPolicy.from_toml(text, source="branch policy p.toml")
    message = str(err.value)
    assert "\n" not in message and message.startswith("branch policy p.toml")
    for word in words:
        assert word in message


def test_bad_policy_file_leaves_state_untouched(tmp_path):
    (tmp_path / POLICY_FILE).write_text("[dp]\nrequired = 1\n")
    (tmp_path / "privacy_state.json").write_text('{"keep": true}')
    with pytest.raises(ConfigError, match="dp.required"):
        BranchPolicy.ensure(tmp_path)
    assert (tmp_path / POLICY_FILE).read_text() == "[dp]\nrequired = 1\n"
    assert (tmp_path / "privacy_state.json").read_text() == '{"keep": true}'


def test_budget_below_what_is_spent_is_refused():
    policy = BranchPolicy(lifetime_budget_epsilon=2.0)
    policy.check_spent(1.9)
    with pytest.raises(ConfigError, match="at least 2.5"):
        policy.check_spent(2.5)


@pytest.mark.parametrize("overrides, rule", [
    ({"dp.enabled": False}, "policy: dp.enabled=false is not allowed by this branch (dp.required = true)"),
    ({"security.envelope": False}, "policy: security.envelope=false is not allowed"),
    ({"dp.noise-multiplier": 0.05, "dp.budget-epsilon": 1e6}, "policy: dp.noise-multiplier=0.05 is not allowed"),
    ({"dp.target-epsilon": 50.0}, "policy: dp.target-epsilon=50 is not allowed"),
    ({"dp.delta": 1e-3}, "policy: dp.delta=0.001 is not allowed"),
    ({"dp.max-grad-norm": 10.0}, "policy: dp.max-grad-norm=10 is not allowed"),
    ({"dp.accountant": "gdp"}, "policy: dp.accountant=gdp is not allowed"),
])
def test_run_config_cannot_loosen_the_default_policy(overrides, rule):
    reasons = BranchPolicy().violations(cfg(**overrides))
    assert any(r.startswith(rule) for r in reasons), reasons


def test_default_run_config_is_allowed():
    assert BranchPolicy().violations(cfg()) == []


def test_run_config_may_tighten():
    tighter = cfg(**{"dp.target-epsilon": 2.0, "dp.max-grad-norm": 0.5, "dp.delta": 1e-7, "dp.noise-multiplier": 1.5})
    assert BranchPolicy().violations(tighter) == []
    assert BranchPolicy(lifetime_budget_epsilon=8.0).budget(3.0) == 3.0   # HQ's smaller budget applies
    assert BranchPolicy(lifetime_budget_epsilon=1.0).budget(1e6) == 1.0   # HQ's larger budget does not
    assert BranchPolicy(lifetime_budget_epsilon=1.0).budget(None) == 1.0


def test_tasks_and_columns():
    policy = BranchPolicy(tasks=("intent",), columns=("text", "label"))
    assert policy.violations(cfg()) == []
    assert requested_columns(cfg(**{"data.label-column": "category"})) == ["text", "category"]
    reasons = policy.violations(cfg(**{"task": "credit", "data.label-column": "Class"}))
    assert any("task=credit" in r for r in reasons)
    assert any("every column" in r for r in reasons)
    assert any("reading column 'Class'" in r for r in policy.violations(cfg(**{"data.label-column": "Class"})))


def test_plan_checks():
    policy = BranchPolicy(min_noise_multiplier=0.5, max_sample_rate=0.1, max_run_epsilon=4.0)
    assert policy.plan_violations(0.6, 0.05, 3.9) == []
    reasons = policy.plan_violations(0.4, 0.2, 4.5)
    assert len(reasons) == 3 and all(r.startswith("policy: ") for r in reasons)
