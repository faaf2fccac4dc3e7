"""The README's "Deploy across branches", step by step, on separate hosts (Linux network namespaces).

HQ and two branches each get a network namespace with its own address
(:class:`tests.netns_hosts.NetnsLan`); branches reach HQ as ``hq.bank.test``.
Every host has its own directory standing in for its ``/srv/fedbank``, and an
offline key machine and the release approver have theirs, so a file the
README's table forgets is missing where it is needed.  The commands are the
README's own (:data:`README_COMMANDS`, ``/srv/fedbank`` replaced by the
host's directory), run as ``ip netns exec NS python -m simulations.cli ...``:
keys born at each branch, HQ's keys made with the branches' bundles, files
copied per the table, ``deploy superlink`` at HQ, ``deploy branch`` at each
branch, a signed ``deploy run`` at HQ, ``ledger verify`` and ``report`` at HQ
with what HQ holds, ``branch policy`` at each branch, then the stop in the
README's order, which must leave no process.  A run without HQ's held-out
file must fail and ``deploy run`` must say so in its exit code.

Skipped unless root with ``ip netns`` (CI runs it as root).  Every namespace,
veth, ``/etc/netns`` entry and process it made is removed, also on failure.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.netns_hosts import HQ_NAME, NetnsLan, netns_unavailable

SRV = "/srv/fedbank"
APPROVER = "/media/approver"
LABELS = ("card", "loan", "transfer")
POLICY = "[dp]\nlifetime-budget-epsilon = 6.0\n"

# The README's commands, verbatim (branch 0 shown; branch K is the same with K).
README_COMMANDS = {
    "branch_init": "fedbank keys branch-init --id 0 --out /srv/fedbank/keys",
    "keys_init": "fedbank keys init --branches 2 --out /srv/fedbank/keys --host hq.bank.test "
                 "--import-branch /srv/fedbank/bundles",
    "superlink": "fedbank deploy superlink --keys /srv/fedbank/keys --state /srv/fedbank/superlink",
    "branch": "fedbank deploy branch --id 0 --keys /srv/fedbank/keys --data /srv/fedbank/data/branch-0.csv "
              "--policy /srv/fedbank/branch-policy.toml --superlink hq.bank.test:9092 --state /srv/fedbank/state",
    "run": "fedbank deploy run --keys /srv/fedbank/keys --signing-key /media/approver/ed25519.key "
           "--state /srv/fedbank/runs --rounds 1 --set num-branches=2 --set min-train-branches=2 "
           "--set output-dir=/srv/fedbank/run1 --set security.keys-dir=/srv/fedbank/keys "
           "--set data.labels=card,loan,transfer --set data.source=/srv/fedbank/data/heldout.csv "
           "--set dp.target-epsilon=3",
    "verify": "fedbank ledger verify /srv/fedbank/run1/ledger.jsonl --server-key /srv/fedbank/keys/server/ed25519.pub",
    "report": "fedbank report /srv/fedbank/run1 --out /srv/fedbank/run1/report.html "
              "--server-key /srv/fedbank/keys/server/ed25519.pub",
    "policy": "fedbank branch policy --state /srv/fedbank/state --policy /srv/fedbank/branch-policy.toml",
}
# Appended to the README's run: a small, fast run of the same shape (any run-config key may be added).
SMALL = ["--set", "model.max-length=48", "--set", "train.batch-size=8", "--timeout", "400"]

# The README's table "What each host needs": what is copied to each host from the offline key machine.
HOST_FILES = {
    "HQ": ["manifest.json", "ca/ca.crt", "superlink/server.crt", "superlink/server.key", "server/x25519.key",
           "server/ed25519.key", "server/ed25519.pub", "branches/*/supernode_auth.pub", "branches/*/ed25519.pub"],
    "branch K": ["manifest.json", "ca/ca.crt", "server/x25519.pub", "server/ed25519.pub", "app-signing/ed25519.pub"],
    "release approver": ["app-signing/ed25519.key"],
}
BRANCH_BORN = ["branches/branch-K/supernode_auth.key", "branches/branch-K/ed25519.key"]  # made at the branch


def _argv(command: str, root: Path, branch: int = 0, approver: Path | None = None) -> list[str]:
    """A README command as this test runs it: ``/srv/fedbank`` -> the host's directory, branch 0 -> ``branch``."""
    text = command.replace("--id 0", f"--id {branch}").replace("branch-0.csv", f"branch-{branch}.csv")
    text = text.replace(SRV, str(root)).replace(APPROVER, str(approver or root))
    words = shlex.split(text)
    assert words[0] == "fedbank"
    return [sys.executable, "-m", "simulations.cli", *words[1:]]


def _write_data(path: Path, rows: int, seed: int) -> None:
    words = {"card": "my card was blocked at the shop", "loan": "what rate applies to my home loan",
             "transfer": "the transfer to my landlord did not arrive"}
    lines = ["text,label"]
    for i in range(rows):
        label = LABELS[(i + seed) % len(LABELS)]
        lines.append(f"{words[label]} (case {seed * 1000 + i}),{label}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _copy(src: Path, dst: Path, patterns: list[str]) -> None:
    """Copy exactly the table's files (globs expanded) from ``src`` to ``dst``."""
    for pattern in patterns:
        found = glob(str(src / pattern))
        assert found, f"{pattern} not in {src}"
        for name in found:
            target = dst / Path(name).relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(name, target)


@dataclass
class Hosts:
    """What the README's steps did, for the checks below."""

    root: Path
    steps: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, int | None] = field(default_factory=dict)
    left_running: dict[str, list[int]] = field(default_factory=dict)
    seconds: list[tuple[str, float]] = field(default_factory=list)


class _Runner:
    def __init__(self, lan: NetnsLan, tmp: Path) -> None:
        self.lan, self.tmp = lan, tmp
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "FLWR_TELEMETRY_ENABLED": "0"}
        self.serving: dict[str, tuple[subprocess.Popen, Path]] = {}
        self.seconds: list[tuple[str, float]] = []

    def run(self, ns: str, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        start = time.monotonic()
        done = subprocess.run(self.lan.exec_argv(ns, argv), cwd=self.tmp, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        self.seconds.append((" ".join(argv[3:5]), round(time.monotonic() - start, 1)))
        return done

    def serve(self, name: str, ns: str, argv: list[str]) -> None:
        log = self.tmp / f"{name}.out"
        with log.open("w") as out:
            popen = subprocess.Popen(self.lan.exec_argv(ns, argv), cwd=self.tmp, env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.serving[name] = (popen, log)

    def wait_for(self, name: str, pattern: str, timeout: float = 120) -> None:
        popen, log = self.serving[name]
        start = time.monotonic()
        deadline = start + timeout
        while not re.search(pattern, log.read_text(errors="replace")):
            assert popen.poll() is None, f"{name} exited ({popen.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{name}: no {pattern!r} within {timeout:.0f} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        self.seconds.append((f"{name} ready", round(time.monotonic() - start, 1)))

    def stop(self, name: str) -> int | None:
        """Ctrl-C, as the README says; the exit code (None if it had to be killed)."""
        popen, _ = self.serving[name]
        popen.send_signal(signal.SIGINT)
        try:
            return popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=10)
            return None


def _keys(runner: _Runner, lan: NetnsLan, roots: dict[str, Path], hosts: Hosts) -> None:
    """Step 1 and 2: keys born where they stay, HQ's made offline with the bundles, copied per the table."""
    offline = roots["offline"]
    for k, ns in enumerate(lan.branches):
        hosts.steps[f"branch_init-{k}"] = runner.run(ns, _argv(README_COMMANDS["branch_init"], roots[f"b{k}"], k))
        _copy(roots[f"b{k}"] / "keys", offline / "bundles", [f"branch-{k}.pub.json"])
    hosts.steps["keys_init"] = runner.run(lan.hq, _argv(README_COMMANDS["keys_init"], offline))
    made = offline / "keys"
    _copy(made, roots["hq"] / "keys", HOST_FILES["HQ"])
    for k in range(len(lan.branches)):
        _copy(made, roots[f"b{k}"] / "keys", HOST_FILES["branch K"])
    _copy(made / "app-signing", roots["approver"], ["ed25519.key"])


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Hosts:
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"separate-host deployment test: {reason}")
    tmp = tmp_path_factory.mktemp("netns")
    roots = {name: tmp / name for name in ("offline", "hq", "b0", "b1", "approver")}
    for path in roots.values():
        path.mkdir()
    result = Hosts(tmp)
    with NetnsLan(branches=2) as lan:
        runner = _Runner(lan, tmp)
        try:
            _keys(runner, lan, roots, result)
            for k in range(2):
                _write_data(roots[f"b{k}"] / "data" / f"branch-{k}.csv", rows=32, seed=k + 1)
                (roots[f"b{k}"] / "branch-policy.toml").write_text(POLICY, encoding="utf-8")
            _write_data(roots["hq"] / "data" / "heldout.csv", rows=30, seed=9)
            runner.serve("superlink", lan.hq, _argv(README_COMMANDS["superlink"], roots["hq"]))
            runner.wait_for("superlink", r"Ctrl-C stops the SuperLink")
            for k, ns in enumerate(lan.branches):
                runner.serve(f"branch-{k}", ns, _argv(README_COMMANDS["branch"], roots[f"b{k}"], k))
            for k in range(2):
                runner.wait_for(f"branch-{k}", rf"branch-{k} connected to hq\.bank\.test:9092 as SuperNode \d+")
            for port in (9092, 9093):  # a branch reaches HQ's Fleet API; the Control API is HQ's loopback only
                result.steps[f"reach-{port}"] = runner.run(
                    lan.branches[0], ["timeout", "5", "bash", "-c", f"echo > /dev/tcp/{HQ_NAME}/{port}"], timeout=30)
            run = _argv(README_COMMANDS["run"], roots["hq"], approver=roots["approver"]) + SMALL
            result.steps["run"] = runner.run(lan.hq, run, timeout=450)
            no_heldout = README_COMMANDS["run"].replace(" --set data.source=/srv/fedbank/data/heldout.csv", "")
            no_heldout = no_heldout.replace("/srv/fedbank/run1", "/srv/fedbank/run-no-heldout")
            result.steps["run_without_heldout"] = runner.run(
                lan.hq, _argv(no_heldout, roots["hq"], approver=roots["approver"]) + SMALL, timeout=300)
            for name in ("verify", "report"):
                result.steps[name] = runner.run(lan.hq, _argv(README_COMMANDS[name], roots["hq"]))
            for k, ns in enumerate(lan.branches):
                result.steps[f"policy-{k}"] = runner.run(ns, _argv(README_COMMANDS["policy"], roots[f"b{k}"], k))
            for name in ("branch-0", "branch-1", "superlink"):  # the README's order: branches, then HQ
                result.stopped[name] = runner.stop(name)
            time.sleep(1)
            result.left_running = {ns: lan.pids(ns) for ns in lan.namespaces if lan.pids(ns)}
        finally:
            for name, (popen, log) in runner.serving.items():
                if popen.poll() is None:
                    popen.kill()
                    popen.wait(timeout=10)
                result.logs[name] = log.read_text(errors="replace")
            result.seconds = runner.seconds
            print(f"seconds per step: {runner.seconds}")
    return result


def _ok(step: subprocess.CompletedProcess) -> str:
    assert step.returncode == 0, f"exit {step.returncode}\n{step.stdout[-3000:]}\n{step.stderr[-3000:]}"
    return step.stdout + step.stderr


def test_keys_are_born_where_they_stay_and_hq_holds_public_keys_only(hosts):
    for k in range(2):
        assert "hand HQ this public-key bundle" in _ok(hosts.steps[f"branch_init-{k}"])
    text = _ok(hosts.steps["keys_init"])
    assert "SANs: hq.bank.test, 127.0.0.1, localhost" in text, text
    hq = hosts.root / "hq" / "keys"
    assert not list(hq.glob("branches/*/*.key")) and not (hq / "ca" / "ca.key").exists()
    assert not (hq / "app-signing" / "ed25519.key").exists()


def test_the_readme_run_completes_across_the_hosts(hosts):
    text = _ok(hosts.steps["run"])
    assert "finished:completed" in text, text[-3000:]
    out = hosts.root / "hq" / "run1"
    metrics = json.loads((out / "metrics.json").read_text())
    rounds = {r["round"]: r for r in metrics["rounds"]}
    assert set(rounds) >= {1} and set(rounds[1]["branches"]) == {"branch-0", "branch-1"}
    lines = [json.loads(l) for l in (out / "ledger.jsonl").read_text().splitlines() if l.strip()]
    trained = sorted((l["round"], l["branch"]) for l in lines if l.get("status") == "trained")
    assert trained == [(1, "branch-0"), (1, "branch-1")]
    for k in range(2):  # the branch's log and privacy state stay in its --state, at the branch
        state = hosts.root / f"b{k}" / "state"
        assert (state / "supernode.log").is_file() and (state / "privacy_state.json").is_file()
        assert not (out / "branches" / f"branch-{k}" / "privacy_state.json").exists()
    assert (hosts.root / "hq" / "superlink" / "superlink.log").is_file()
    assert (hosts.root / "hq" / "runs" / "flwr-run.log").is_file()


def test_a_branch_reaches_hqs_fleet_api_but_not_its_control_api(hosts):
    _ok(hosts.steps["reach-9092"])
    assert hosts.steps["reach-9093"].returncode != 0


def test_a_run_without_hqs_held_out_file_fails_and_says_so_in_its_exit_code(hosts):
    step = hosts.steps["run_without_heldout"]
    assert step.returncode != 0, step.stdout[-3000:]
    assert "finished:failed" in step.stderr, step.stderr[-3000:]


def test_hq_verifies_the_ledger_and_writes_the_report_with_what_it_holds(hosts):
    assert _ok(hosts.steps["verify"]).startswith("OK: every line verified")
    _ok(hosts.steps["report"])
    assert "branch-1" in (hosts.root / "hq" / "run1" / "report.html").read_text()


def test_each_branch_enforces_its_own_policy_and_keeps_its_spend(hosts):
    for k in range(2):
        assert "lifetime budget epsilon 6" in hosts.logs[f"branch-{k}"]
        text = _ok(hosts.steps[f"policy-{k}"])
        spent = re.search(r"spent so far: epsilon ([\d.]+) of 6 over 1 round\(s\)", text)
        assert spent and 0 < float(spent.group(1)) <= 3.0 + 1e-6, text


def test_stopping_in_the_readme_order_leaves_no_process(hosts):
    assert hosts.stopped == {"branch-0": 0, "branch-1": 0, "superlink": 0}, hosts.logs
    assert not hosts.left_running, hosts.left_running
    assert "SuperLink stopped" in hosts.logs["superlink"]
    assert all(f"SuperNode of branch-{k} stopped" in hosts.logs[f"branch-{k}"] for k in range(2))


def _readme_deploy_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Deploy across branches", 1)[1].split("\n## ", 1)[0]
    return " ".join(section.replace("\\\n", " ").split())


def test_the_readme_says_what_this_test_does():
    section = _readme_deploy_section()
    for name, command in README_COMMANDS.items():
        assert command in section, f"README's deploy section lacks the {name} command: {command}"
    for host, files in HOST_FILES.items():
        row = re.search(rf"\| {host} \| ([^|]+) \|", section)
        assert row, f"no row for {host} in the README's table"
        listed = re.findall(r"`([^`]+)`", row.group(1))
        assert listed == (BRANCH_BORN if host == "branch K" else []) + files, (host, listed)
    assert POLICY.replace("\n", " ").strip() in section
