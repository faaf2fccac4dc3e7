"""SIGTERM to ``fedbank simulate`` mid-run: what it started stops, what it wrote stays, ``--resume`` finishes.

A real run (SuperLink, ``flwr run``, the simulation engine) in a subprocess of
the test.  After round 1 is checkpointed the CLI gets SIGTERM, as a job
scheduler or ``kill`` sends it; every process it had started by then must be
gone within a bounded wait (the SuperLink runs in its own session, so nothing
else would stop it), the ledger written so far must verify, and resuming the
same directory must complete the run with every round ledgered once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil

from tests.conftest import ROOT

SETTINGS = ["--set", "data.records-per-branch=24", "--set", "model.max-length=48", "--set", "train.batch-size=8"]
# Rounds of about 5 s (0.6 s at 24 records, on this box alone): the run is still going when the signal lands, and a
# stop that let the ServerApp go on would show as rounds checkpointed after it, even on a loaded CI machine.
SLOW_ROUNDS = [s.replace("records-per-branch=24", "records-per-branch=800") for s in SETTINGS]


def _fedbank(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0"}
    return subprocess.Popen([sys.executable, "-m", "simulations.cli.main", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _checkpointed_round(out) -> int:
    try:
        return int(json.loads((out / "checkpoint" / "checkpoint.json").read_text())["round"])
    except (OSError, ValueError, KeyError):
        return 0


def _after_round_one(cli: subprocess.Popen, out) -> list[psutil.Process]:
    """Wait until ``simulate`` has checkpointed round 1; the processes it has started by then."""
    deadline = time.monotonic() + 300
    while _checkpointed_round(out) < 1:
        assert cli.poll() is None, f"simulate ended early: {cli.communicate()}"
        assert time.monotonic() < deadline, "round 1 was not checkpointed within 300 s"
        time.sleep(0.2)
    return psutil.Process(cli.pid).children(recursive=True)


def _running(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            pass
    return alive


def test_sigterm_to_simulate_stops_everything_it_started_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    cli = _fedbank("simulate", "--branches", "2", "--rounds", "3", "--epsilon", "6", "--out", str(out), *SLOW_ROUNDS)
    try:
        started = _after_round_one(cli, out)
        superlinks = [p for p in started if any("flower-superlink" in part for part in p.cmdline())]
        assert len(superlinks) == 1, [p.cmdline()[:2] for p in started]
        at_signal = _checkpointed_round(out)
        cli.send_signal(signal.SIGTERM)
        _, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 130 and err.strip().splitlines()[-1] == "fedbank: interrupted", err[-2000:]
    gone_by = time.monotonic() + 30
    while _running(started) and time.monotonic() < gone_by:
        time.sleep(0.2)
    assert not _running(started), [(p.pid, p.cmdline()[:3]) for p in _running(started)]

    # the run ended where it was: the ServerApp did not go on with rounds while it was being stopped, nor
    # ledger as failed the branches whose ClientApps the stop was ending (the round in flight may finish)
    lines = [e for e in map(json.loads, (out / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    assert _checkpointed_round(out) <= at_signal + 1, (at_signal, _checkpointed_round(out))
    assert not [l for l in lines if l.get("kind") == "failure"], [(l["round"], l.get("reason")) for l in lines]

    # what was written stays: the ledger so far verifies, and resuming finishes the run
    assert {(l["round"], l["branch"]) for l in lines} >= {(1, "branch-0"), (1, "branch-1")}
    verify = subprocess.run([sys.executable, "-m", "simulations.cli.main", "ledger", "verify", str(out / "ledger.jsonl"),
                             "--server-key", str(out / "keys" / "server" / "ed25519.pub")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    # 0: verified up to a signed head; 2: verified, with the interrupted round's lines after the last head. Never 1.
    assert verify.returncode in (0, 2) and "FAIL" not in verify.stdout, verify.stdout + verify.stderr
    resumed = _fedbank("simulate", "--resume", str(out))
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, (stdout + stderr)[-3000:]
    final = [e for e in map(json.loads, (out / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    spend = sorted((l["round"], l["branch"]) for l in final if l.get("kind") != "failure")
    assert spend == [(r, f"branch-{b}") for r in (1, 2, 3) for b in (0, 1)], \
        [(l["round"], l["branch"], l.get("kind"), l.get("reason") or l.get("reject_reason")) for l in final]


def test_a_superlink_that_dies_mid_run_leaves_no_helpers_behind(tmp_path):
    """The SuperLink is killed (out of memory, an operator's ``kill -9``): the run fails in one line, nothing lingers.

    Ray's agents run in sessions of their own; once the SuperLink is gone they
    are no longer its descendants, so the runner must have noted them while the
    run went on.
    """
    out = tmp_path / "run"
    cli = _fedbank("simulate", "--branches", "2", "--rounds", "3", "--epsilon", "6", "--out", str(out), *SETTINGS)
    try:
        started = _after_round_one(cli, out)
        superlink = next(p for p in started if any("flower-superlink" in part for part in p.cmdline()))
        helpers = [p for p in started if p.pid != superlink.pid and "flwr" not in " ".join(p.cmdline()[:2])]
        superlink.kill()
        _, err = cli.communicate(timeout=300)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode not in (0, 130), err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("fedbank: error: flower-superlink exited") and f"--resume {out}" in last, err[-2000:]
    gone_by = time.monotonic() + 30
    while _running(started) and time.monotonic() < gone_by:
        time.sleep(0.2)
    assert not _running(started), [(p.pid, p.cmdline()[:3]) for p in _running(started)]
    assert helpers, "the run had no helper processes to check"
