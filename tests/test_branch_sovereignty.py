"""Branch sovereignty at the ClientApp: the branch's policy, not HQ's run config, decides.

Each test reproduces an attack from the branch-sovereignty issue against the real
ClientApp (in-process, real keys, real Opacus accountant, messages signed by the
real server code) and checks the branch's answer.
"""

from __future__ import annotations

import json
import traceback

import pytest

from client.budget import STATE_FILE
from common.config.policy import POLICY_FILE, BranchPolicy
from common.config.run import RunConfig
from common.errors import BranchFailure, ConfigError
from tests.branch_calls import call_branch, claim_of, make_keys, train_message

pytestmark = pytest.mark.usefixtures("server_task_identity")  # the server process creates the messages
SMALL = {"data.records-per-branch": 24, "model.max-length": 32, "train.batch-size": 8, "num-server-rounds": 3}


def config(tmp_path, **overrides) -> RunConfig:
    return RunConfig.from_flower({**RunConfig().to_flower(), **SMALL, "output-dir": str(tmp_path / "run"), **overrides})


def state_of(cfg: RunConfig, branch: str = "branch-0") -> dict:
    path = cfg.output_dir / "branches" / branch / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("overrides, rule", [
    ({"dp.enabled": False}, "policy: dp.enabled=false is not allowed by this branch"),
    ({"security.envelope": False}, "policy: security.envelope=false is not allowed by this branch"),
    ({"dp.noise-multiplier": 0.05, "dp.budget-epsilon": 1e6}, "policy: dp.noise-multiplier=0.05 is not allowed"),
])
def test_hq_cannot_loosen_the_branch_policy(tmp_path, overrides, rule):
    cfg = config(tmp_path, **overrides)
    make_keys(cfg, 2)
    node = {"branch-id": "branch-0", "data-path": str(tmp_path / "never-read.csv"),
            "state-dir": str(tmp_path / "branch-0")}
    reply = call_branch(cfg, train_message(cfg, 1), node_config=node)  # the data file does not exist: not read
    claim = claim_of(reply)
    assert claim["status"] == "refused" and claim["reason"].startswith(rule), claim
    assert claim["examples"] == 0 and claim["steps"] == 0
    assert reply.content["branch"]["signature"], "the refusal is signed by the branch"
    assert not (tmp_path / "branch-0" / STATE_FILE).exists(), "nothing was spent"
    assert (tmp_path / "branch-0" / POLICY_FILE).is_file(), "the default policy was written at first start"


def test_branch_budget_is_its_own(tmp_path):
    cfg = config(tmp_path, **{"dp.budget-epsilon": 1e6})
    make_keys(cfg, 2)
    state = tmp_path / "run" / "branches" / "branch-0"
    state.mkdir(parents=True)
    (state / POLICY_FILE).write_text("[dp]\nlifetime-budget-epsilon = 1.0\n")
    claim = claim_of(call_branch(cfg, train_message(cfg, 1)))
    assert claim["budget_epsilon"] == 1.0
    assert claim["status"] in ("budget-exhausted", "refused"), claim  # epsilon 8 planned over 3 rounds > 1.0


def test_replay_of_an_earlier_round_spends_nothing(tmp_path):
    cfg = config(tmp_path)
    make_keys(cfg, 2)
    round1 = train_message(cfg, 1)
    assert claim_of(call_branch(cfg, round1))["status"] == "trained"
    assert claim_of(call_branch(cfg, train_message(cfg, 2)))["status"] == "trained"
    spent = state_of(cfg)
    claim = claim_of(call_branch(cfg, round1))  # the server-signed message of round 1, replayed after round 2
    assert claim["status"] == "refused" and claim["reason"].startswith("replay: "), claim
    assert state_of(cfg) == spent, "a replay must not spend"


def test_resent_round_is_answered_from_the_cache(tmp_path):
    cfg = config(tmp_path)
    make_keys(cfg, 2)
    msg = train_message(cfg, 1)
    first = claim_of(call_branch(cfg, msg))
    spent = state_of(cfg)
    assert claim_of(call_branch(cfg, msg)) == first and state_of(cfg) == spent


PLANTED = ["Zhang Wei", "13812345678", "6222020200112233445", "zhang.wei@example.com", "110101199003071234",
           "Beijing Chaoyang Road 88"]


def planted_csv(path, rows: int = 30) -> str:
    lines = ["text,label,remark"]
    for i in range(rows):
        label = f"{PLANTED[i % len(PLANTED)]} {i % 2}"
        lines.append(f"My name is {PLANTED[0]} phone {PLANTED[1]} card {PLANTED[2]} {i},{label},{PLANTED[4]} {PLANTED[3]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


MISCONFIGURED = {
    "label column is the text column": {"data.label-column": "text", "data.labels": "a,b"},
    "label set mismatch": {"data.labels": "yes,no"},
    "wrong positive label": {"task": "credit", "data.positive-label": "bad", "data.labels": ""},
    "wrong task": {"task": "chat", "data.labels": ""},
    "missing column": {"data.text-column": "message", "data.labels": "a,b"},
    "empty file": {"data.labels": "a,b"},
    "no header row": {"data.labels": "a,b"},  # its first row of cells is read as the header
    "duplicated header": {"data.labels": "a,b"},
}


@pytest.mark.parametrize("case", sorted(MISCONFIGURED))
def test_no_raw_value_leaves_in_an_error(tmp_path, case):
    cfg = config(tmp_path, **MISCONFIGURED[case])
    make_keys(cfg, 2)
    data = tmp_path / "branch.csv"
    if case == "empty file":
        data.write_text("text,label,remark\n")
    else:
        planted_csv(data)
    if case == "no header row":
        data.write_text(data.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    if case == "duplicated header":
        data.write_text(data.read_text(encoding="utf-8").replace("text,label,remark", "text,label,text", 1), encoding="utf-8")
    node = {"branch-id": "branch-0", "data-path": str(data), "state-dir": str(tmp_path / "branch-0")}
    with pytest.raises(BranchFailure) as err:
        call_branch(cfg, train_message(cfg, 1), node_config=node)
    sent = "".join(traceback.format_exception(err.value))  # what Flower would carry to HQ
    for value in PLANTED:
        for piece in (value, value.split()[0]):
            assert piece not in sent, f"{case}: {piece!r} left the branch in: {sent}"
    local = (tmp_path / "branch-0" / "branch-errors.log").read_text()
    assert "Traceback" in local, "the full error stays in the branch's own log"


def test_policy_file_errors_leave_state_untouched(tmp_path):
    cfg = config(tmp_path)
    make_keys(cfg, 2)
    state = tmp_path / "run" / "branches" / "branch-0"
    state.mkdir(parents=True)
    (state / POLICY_FILE).write_text("[dp]\nlifetime-budget = 3\n")
    with pytest.raises(BranchFailure, match="unknown key 'dp.lifetime-budget'"):
        call_branch(cfg, train_message(cfg, 1))
    assert not (state / STATE_FILE).exists()


def test_fault_injection_needs_the_branch_policy(tmp_path):
    cfg = config(tmp_path)
    make_keys(cfg, 2)
    state = tmp_path / "run" / "branches" / "branch-0"
    state.mkdir(parents=True)
    (state / POLICY_FILE).write_text(BranchPolicy(fault_injection=True, fail_before_train=1.0).to_toml())
    with pytest.raises(BranchFailure, match="injected fault: branch-0 fails round 1 before train"):
        call_branch(cfg, train_message(cfg, 1))


def test_deployed_branch_needs_its_own_state_dir(tmp_path):
    """HQ's run config (output-dir) must never decide where a deployed branch keeps its budget and state."""
    cfg = config(tmp_path)
    make_keys(cfg, 2)
    node = {"branch-id": "branch-0", "data-path": str(tmp_path / "never-read.csv")}
    with pytest.raises(ConfigError, match="node config of 'branch-0' has no 'state-dir'"):
        call_branch(cfg, train_message(cfg, 1), node_config=node)
    assert not (tmp_path / "run" / "branches").exists(), "nothing written under HQ's output-dir"
