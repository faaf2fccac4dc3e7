"""Faults in a real deployment on 127.0.0.1: the server and a branch are SIGKILLed mid-run.

Real processes (SuperLink, SuperNodes, SuperExec, ``flwr-serverapp``,
``flwr-clientapp``), TLS and SuperNode authentication, loopback only, every
wait bounded.  Each test builds its own :class:`LocalDeployment`, kills only
PIDs it found among that deployment's own processes, and checks afterwards
that every process it started (helpers included) is gone.

* ``test_server_sigkilled_mid_round_resumes_to_the_uninterrupted_ledger``
  (Reliability 4): while round 2 is being trained, the ServerApp process
  (``flwr-serverapp``, forked by the SuperLink's SuperExec) gets SIGKILL.  A new
  ``flwr run`` with the first run's config plus ``resume=true`` (what
  ``fedbank simulate --resume`` builds, :func:`simulations.cli.main.resume_config`)
  against the same SuperLink and SuperNodes finishes the run.  Its ledger holds
  exactly the entries of an uninterrupted run of the same config (a simulation,
  run alongside) -- no round's spend twice, none missing -- every epsilon is what
  a fresh Opacus accountant gives for the ledgered figures, the ledger verifies
  with signatures, and each branch's ``privacy_state.json`` lists every round once.
* ``test_branch_sigkilled_mid_round_restarts_with_its_epsilon_continuing``
  (Compliance 1): while a branch's round-2 ClientApp runs, its SuperNode and all
  its helpers get SIGKILL; round 2 completes without it (Flower answers for the
  dead node once its heartbeats lapse; ``round-timeout`` bounds every round), the
  SuperNode is restarted with the same state directory, trains round 3, and its
  epsilon continues from round 1's -- strictly increasing, equal to the
  accountant over the rounds it trained, never reset and never above its budget.
  ``test_failure_line_names_the_killed_branch`` (same run): the ledger's
  failure line for round 2 names that branch.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT
from tests.deployment_state import checkpoint_round, epsilon_after, ledger, privacy_state, spend, state_rounds
from tests.process_checks import assert_stopped, gone

# Small: 2 branches x ~24 records, 3 rounds, 3-4 DP-SGD steps per round.
BASE = {"num-server-rounds": 3, "data.records-per-branch": 24, "model.max-length": 48, "train.batch-size": 8,
        "dp.target-epsilon": 6.0}
BRANCHES = ["branch-0", "branch-1"]
WAIT = 300.0  # upper bound of any single wait for a state of the run


# --------------------------------------------------------------------------- helpers


def _deployment(out: Path, run_config: dict):
    """A started LocalDeployment (keys, branch data, SuperLink, registered and online SuperNodes) and its run config."""
    from common.config.run import RunConfig
    from simulations.deploy.orchestration import LocalDeployment, prepare_branch_data

    config = {**run_config, "output-dir": str(out), "num-branches": len(BRANCHES),
              "security.keys-dir": str(out / "keys")}
    cfg = RunConfig.from_flower({**RunConfig().to_flower(), **config})
    dep = LocalDeployment(out, BRANCHES)
    try:
        dep.init_keys()
        _, extra = prepare_branch_data(cfg, out, BRANCHES)
        config.update(extra)
        dep.start_superlink()
        dep.register()
        dep.start_supernodes()
        dep.wait_online()
    except BaseException:
        dep.stop_all()
        raise
    return dep, config


def _helpers(proc, marker: str) -> list[psutil.Process]:
    """Live helpers of a ManagedProcess whose command line runs ``marker`` (flwr-serverapp, flwr-clientapp)."""
    found = []
    for child in proc.descendants():
        try:
            if any(marker in part for part in child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.Error:
            pass
    return found


def _wait_until(what: str, predicate, dep, run, timeout: float = WAIT, poll: float = 0.1, skip=()):
    """Poll ``predicate`` until it returns something truthy; fail early if the deployment or the run died."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for proc in [dep.superlink, *dep.supernodes.values()]:
            if proc not in skip:
                proc.check()
        assert run is None or run.streaming, f"the run ended before {what}; see {run.log_path}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s; see {dep.log_dir}"
        time.sleep(poll)


def _family(dep) -> list[tuple[int, float | None, str]]:
    """(pid, start time, name) of every process the deployment started and every helper seen under it."""
    out = []
    for managed in dep.processes():
        managed.descendants()
        info = managed.describe()
        out.append((info["pid"], info["create_time"], managed.name))
        out += [(c["pid"], c["create_time"], managed.name) for c in info["children"]]
    return out


def _sigkill(procs: list[psutil.Process]) -> None:
    """SIGKILL exactly these processes (found under our own deployment) and wait until they are gone."""
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    assert not [p for p in alive if _alive(p)], f"SIGKILL did not end {alive}"


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _create_time(proc: psutil.Process) -> float:
    try:
        return proc.create_time()
    except psutil.Error:
        return 0.0


def _verify_cli(ledger: Path) -> str:
    """``fedbank ledger verify LEDGER --server-key KEY`` (the server key the run's keys hold)."""
    server_key = ledger.parent / "keys" / "server" / "ed25519.pub"
    done = subprocess.run([sys.executable, "-m", "simulations.cli.main", "ledger", "verify", str(ledger),
                           "--server-key", str(server_key)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def _final_status(dep, run_id: int, timeout: float = 90.0) -> tuple[str, str]:
    from simulations.flower_cli import run_status

    deadline = time.monotonic() + timeout
    status = run_status(dep.superlink, run_id)
    while status[0] != "finished" and time.monotonic() < deadline:
        time.sleep(1.0)
        status = run_status(dep.superlink, run_id)
    return status


# --------------------------------------------------------------------------- Reliability 4: server SIGKILL + resume


RESUME_RUN = {**BASE, "min-train-branches": 2}


def test_server_sigkilled_mid_round_resumes_to_the_uninterrupted_ledger(tmp_path):
    from simulations.cli.main import resume_config
    from simulations.local.runner import simulate

    started = time.monotonic()
    out = tmp_path / "deployed"
    # The uninterrupted run of the same config, alongside (its own SuperLink and output directory).
    pool = ThreadPoolExecutor(max_workers=1)
    reference = pool.submit(simulate, ROOT, tmp_path / "uninterrupted", num_branches=len(BRANCHES),
                            run_config=RESUME_RUN, timeout=600)
    family: list = []
    try:
        dep, config = _deployment(out, RESUME_RUN)
        with dep:
            first = dep.start_run(config)
            first_id = first.wait_started()

            # Round 1 is complete (checkpointed) and round 2 is being trained: a branch has spent round 2.
            def round_two_in_flight():
                return checkpoint_round(out) >= 1 and any(2 in state_rounds(out, b) for b in BRANCHES)

            _wait_until("round 2 in training", round_two_in_flight, dep, first)
            servers = _helpers(dep.superlink, "flwr-serverapp")
            assert len(servers) == 1, f"expected one ServerApp process, found {[p.pid for p in servers]}"
            _sigkill(servers)
            killed_pid = servers[0].pid
            at_kill = {"ledger": len(ledger(out)), "checkpoint": checkpoint_round(out),
                       "branch_rounds": {b: state_rounds(out, b) for b in BRANCHES}}
            assert at_kill["checkpoint"] < 3 and at_kill["ledger"] < 6, at_kill  # truly mid-run
            first.stop()  # the CLI that streamed the killed run's log; the run itself is dead already

            resumed = dep.start_run(resume_config(out))
            result = dep.wait_run(resumed, 500)  # raises unless finished:completed
            killed_status = _final_status(dep, first_id)
            family = _family(dep)
        assert_stopped(family)
        reference_dir = reference.result(timeout=600).output_dir
    finally:
        pool.shutdown(wait=True)

    assert result.run_id != first_id
    assert killed_status == ("finished", "failed"), killed_status
    assert not psutil.pid_exists(killed_pid) or gone(killed_pid, None)

    # the finished ledger: rounds 1..3 x branches, each exactly once, one fedbank run across the crash
    lines = ledger(out)
    assert sorted((l["round"], l["branch"]) for l in lines) == [(r, b) for r in (1, 2, 3) for b in BRANCHES]
    assert {l["run_id"] for l in lines} == {first_id}
    assert all(l["status"] == "trained" and l["aggregated"] is True for l in lines)
    # ... exactly the entries of the uninterrupted run of the same config
    uninterrupted = ledger(reference_dir)
    assert len(uninterrupted) == len(lines) == 6
    assert spend(lines) == spend(uninterrupted)
    # ... every epsilon is a fresh accountant's over that branch's ledgered rounds 1..r (nothing counted twice)
    for branch in BRANCHES:
        mine = sorted((l for l in lines if l["branch"] == branch), key=lambda l: l["round"])
        for r in range(1, 4):
            assert mine[r - 1]["epsilon"] == pytest.approx(epsilon_after(mine[:r]), rel=1e-9)
        assert mine[0]["epsilon"] < mine[1]["epsilon"] < mine[2]["epsilon"] <= mine[2]["budget_epsilon"]
    # the lines of the killed server's unfinished round were set aside, not kept
    unfinished = out / "ledger.unfinished.jsonl"
    set_aside = [json.loads(l) for l in unfinished.read_text().splitlines()] if unfinished.exists() else []
    assert len(set_aside) == at_kill["ledger"] - 2 * at_kill["checkpoint"]
    assert all(l["round"] == at_kill["checkpoint"] + 1 for l in set_aside)

    # `fedbank ledger verify --require-signatures`
    verdict = _verify_cli(out / "ledger.jsonl")
    assert verdict.startswith("OK: every line verified") and "branch-0 x3, branch-1 x3" in verdict, verdict

    # each branch spent each round once
    for branch in BRANCHES:
        state = privacy_state(out, branch)
        assert [r["round"] for r in state["rounds"]] == [1, 2, 3]
        mine = sorted((l for l in lines if l["branch"] == branch), key=lambda l: l["round"])
        assert sum(int(h[2]) for h in state["history"]) == sum(l["steps"] for l in mine)
        assert [r["epsilon"] for r in state["rounds"]] == pytest.approx([l["epsilon"] for l in mine], rel=1e-9)
        assert state["history"] == privacy_state(reference_dir, branch)["history"]

    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2, 3]
    assert metrics["resumed_after"] == [at_kill["checkpoint"]]
    print(f"\n[server SIGKILL] ServerApp pid {killed_pid} killed at {at_kill}; resumed run {result.run_id} "
          f"finished:completed; killed run {killed_status[0]}:{killed_status[1]}; {len(set_aside)} line(s) set aside; "
          f"epsilons " + ", ".join(f"{l['branch']}@{l['round']}={l['epsilon']:.4f}" for l in sorted(
              lines, key=lambda l: (l['branch'], l['round']))) + f"; {verdict}; {time.monotonic() - started:.0f} s")


# --------------------------------------------------------------------------- Compliance 1: branch SIGKILL + restart


# Flower 1.39 refuses to re-activate a SuperNode's key while the SuperLink still counts it online
# (until 2 missed 30 s heartbeats: `[code: 2004] Failed to activate SuperNode`), so a crashed branch
# can only come back once it is marked offline; that same moment ends the round it was sampled for
# (Flower answers for it: node unavailable).  min-train-branches = the number of branches makes
# round 3 wait until the restarted branch is online (with fewer, round 3 would start with whoever is
# online at that instant, a race the restarted branch usually loses); round 2, with one update only,
# still completes (ledgered, not aggregated), and the victim is restarted only after it has.
# round-timeout bounds every round.
# Eight local epochs: the victim's round takes long enough to be killed mid-training on a fast, idle machine too.
BRANCH_RUN = {**BASE, "min-train-branches": 2, "round-timeout": 150.0, "train.local-epochs": 8}
VICTIM = "branch-1"


def _node_status(dep, node_id: int) -> str:
    from simulations.deploy.superlink import list_supernodes

    return next((str(n.get("status")) for n in list_supernodes(dep.superlink) if int(n["node-id"]) == node_id), "")


@dataclass
class BranchCrash:
    out: Path
    lines: list[dict]
    old_pid: int
    new_pid: int
    node_id: int
    helpers: int
    epsilon_at_kill: float
    rounds_at_kill: list[int]
    offline_after: float
    run_id: int
    seconds: float


@pytest.fixture(scope="module")
def branch_crash(tmp_path_factory) -> BranchCrash:
    """A 2-branch deployment in which branch-1 is SIGKILLed during round 2 and restarted; run once per module."""
    started = time.monotonic()
    out = tmp_path_factory.mktemp("branch-crash") / "deployed"
    dep, config = _deployment(out, BRANCH_RUN)
    with dep:
        run = dep.start_run(config)
        run.wait_started()
        old = dep.supernodes[VICTIM]
        old_node_id = old.node_id
        assert old_node_id is not None

        # round 1 ledgered for both branches, then the victim's round-2 ClientApp is running (and has spent nothing yet)
        _wait_until("round 1 in the ledger", lambda: len(ledger(out)) >= 2, dep, run)
        round_one_done = time.time()

        def victim_training():
            apps = [(p, _create_time(p)) for p in _helpers(old, "flwr-clientapp")]
            apps = [(p, t) for p, t in apps if t > round_one_done]
            return [p for p, _ in apps] if apps and time.time() - apps[0][1] >= 3.0 else None

        apps = _wait_until("the victim's round-2 ClientApp", victim_training, dep, run)
        assert 2 not in state_rounds(out, VICTIM) and len(ledger(out)) == 2
        helpers = [p for p in old.descendants() if _alive(p)]
        # the branch machine "crashes": SIGKILL to the SuperNode (our child: reaped by its Popen), its SuperExec, its ClientApp
        old.popen.send_signal(signal.SIGKILL)
        _sigkill(helpers)
        old.popen.wait(timeout=10)
        killed_at = time.monotonic()
        assert old.returncode == -signal.SIGKILL
        epsilon_at_kill = privacy_state(out, VICTIM)["rounds"][-1]["epsilon"]
        rounds_at_kill = state_rounds(out, VICTIM)

        _wait_until("the SuperLink to mark the killed SuperNode offline", lambda: _node_status(dep, old_node_id) != "online",
                    dep, run, timeout=120, poll=1.0, skip=(old,))
        offline_after = time.monotonic() - killed_at
        # Round 2 ends while the victim is offline (Flower answers for it: node unavailable).  Restarting it before
        # the ServerApp has polled that answer would bring the node back online first, leave its round-2 message
        # unanswered and make round 2 wait out round-timeout instead.
        _wait_until("round 2 to end without the victim", lambda: any(l["round"] == 2 for l in ledger(out)),
                    dep, run, timeout=BRANCH_RUN["round-timeout"] + 30, poll=0.5, skip=(old,))
        new = dep.start_supernode(VICTIM)  # same keys, same state directory
        assert new.pid != old.pid and new.node_config["state-dir"] == old.node_config["state-dir"]
        _wait_until("the restarted SuperNode to come online", lambda: _node_status(dep, old_node_id) == "online",
                    dep, run, timeout=120, poll=1.0)
        result = dep.wait_run(run, 600)  # raises unless finished:completed
        family = _family(dep) + [(p.pid, None, VICTIM) for p in apps]
    assert_stopped(family)
    return BranchCrash(out, ledger(out), old.pid, new.pid, old_node_id, len(helpers), epsilon_at_kill, rounds_at_kill,
                       offline_after, result.run_id, time.monotonic() - started)


def test_branch_sigkilled_mid_round_restarts_with_its_epsilon_continuing(branch_crash):
    crash = branch_crash
    out, lines = crash.out, crash.lines
    spend = [l for l in lines if l.get("kind") != "failure"]
    # round 2 completed without the victim (Flower answered for it: node unavailable); it was back for round 3
    assert sorted((l["round"], l["branch"]) for l in spend) == [
        (1, "branch-0"), (1, VICTIM), (2, "branch-0"), (3, "branch-0"), (3, VICTIM)]
    assert all(l["status"] == "trained" for l in spend)
    assert [l["aggregated"] for l in sorted(spend, key=lambda l: (l["round"], l["branch"]))] == [True, True, False, True, True]
    failures = [l for l in lines if l.get("kind") == "failure"]
    assert [(l["round"], l["status"]) for l in failures] == [(2, "branch-failed")]
    assert "Node Unavailable" in failures[0]["reason"]
    verdict = _verify_cli(out / "ledger.jsonl")
    assert verdict.startswith("OK: every line verified") and "signed head" in verdict, verdict

    mine = sorted((l for l in spend if l["branch"] == VICTIM), key=lambda l: l["round"])
    eps = [l["epsilon"] for l in mine]
    assert crash.rounds_at_kill == [1] and crash.epsilon_at_kill == pytest.approx(eps[0], rel=1e-12)
    # continuing, never reset: strictly increasing, and round 3 composes on top of round 1
    assert all(a < b for a, b in zip(eps, eps[1:])), eps
    assert eps[1] == pytest.approx(epsilon_after(mine), rel=1e-9)
    assert eps[1] > epsilon_after(mine[1:]) * (1 + 1e-6)  # a reset accountant would give round 1's value again
    # never above its budget
    assert all(l["epsilon"] <= l["budget_epsilon"] for l in mine)
    # its own persisted accountant covers every round it trained, once each, and agrees with the ledger
    state = privacy_state(out, VICTIM)
    assert [r["round"] for r in state["rounds"]] == [1, 3]
    assert [r["epsilon"] for r in state["rounds"]] == pytest.approx(eps, rel=1e-9)
    assert sum(int(h[2]) for h in state["history"]) == sum(l["steps"] for l in mine)
    # the branch that stayed up trained all three rounds
    assert state_rounds(out, "branch-0") == [1, 2, 3]
    assert (out / "logs" / f"{VICTIM}.log").read_text().count(f"SuperNode ID: {crash.node_id}") == 2
    print(f"\n[branch SIGKILL] {VICTIM}: SuperNode pid {crash.old_pid} + {crash.helpers} helper(s) killed during round 2 "
          f"(epsilon {crash.epsilon_at_kill:.4f} after round 1); offline at the SuperLink {crash.offline_after:.0f} s later; "
          f"restarted as pid {crash.new_pid}, node id {crash.node_id}; run {crash.run_id} finished:completed; "
          f"{VICTIM} epsilon by round " + ", ".join(f"{l['round']}={l['epsilon']:.4f}" for l in mine)
          + f" (budget {mine[0]['budget_epsilon']}); branch-0 "
          + ", ".join(f"{l['round']}={l['epsilon']:.4f}" for l in spend if l["branch"] == "branch-0")
          + f"; failure line names {failures[0]['failed_branch']!r}; {verdict}; {crash.seconds:.0f} s")


def test_failure_line_names_the_killed_branch(branch_crash):
    failures = [l for l in branch_crash.lines if l.get("kind") == "failure"]
    assert [l["failed_branch"] for l in failures] == [VICTIM]
