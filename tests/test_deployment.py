"""Real deployment on 127.0.0.1: a SuperLink and SuperNodes over TLS with SuperNode authentication.

Real processes and sockets, loopback only, every wait bounded.  Two
module-scoped fixtures do the slow work once each:

* ``deployed``: ``fedbank deploy local --branches 3 --rounds 2`` as a
  subprocess (small config), then its outputs, logs and processes are checked;
* ``auth_link``: one SuperLink with ``--enable-supernode-auth`` where only
  branch-0's key is registered, for the refusal and TLS tests.

Each test checks that the processes it (or its fixture) started are gone
afterwards, by PID and start time, and touches no other process.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from simulations.cli.main import build_parser, main
from tests.conftest import ROOT
from tests.process_checks import assert_stopped

SMALL = {
    "data.records-per-branch": 48,
    "model.max-length": 96,
    "train.batch-size": 8,
    "dp.target-epsilon": 8.0,
}


def _family(managed) -> list[tuple[int, float | None, str]]:
    """PIDs (with start times) of a ManagedProcess and every helper it forked that we have seen."""
    managed.descendants()
    info = managed.describe()
    return [(info["pid"], info["create_time"], managed.name)] + [(c["pid"], c["create_time"], managed.name)
                                                               for c in info["children"]]


# --------------------------------------------------------------------------- fedbank deploy local


@dataclass
class Deployed:
    out: Path
    returncode: int
    output: str
    seconds: float


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Deployed:
    """``fedbank deploy local --branches 3 --rounds 2`` with a small config, run once per module."""
    out = tmp_path_factory.mktemp("deploy") / "run"
    cmd = [sys.executable, "-m", "simulations.cli.main", "deploy", "local", "--branches", "3", "--rounds", "2",
           "--out", str(out), "--timeout", "600"]
    for key, value in SMALL.items():
        cmd += ["--set", f"{key}={value}"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: fedbank stops everything it started, then exits
        output, _ = proc.communicate(timeout=60)
    return Deployed(out, proc.returncode, output, time.monotonic() - start)


def test_deploy_local_completes_and_writes_simulation_outputs(deployed):
    assert deployed.returncode == 0, deployed.output[-3000:]
    assert "finished:completed" in deployed.output
    for name in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "metrics.json", "ledger.jsonl"):
        assert (deployed.out / name).is_file(), name
    metrics = json.loads((deployed.out / "metrics.json").read_text())
    rounds = {r["round"]: r for r in metrics["rounds"]}
    assert {1, 2} <= set(rounds)
    for r in (1, 2):
        assert set(rounds[r]["branches"]) == {"branch-0", "branch-1", "branch-2"}
        assert {"loss", "accuracy", "macro_f1"} <= set(rounds[r])
    assert metrics["config"]["security.keys-dir"] == str(deployed.out / "keys")


def test_deployed_ledger_has_six_lines_and_verifies(deployed, capsys):
    assert deployed.returncode == 0, deployed.output[-3000:]
    ledger = deployed.out / "ledger.jsonl"
    rows = [e for e in map(json.loads, ledger.read_text().splitlines()) if e.get("kind") != "head"]
    assert len(rows) == 6
    assert sorted((r["round"], r["branch"]) for r in rows) == [(r, f"branch-{b}") for r in (1, 2) for b in range(3)]
    assert all(r["status"] == "trained" and r["epsilon"] > 0 for r in rows)
    server_key = deployed.out / "keys" / "server" / "ed25519.pub"
    assert main(["ledger", "verify", str(ledger), "--server-key", str(server_key)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: every line verified") and "lines: 8 of 8" in out, out


def test_deployment_ran_over_tls_with_registered_supernodes(deployed):
    assert deployed.returncode == 0, deployed.output[-3000:]
    procs = {p["name"]: p for p in json.loads((deployed.out / "logs" / "processes.json").read_text())}
    link = procs["superlink"]["cmd"]
    assert "--insecure" not in link
    for flag in ("--enable-supernode-auth", "--ssl-ca-certfile", "--ssl-certfile", "--ssl-keyfile",
                 "--disable-runtime-dependency-installation"):
        assert flag in link, flag
    assert link[link.index("--fleet-api-type") + 1] == "grpc-rere"
    superlink_log = (deployed.out / "logs" / "superlink.log").read_text()
    assert "SuperNode authentication is disabled" not in superlink_log
    assert "Uvicorn running on https://" in superlink_log
    for b in range(3):
        bid = f"branch-{b}"
        cmd = procs[bid]["cmd"]
        assert "--insecure" not in cmd
        assert cmd[cmd.index("--root-certificates") + 1] == str(deployed.out / "keys" / "ca" / "ca.crt")
        assert cmd[cmd.index("--auth-supernode-private-key") + 1].endswith(f"branches/{bid}/supernode_auth.key")
        node_config = cmd[cmd.index("--node-config") + 1]
        for key in (f"branch-id='{bid}'", "data-path=", "state-dir=", "keys-dir="):
            assert key in node_config, key
        assert "SuperNode ID:" in (deployed.out / "logs" / f"{bid}.log").read_text()
        # the branch's own data file and its privacy state live in its directory
        assert (deployed.out / "branches" / bid / "data.csv").is_file()
        assert (deployed.out / "branches" / bid / "privacy_state.json").is_file()
    connection = (deployed.out / ".flwr" / "superlink" / "flwr" / "config.toml").read_text()
    assert "root-certificates" in connection and "insecure" not in connection


def test_deploy_local_leaves_no_process_running(deployed):
    assert deployed.returncode == 0, deployed.output[-3000:]
    procs = json.loads((deployed.out / "logs" / "processes.json").read_text())
    names = {p["name"] for p in procs}
    assert {"superlink", "branch-0", "branch-1", "branch-2", "flwr run"} <= names
    family = [(p["pid"], p["create_time"], p["name"]) for p in procs]
    family += [(c["pid"], c["create_time"], p["name"]) for p in procs for c in p["children"]]
    assert len(family) > 5  # SuperExec, ServerApp and ClientApp helpers were tracked too
    assert_stopped(family, within=5)


# --------------------------------------------------------------------------- SuperNode authentication and TLS


@pytest.fixture(scope="module")
def auth_link(tmp_path_factory):
    """A SuperLink with TLS and --enable-supernode-auth; only branch-0's key is registered."""
    from common.keys.provision import init_keys
    from simulations.deploy.superlink import register_supernodes, start_superlink

    root = tmp_path_factory.mktemp("auth")
    init_keys(root / "keys", 2, hosts=["127.0.0.1", "localhost"])
    link = start_superlink(root / "keys", root / "superlink", fleet_host="127.0.0.1", fleet_port=0, control_port=0)
    try:
        ids = register_supernodes(link, ["branch-0"])
        yield link, root, ids
    finally:
        family = _family(link)
        link.stop()
        assert_stopped(family)


def _fleet_port(link) -> int:
    return int(link.fleet_address.rsplit(":", 1)[1])


def test_unregistered_supernode_is_refused(auth_link):
    from simulations.deploy.superlink import list_supernodes, wait_supernodes_online
    from simulations.deploy.supernode import start_supernode
    from simulations.processes import ProcessFailed

    link, root, ids = auth_link
    fleet = f"127.0.0.1:{_fleet_port(link)}"
    intruder = start_supernode(root / "keys", "branch-1", fleet, data_path=root / "none.csv",
                               state_dir=root / "branch-1", runtime_port=0, max_retries=2, max_wait_time=30)
    family = _family(intruder)
    try:
        # waiting for it names the process that failed, its log, and Flower's reason
        with pytest.raises(ProcessFailed, match=r"branch-1 \(pid \d+\) exited .*see .*supernode\.log.*Failed to activate"):
            wait_supernodes_online(link, [None], watch=[intruder], timeout=90)
        family += _family(intruder)
    finally:
        intruder.stop()
    assert_stopped(family)
    log = intruder.log_path.read_text()
    assert intruder.returncode != 0
    assert "Failed to activate SuperNode" in log
    assert intruder.node_id is None and "SuperNode ID:" not in log
    nodes = list_supernodes(link)
    assert [int(n["node-id"]) for n in nodes] == [ids["branch-0"]]  # the SuperLink knows only the registered key

    # control: the registered branch, started the same way, is let in
    member = start_supernode(root / "keys", "branch-0", fleet, data_path=root / "none.csv",
                             state_dir=root / "branch-0", runtime_port=0)
    try:
        wait_supernodes_online(link, [ids["branch-0"]], watch=[member], timeout=90)
        assert member.node_id == ids["branch-0"]
    finally:
        family = _family(member)
        member.stop()
    assert_stopped(family)


def test_client_without_the_ca_certificate_cannot_connect(auth_link):
    from simulations.deploy.superlink import DEPLOYMENT_CONNECTION, SuperLink, list_supernodes
    from simulations.deploy.supernode import start_supernode
    from simulations.flower_cli import write_connection
    from common.errors import FedbankError

    link, root, ids = auth_link
    port = _fleet_port(link)
    ca = link.keys.ca_cert
    control_port = int(link.control_address.rsplit(":", 1)[1])

    # TLS handshake on both APIs: fails against the system CAs, succeeds with the deployment CA
    for p in (port, control_port):
        with pytest.raises(ssl.SSLCertVerificationError):
            with socket.create_connection(("127.0.0.1", p), timeout=10) as sock:
                ssl.create_default_context().wrap_socket(sock, server_hostname="127.0.0.1")
        with socket.create_connection(("127.0.0.1", p), timeout=10) as sock:
            with ssl.create_default_context(cafile=str(ca)).wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")

    # a SuperNode with a registered key but without --root-certificates fails the TLS handshake
    node = start_supernode(root / "keys", "branch-0", f"127.0.0.1:{port}", data_path=root / "none.csv",
                           state_dir=root / "no-ca", runtime_port=0, verify_with_ca=False, max_retries=1, max_wait_time=20)
    family = _family(node)
    try:
        node.popen.wait(timeout=60)
    finally:
        node.stop()
    assert_stopped(family)
    log = node.log_path.read_text()
    assert node.returncode != 0 and node.node_id is None
    assert "CERTIFICATE_VERIFY_FAILED" in log

    # the flwr CLI without root-certificates in its connection cannot talk to the Control API
    home = root / "cli-no-ca"
    write_connection(home, DEPLOYMENT_CONNECTION, link.control_address)
    blind = SuperLink(link, fleet_address=link.fleet_address, control_address=link.control_address,
                      flwr_home=home, keys=link.keys)
    with pytest.raises(FedbankError):
        list_supernodes(blind)


# --------------------------------------------------------------------------- fast checks


def test_node_config_and_branch_ids():
    from simulations.deploy.supernode import branch_id_for, node_config_string

    assert branch_id_for("3") == "branch-3" and branch_id_for(2) == "branch-2" and branch_id_for("bank-a") == "bank-a"
    text = node_config_string({"branch-id": "branch-1", "data-path": "/d/it's.csv", "budget-epsilon": 4.0})
    assert text == "branch-id='branch-1' data-path=\"/d/it's.csv\" budget-epsilon=4.0"
    from flwr.common.config import parse_config_args

    assert parse_config_args([text]) == {"branch-id": "branch-1", "data-path": "/d/it's.csv", "budget-epsilon": 4.0}


def test_connection_config_of_the_simulation_and_of_a_deployment(tmp_path):
    import tomllib

    from simulations.deploy.superlink import DEPLOYMENT_CONNECTION
    from simulations.flower_cli import run_command, write_connection
    from simulations.local.runner import SIMULATION_CONNECTION

    sim = tomllib.loads(write_connection(tmp_path / "sim", SIMULATION_CONNECTION, "127.0.0.1:1", insecure=True).read_text())
    assert sim == {"superlink": {"default": "local-simulation", "local-simulation": {"address": "127.0.0.1:1", "insecure": True}}}
    ca = tmp_path / "ca.crt"
    dep = tomllib.loads(write_connection(tmp_path / "dep", DEPLOYMENT_CONNECTION, "localhost:2", ca_cert=ca).read_text())
    assert dep == {"superlink": {"default": "fedbank", "fedbank": {"address": "localhost:2", "root-certificates": str(ca.resolve())}}}
    cmd = run_command("app", "fedbank", {"dp.enabled": False, "model.name": "it's", "dp.delta": 1e-5}, "num-supernodes=2")
    assert cmd[1:] == ["run", "app", "fedbank", "--stream", "--federation-config", "num-supernodes=2",
                       "--run-config", "dp.enabled=false model.name=\"it's\" dp.delta=1e-05"]


def test_deploy_cli_parses_and_refuses_bad_input_before_starting_anything(tmp_path, capsys):
    args = build_parser().parse_args(["deploy", "branch", "--id", "2", "--keys", "k", "--data", "d.csv",
                                      "--superlink", "hq:9092"])
    assert (args.deploy_command, args.id, args.runtime_port) == ("branch", "2", 9094)
    args = build_parser().parse_args(["deploy", "superlink", "--keys", "k"])
    assert (args.host, args.fleet_port, args.control_host, args.control_port) == ("0.0.0.0", 9092, "127.0.0.1", 9093)

    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "ledger.jsonl").write_text("{}\n")
    assert main(["deploy", "local", "--out", str(tmp_path / "used")]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["deploy", "branch", "--id", "0", "--keys", str(tmp_path), "--data", str(tmp_path / "missing.csv"),
                 "--superlink", "127.0.0.1:1", "--state", str(tmp_path / "s")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s" / "supernode.log").exists()


# --------------------------------------------------------------------------- the long-running commands


def _start_cli(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as fh:
        return subprocess.Popen([sys.executable, "-m", "simulations.cli.main", *args], cwd=ROOT, stdout=fh,
                                stderr=subprocess.STDOUT, text=True)


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert proc.poll() is None, f"exited early with {proc.returncode}: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no '{text}' within {timeout} s: {log.read_text()[-2000:]}"
        time.sleep(0.3)


def test_deploy_superlink_and_branch_commands_run_until_ctrl_c(tmp_path):
    """`fedbank deploy superlink` / `deploy branch` serve in the foreground; SIGINT stops what they started."""
    import signal

    from common.keys.provision import init_keys
    from simulations.processes import free_port

    from common.keys.app_signing import init_app_signing

    init_keys(tmp_path / "keys", 2, hosts=["127.0.0.1", "localhost"])
    init_app_signing(tmp_path / "keys")
    data = tmp_path / "branch-1.csv"
    data.write_text("text,label\nmy card is lost,card_lost\n")
    fleet, control = free_port(), free_port()
    hq = _start_cli(["deploy", "superlink", "--keys", str(tmp_path / "keys"), "--host", "127.0.0.1",
                     "--fleet-port", str(fleet), "--control-port", str(control), "--state", str(tmp_path / "hq")],
                    tmp_path / "hq.out")
    branch = None
    family: list[tuple[int, float | None, str]] = []
    try:
        _wait_for(tmp_path / "hq.out", "Ctrl-C stops the SuperLink", hq)
        assert "registered branch-0" in (tmp_path / "hq.out").read_text()
        assert "registered branch-1" in (tmp_path / "hq.out").read_text()
        branch = _start_cli(["deploy", "branch", "--id", "1", "--keys", str(tmp_path / "keys"), "--data", str(data),
                             "--superlink", f"localhost:{fleet}", "--state", str(tmp_path / "b1"),
                             "--runtime-port", str(free_port())], tmp_path / "b1.out")
        _wait_for(tmp_path / "b1.out", "connected to", branch)
        assert "runs only apps signed by" in (tmp_path / "b1.out").read_text()
        for proc in (hq, branch):
            for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
                family.append((p.pid, p.create_time(), p.name()))
        assert len(family) >= 6  # each: fedbank, the Flower process, its SuperExec
        node_config = (tmp_path / "b1" / "supernode.log").read_text()
        assert "branch-id='branch-1'" in node_config and f"keys-dir='{tmp_path / 'keys'}'" in node_config
    finally:
        for proc in (branch, hq):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)
    assert branch.returncode == 0 and hq.returncode == 0
    assert "SuperNode of branch-1 stopped" in (tmp_path / "b1.out").read_text()
    assert "SuperLink stopped" in (tmp_path / "hq.out").read_text()
    assert_stopped(family)
