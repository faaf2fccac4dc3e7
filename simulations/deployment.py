"""Run fedbank as a real Flower 1.39 deployment: one SuperLink, one SuperNode per branch.

Every connection is TLS (the CA, SuperLink certificate and key come from a
``fedbank keys init`` directory) and the SuperLink runs with
``--enable-supernode-auth``: only SuperNodes whose public key was registered
with ``flwr supernode register`` may connect.  Runtime dependency
installation is off everywhere, telemetry is off, and every process this
module starts is a :class:`ManagedProcess` that it stops again, by PID and
process group, together with the helpers Flower forked from it (SuperExec,
ServerApp, ClientApp) and nothing else.

What Flower 1.39 listens on (``flower-superlink``):

* **Fleet API** (gRPC-rere, TLS): ``--fleet-api-address HOST:PORT``, default
  port 9092.  The only port branches connect to.
* **Control + Runtime HTTP API** (HTTPS, same certificate): ``--host``/``--port``.
  In 1.39 the Control API (``flwr run``, ``flwr ls``, ``flwr supernode
  register``) and the Runtime/ServerAppIo API share this one port; the
  separate 9091/9093 gRPC APIs of earlier releases are gone.  Keep it on
  127.0.0.1 (or an admin network): it is how runs are submitted.

``flower-supernode`` opens no port reachable from outside: its own Runtime
HTTP API (``--port``, default 9094) is bound to 127.0.0.1 for its local
SuperExec/ClientApp only.

Building blocks (reusable, e.g. to kill and restart a SuperLink mid-run):
:func:`start_superlink`, :func:`register_supernodes`, :func:`start_supernode`,
:func:`wait_supernodes_online`, :func:`start_run`, :func:`wait_run`,
:meth:`ManagedProcess.stop`; :class:`LocalDeployment` wires them together on
127.0.0.1 and :func:`deploy_local` runs one federation end to end.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from common.errors import FedbankError, KeyFileError
from common.keys import KeyLayout
from simulations.runner import RunFailed, _bin, _toml, flower_env, free_port

__all__ = [
    "CONNECTION",
    "DeploymentResult",
    "FlowerRun",
    "LocalDeployment",
    "ManagedProcess",
    "ProcessFailed",
    "SuperLink",
    "branch_id_for",
    "deploy_local",
    "list_supernodes",
    "prepare_branch_data",
    "register_supernodes",
    "run_status",
    "serve_branch",
    "serve_superlink",
    "start_run",
    "start_superlink",
    "start_supernode",
    "wait_run",
    "wait_supernodes_online",
    "write_connection",
]

CONNECTION = "fedbank"
FLEET_PORT = 9092
CONTROL_PORT = 9093
SUPERNODE_RUNTIME_PORT = 9094
START_TIMEOUT = 60.0
ONLINE_TIMEOUT = 180.0
CLI_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_RUN_STARTED = re.compile(r"Successfully started run (\d+)")
_NODE_ID = re.compile(r"SuperNode ID: (\d+)")
_WILDCARD = {"0.0.0.0", "::", ""}

OnText = Callable[[str], None]


class ProcessFailed(RunFailed):
    """A process of the deployment exited, or did not become ready, in time."""

    def __init__(self, name: str, log_path: Path, what: str) -> None:
        self.name = name
        self.log_path = log_path
        detail = _last_error_line(log_path)
        super().__init__(f"{name} {what}; see {log_path}" + (f" (last error: {detail})" if detail else ""))


# --------------------------------------------------------------------------- processes


class ManagedProcess:
    """One process this module started (in its own session), and how to stop it.

    Flower forks helpers into *new sessions* (SuperExec, then ServerApp /
    ClientApp processes) that exit on their own when their parent is gone;
    :meth:`stop` also waits for them and ends any straggler by PID.
    """

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path, cmd: Sequence[str]) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self.cmd = list(cmd)
        self.started = time.time()
        try:
            self._ps = psutil.Process(popen.pid)
        except psutil.Error:  # pragma: no cover - exited before we looked
            self._ps = None
        self._seen: dict[int, psutil.Process] = {}

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def check(self) -> None:
        """Raise :class:`ProcessFailed` if the process has exited."""
        if not self.running:
            raise ProcessFailed(self.name, self.log_path, f"(pid {self.pid}) exited with code {self.popen.returncode}")

    def descendants(self) -> list[psutil.Process]:
        """Live processes forked from this one (any depth, any session); remembered for :meth:`stop`."""
        if self._ps is not None and self.running:
            try:
                for child in self._ps.children(recursive=True):
                    self._seen.setdefault(child.pid, child)
            except psutil.Error:
                pass
        return [p for p in self._seen.values() if _alive(p)]

    def pids(self) -> list[int]:
        """This process's PID and its live descendants' PIDs."""
        return ([self.pid] if self.running else []) + [p.pid for p in self.descendants()]

    def describe(self) -> dict[str, object]:
        """What ``processes.json`` records about this process."""
        return {"name": self.name, "pid": self.pid, "create_time": _create_time(self._ps), "log": str(self.log_path),
                "cmd": self.cmd, "children": [{"pid": p.pid, "create_time": _create_time(p)} for p in self._seen.values()]}

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, SIGKILL after ``timeout``; then make sure its helpers are gone too."""
        family = self.descendants()
        if self.running:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        else:
            self.popen.wait(timeout=1)
        # Helpers poll their parent every 0.2 s and exit; give them a moment, then insist.
        _, alive = psutil.wait_procs([p for p in family if _alive(p)], timeout=timeout)
        for proc in alive:
            _quietly(proc.terminate)
        _, alive = psutil.wait_procs(alive, timeout=5)
        for proc in alive:
            _quietly(proc.kill)
        psutil.wait_procs(alive, timeout=5)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _create_time(proc: psutil.Process | None) -> float | None:
    try:
        return proc.create_time() if proc is not None else None
    except psutil.Error:
        return None


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except psutil.Error:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _spawn(name: str, cmd: Sequence[str], env: Mapping[str, str], log_path: Path) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== fedbank: starting {name}: {' '.join(cmd)}\n".encode())
        log.flush()
        popen = subprocess.Popen(list(cmd), env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    return ManagedProcess(name, popen, log_path, cmd)


def _last_error_line(log_path: Path) -> str:
    """The last line of a log that looks like an error, for one-line messages."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-200:]
    except OSError:
        return ""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", l).strip() for l in lines if "=== fedbank" not in l]
    for marks in (("[code:", "Error:", "Exception:", "CERTIFICATE_VERIFY_FAILED", "ERROR"),  # Flower's and Python's
                  ("Failed", "failed", "error")):                                          # then anything alike
        picked = [l for l in lines if any(m in l for m in marks) and l not in ("ERROR :", "ERROR")]
        if picked:
            return picked[-1][:300]
    return ""


def _wait_port(proc: ManagedProcess, host: str, port: int, deadline: float, what: str) -> None:
    host = "127.0.0.1" if host in _WILDCARD else host
    while True:
        proc.check()
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.stop()
            raise ProcessFailed(proc.name, proc.log_path, f"did not open its {what} on {host}:{port} in time")
        time.sleep(0.2)


# --------------------------------------------------------------------------- SuperLink


class SuperLink(ManagedProcess):
    """A ``flower-superlink`` with TLS and SuperNode authentication, and the CLI connection to it."""

    def __init__(self, proc: ManagedProcess, *, fleet_address: str, control_address: str, flwr_home: Path,
                 keys: KeyLayout, connection: str = CONNECTION) -> None:
        super().__init__(proc.name, proc.popen, proc.log_path, proc.cmd)
        self.fleet_address = fleet_address
        self.control_address = control_address
        self.flwr_home = flwr_home
        self.keys = keys
        self.connection = connection

    def env(self) -> dict[str, str]:
        """Environment for ``flwr`` CLI calls against this SuperLink."""
        return flower_env(self.flwr_home)


def write_connection(flwr_home: Path, address: str, ca_cert: Path | None, name: str = CONNECTION) -> Path:
    """Write ``$FLWR_HOME/config.toml`` with one TLS connection (``root-certificates`` = the CA) as default."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f"default = {json.dumps(name)}", "", f"[superlink.{name}]", f"address = {json.dumps(address)}"]
    if ca_cert is not None:
        lines.append(f"root-certificates = {json.dumps(str(Path(ca_cert).resolve()))}")
    path = flwr_home / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _require(paths: Iterable[Path], role: str) -> None:
    for path in paths:
        if not path.is_file():
            raise KeyFileError(f"{path} is missing: the {role} needs it (copy it from the `fedbank keys init` directory)")


def _cli_host(control_host: str, keys: KeyLayout) -> str:
    """The host the local ``flwr`` CLI dials: it must be a name in the SuperLink certificate."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(keys.superlink_cert.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = set()
    candidates = ["127.0.0.1", "localhost"] if control_host in _WILDCARD else [control_host]
    for host in candidates:
        if host in names:
            return host
    raise FedbankError(
        f"the SuperLink certificate {keys.superlink_cert} is not valid for {' or '.join(candidates)} "
        f"(its names: {', '.join(sorted(names)) or 'none'}): re-run `fedbank keys init --force` with --host {candidates[0]} added"
    )


def start_superlink(keys_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str], *,
                    fleet_host: str = "0.0.0.0", fleet_port: int = FLEET_PORT,
                    control_host: str = "127.0.0.1", control_port: int = CONTROL_PORT,
                    log_path: Path | None = None, name: str = "superlink",
                    timeout: float = START_TIMEOUT) -> SuperLink:
    """Start ``flower-superlink`` (TLS, node auth, gRPC-rere Fleet API, no runtime pip) and wait until it listens.

    ``state_dir`` holds its ``FLWR_HOME`` (with the ``flwr`` CLI connection
    :data:`CONNECTION`) and its database ``superlink.db``, so registrations
    and runs survive a restart.  A port of 0 picks a free one.

    Raises:
        KeyFileError: a key or certificate is missing.
        ProcessFailed: the SuperLink exited or did not listen within ``timeout``.
    """
    keys = KeyLayout.from_dir(keys_dir)
    _require([keys.ca_cert, keys.superlink_cert, keys.superlink_key], "SuperLink")
    state = Path(state_dir).resolve()
    flwr_home = state / "flwr"
    fleet_port = fleet_port or free_port()
    control_port = control_port or free_port()
    cli_host = _cli_host(control_host, keys)
    control_address = f"{cli_host}:{control_port}"
    write_connection(flwr_home, control_address, keys.ca_cert)
    fleet_bind = f"[{fleet_host}]:{fleet_port}" if ":" in fleet_host else f"{fleet_host}:{fleet_port}"
    cmd = [
        _bin("flower-superlink"),
        "--ssl-ca-certfile", str(keys.ca_cert.resolve()),
        "--ssl-certfile", str(keys.superlink_cert.resolve()),
        "--ssl-keyfile", str(keys.superlink_key.resolve()),
        "--enable-supernode-auth",
        "--fleet-api-type", "grpc-rere",
        "--fleet-api-address", fleet_bind,
        "--host", control_host, "--port", str(control_port),
        "--isolation", "subprocess",
        "--disable-runtime-dependency-installation",
        "--database", str(flwr_home / "superlink.db"),
    ]
    log_path = log_path or state / "superlink.log"
    proc = _spawn(name, cmd, flower_env(flwr_home), log_path)
    deadline = time.monotonic() + timeout
    _wait_port(proc, control_host, control_port, deadline, "Control API")
    _wait_port(proc, fleet_host, fleet_port, deadline, "Fleet API")
    return SuperLink(proc, fleet_address=fleet_bind, control_address=control_address, flwr_home=flwr_home, keys=keys)


def _flwr_json(superlink: SuperLink, args: Sequence[str], what: str, timeout: float = CLI_TIMEOUT) -> dict:
    """Run a ``flwr`` CLI command with ``--format json``; its parsed output (``success`` may be false)."""
    cmd = [_bin("flwr"), *args, "--format", "json"]
    try:
        out = subprocess.run(cmd, env=superlink.env(), capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise RunFailed(f"`flwr {' '.join(args[:2])}` ({what}) did not answer within {timeout:.0f} s; "
                        f"is the SuperLink up? see {superlink.log_path}") from err
    try:
        data = json.loads(out.stdout[out.stdout.index("{"):])
    except ValueError as err:
        raise RunFailed(f"`flwr {' '.join(args[:2])}` ({what}) gave no JSON (exit code {out.returncode}): "
                        f"{(out.stdout + out.stderr).strip()[-300:]}") from err
    return data


def _nodes_file(superlink: SuperLink) -> Path:
    return superlink.flwr_home / "fedbank-nodes.json"


def register_supernodes(superlink: SuperLink, branch_ids: Sequence[str] | None = None,
                        on_event: OnText | None = None) -> dict[str, int | None]:
    """``flwr supernode register`` each branch's ``supernode_auth.pub``; {branch: node id}.

    A key registered before (the database survives restarts) is accepted as
    is; its node id comes from ``fedbank-nodes.json`` in the SuperLink's
    ``FLWR_HOME`` when this module registered it (else ``None``).

    Raises:
        KeyFileError: a branch's public key is missing.
        RunFailed: the SuperLink refused a registration.
    """
    keys = superlink.keys
    ids = list(branch_ids) if branch_ids is not None else list(keys.branch_ids)
    known_path = _nodes_file(superlink)
    known: dict[str, int] = json.loads(known_path.read_text()) if known_path.is_file() else {}
    out: dict[str, int | None] = {}
    for bid in ids:
        pub = keys.branch(bid).supernode_auth_pub
        _require([pub], f"registration of {bid}")
        data = _flwr_json(superlink, ["supernode", "register", str(pub.resolve()), superlink.connection, "--name", bid],
                          f"register {bid}")
        if data.get("success"):
            out[bid] = known[bid] = int(data["node-id"])
            message = f"registered {bid}: SuperNode {out[bid]}"
        elif "already in use" in str(data.get("error-message", "")):
            out[bid] = known.get(bid)
            message = f"{bid} was registered before" + (f": SuperNode {out[bid]}" if out[bid] else "")
        else:
            superlink.check()
            raise RunFailed(f"could not register {bid}'s SuperNode key {pub}: "
                            f"{str(data.get('error-message', data)).strip().splitlines()[-1]}")
        if on_event:
            on_event(message)
    known_path.write_text(json.dumps(known, indent=2) + "\n", encoding="utf-8")
    return out


def list_supernodes(superlink: SuperLink) -> list[dict]:
    """``flwr supernode ls``: one dict per registered node (``node-id``, ``status``, ...)."""
    data = _flwr_json(superlink, ["supernode", "ls", superlink.connection], "list SuperNodes")
    if not data.get("success"):
        raise RunFailed(f"could not list SuperNodes: {data.get('error-message', data)}")
    return list(data.get("nodes", []))


def wait_supernodes_online(superlink: SuperLink, node_ids: Iterable[int | None], watch: Sequence[ManagedProcess] = (),
                           timeout: float = ONLINE_TIMEOUT) -> list[dict]:
    """Wait until the given SuperNodes are ``online`` (unknown ids: that many nodes online).

    Raises:
        ProcessFailed: the SuperLink or a watched SuperNode exited, or the
            nodes did not come online within ``timeout`` (naming the missing ones).
    """
    wanted = list(node_ids)
    ids = {int(n) for n in wanted if n is not None}
    deadline = time.monotonic() + timeout
    while True:
        for proc in (superlink, *watch):
            proc.check()
        nodes = list_supernodes(superlink)
        online = {int(n["node-id"]) for n in nodes if n.get("status") == "online"}
        if ids <= online and len(online) >= len(wanted):
            return nodes
        if time.monotonic() > deadline:
            missing = [p for p in watch if p.running and str(getattr(p, "node_id", "")) not in {str(i) for i in online}]
            name = missing[0] if missing else superlink
            raise ProcessFailed(name.name, name.log_path,
                                f"did not come online at the SuperLink within {timeout:.0f} s "
                                f"({len(online & ids) if ids else len(online)}/{len(wanted)} SuperNodes online)")
        time.sleep(1.0)


# --------------------------------------------------------------------------- SuperNodes


class SuperNode(ManagedProcess):
    """A ``flower-supernode`` of one branch."""

    def __init__(self, proc: ManagedProcess, branch_id: str, node_config: dict[str, str], flwr_home: Path) -> None:
        super().__init__(proc.name, proc.popen, proc.log_path, proc.cmd)
        self.branch_id = branch_id
        self.node_config = node_config
        self.flwr_home = flwr_home

    @property
    def node_id(self) -> int | None:
        """The node id the SuperLink gave this SuperNode (read from its log), or None so far."""
        try:
            found = _NODE_ID.findall(self.log_path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return None
        return int(found[-1]) if found else None


def branch_id_for(value: str | int) -> str:
    """``3`` -> ``branch-3``; any other id is kept as given."""
    text = str(value).strip()
    return f"branch-{text}" if text.isdigit() else text


def node_config_string(values: Mapping[str, object]) -> str:
    """``--node-config`` text: ``key='value'`` pairs (TOML literal strings)."""
    parts = []
    for key, value in values.items():
        if isinstance(value, bool):
            parts.append(f"{key}={'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            parts.append(f"{key}={value!r}")
        else:
            text = str(value)
            if "'" not in text:
                parts.append(f"{key}='{text}'")
            elif '"' not in text and "\\" not in text:
                parts.append(f'{key}="{text}"')
            else:
                raise FedbankError(f"node config value {text!r} of '{key}' has both quote kinds: rename the path")
    return " ".join(parts)


def start_supernode(keys_dir: str | os.PathLike[str], branch_id: str, superlink_address: str, *,
                    data_path: str | os.PathLike[str], state_dir: str | os.PathLike[str],
                    flwr_home: Path | None = None, log_path: Path | None = None,
                    runtime_port: int = SUPERNODE_RUNTIME_PORT, extra_node_config: Mapping[str, object] | None = None,
                    verify_with_ca: bool = True, max_retries: int | None = None,
                    max_wait_time: float | None = None) -> SuperNode:
    """Start a branch's ``flower-supernode``: TLS verified with the CA, authenticated with its P-384 key.

    Its node config carries ``branch-id``, ``data-path``, ``state-dir`` (the
    branch's privacy accountant) and ``keys-dir`` (its Ed25519 signing key
    and the server's public keys, for sealed updates).  ``runtime_port`` is
    its local Runtime API port (0 = a free one; distinct per SuperNode on one
    host).  ``verify_with_ca=False`` leaves out ``--root-certificates`` (then
    Flower falls back to the system CAs and the TLS handshake fails): only to
    show that a client without the CA cannot connect.

    Returns at once; the SuperNode connects in the background (see
    :func:`wait_supernodes_online`).

    Raises:
        KeyFileError: the branch's keys or the CA certificate are missing.
    """
    keys = KeyLayout.from_dir(keys_dir)
    bkeys = keys.branch(branch_id)
    _require([keys.ca_cert, bkeys.supernode_auth_key], f"SuperNode of {branch_id}")
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    flwr_home = flwr_home or state / "flwr"
    flwr_home.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {
        "branch-id": branch_id,
        "data-path": str(Path(data_path).expanduser().resolve()),
        "state-dir": str(state),
        "keys-dir": str(keys.root.resolve()),
        **dict(extra_node_config or {}),
    }
    cmd = [_bin("flower-supernode"), "--superlink", superlink_address]
    if verify_with_ca:
        cmd += ["--root-certificates", str(keys.ca_cert.resolve())]
    cmd += [
        "--auth-supernode-private-key", str(bkeys.supernode_auth_key.resolve()),
        "--node-config", node_config_string(config),
        "--isolation", "subprocess",
        "--host", "127.0.0.1", "--port", str(runtime_port or free_port()),
    ]
    if max_retries is not None:
        cmd += ["--max-retries", str(max_retries)]
    if max_wait_time is not None:
        cmd += ["--max-wait-time", str(max_wait_time)]
    log_path = log_path or state / "supernode.log"
    proc = _spawn(branch_id, cmd, flower_env(flwr_home), log_path)
    return SuperNode(proc, branch_id, {k: str(v) for k, v in config.items()}, flwr_home)


# --------------------------------------------------------------------------- runs


class FlowerRun:
    """A ``flwr run APP CONNECTION --stream`` in progress; its output goes to ``log_path`` and ``on_line``."""

    def __init__(self, superlink: SuperLink, cmd: Sequence[str], log_path: Path, on_line: OnText | None = None) -> None:
        self.superlink = superlink
        self.log_path = log_path
        self.run_id: int | None = None
        self.on_line = on_line
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(list(cmd), env=superlink.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
        self.process = ManagedProcess("flwr run", self.popen, log_path, cmd)
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="flwr-run-stream", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as log:
            for line in self.popen.stdout:
                log.write(line)
                log.flush()
                match = _RUN_STARTED.search(line)
                if match and self.run_id is None:
                    self.run_id = int(match.group(1))
                    self._started.set()
                if self.on_line:
                    try:
                        self.on_line(line.rstrip("\n"))
                    except Exception:  # noqa: BLE001 - a display error must not stop the log
                        pass
        self._started.set()

    @property
    def streaming(self) -> bool:
        """Whether ``flwr run`` is still streaming the run's log."""
        return self._thread.is_alive()

    def wait_started(self, timeout: float = CLI_TIMEOUT) -> int:
        """The run id, once the SuperLink accepted the run."""
        if not self._started.wait(timeout) or self.run_id is None:
            self.stop()
            raise RunFailed(f"flwr run did not start a run within {timeout:.0f} s (exit code {self.popen.poll()}); "
                            f"see {self.log_path}" + _suffix(_last_error_line(self.log_path)))
        return self.run_id

    def stop(self) -> None:
        """Stop the ``flwr run`` client (the run itself lives on in the SuperLink)."""
        self.process.stop(timeout=5)
        self._thread.join(timeout=5)


def _suffix(detail: str) -> str:
    return f" (last error: {detail})" if detail else ""


def start_run(superlink: SuperLink, app_dir: str | os.PathLike[str], run_config: Mapping[str, object],
              log_path: Path, on_line: OnText | None = None) -> FlowerRun:
    """Submit the app at ``app_dir`` to the SuperLink (``flwr run ... --stream``); returns at once."""
    cmd = [_bin("flwr"), "run", str(Path(app_dir).resolve()), superlink.connection, "--stream"]
    if run_config:
        cmd += ["--run-config", " ".join(f"{k}={_toml(v)}" for k, v in run_config.items())]
    return FlowerRun(superlink, cmd, log_path, on_line)


def run_status(superlink: SuperLink, run_id: int) -> tuple[str, str]:
    """(status, sub-status) of a run, from ``flwr ls --run-id``."""
    data = _flwr_json(superlink, ["ls", superlink.connection, "--run-id", str(run_id)], f"status of run {run_id}")
    try:
        status = data["runs"][0]["status"]
    except (KeyError, IndexError, TypeError) as err:
        raise RunFailed(f"could not read the status of run {run_id}: {str(data)[:300]}") from err
    main, _, sub = str(status).partition(":")
    return main, sub


def _is_success(status: str, sub: str) -> bool:
    return (status, sub) in {("finished", "completed"), ("completed", "finished")}


@dataclass
class DeploymentResult:
    """Outcome of a deployed run."""

    run_id: int
    status: str
    sub_status: str
    output_dir: Path | None = None
    log_dir: Path | None = None
    pids: dict[str, list[int]] = field(default_factory=dict)


def wait_run(run: FlowerRun, timeout: float, watch: Sequence[ManagedProcess] = (),
             require_success: bool = True) -> DeploymentResult:
    """Wait for a run to end; read its final status from the SuperLink.

    ``watch``: processes that must stay up meanwhile (the SuperLink, the
    SuperNodes); one exiting ends the wait with :class:`ProcessFailed`.

    Raises:
        ProcessFailed: a watched process exited.
        RunFailed: the run did not finish within ``timeout`` or (with
            ``require_success``) finished with another status than
            ``finished:completed``.
    """
    deadline = time.monotonic() + timeout
    run_id = run.wait_started(min(timeout, CLI_TIMEOUT * 2))
    while run.streaming:
        for proc in watch:
            proc.check()
        if time.monotonic() > deadline:
            run.stop()
            raise RunFailed(f"run {run_id} did not finish within {timeout:.0f} s; see {run.log_path}")
        run._thread.join(0.5)
    run.process.stop(timeout=5)
    status, sub = run_status(run.superlink, run_id)
    settle = time.monotonic() + 15
    while status not in ("finished", "completed") and time.monotonic() < settle:  # the stream can end first
        time.sleep(0.5)
        status, sub = run_status(run.superlink, run_id)
    if require_success and not _is_success(status, sub):
        raise RunFailed(f"run {run_id} ended with status {status}:{sub}; see {run.log_path} and {run.superlink.log_path}"
                        + _suffix(_last_error_line(run.log_path)))
    return DeploymentResult(run_id, status, sub)


# --------------------------------------------------------------------------- branch data


def prepare_branch_data(cfg, out_dir: Path, branch_ids: Sequence[str]) -> tuple[dict[str, Path], dict[str, object]]:
    """Write each branch's own CSV (``OUT/branches/<id>/data.csv``) from the run's corpus.

    The corpus (``data.source``: the synthetic generator or a CSV/JSONL) is
    split and partitioned exactly as in simulation (``common.data.simulation_split``
    with ``num-branches`` = the number of branches), so the server's held-out
    set is the part no branch holds.  Returns the files and the run-config
    additions that pin one label set on every node (``data.labels``).
    """
    from common.data import corpus_table, simulation_split

    train, _, parts, names = simulation_split(cfg)
    files: dict[str, Path] = {}
    for bid, idx in zip(branch_ids, parts):
        path = out_dir / "branches" / bid / "data.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        subset = train.subset(idx)
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            header, rows = corpus_table(subset, cfg.data.text_column, cfg.data.label_column)
            writer.writerow(header)
            writer.writerows(rows)
        files[bid] = path
    extra: dict[str, object] = {}
    if not cfg.data.labels.strip():
        if any("," in n for n in names):
            labels_file = out_dir / "labels.json"
            labels_file.write_text(json.dumps(names, ensure_ascii=False), encoding="utf-8")
            extra["data.labels"] = str(labels_file)
        else:
            extra["data.labels"] = ",".join(names)
    return files, extra


# --------------------------------------------------------------------------- local deployment


class LocalDeployment:
    """A whole federation on 127.0.0.1 under one output directory, started and stopped piece by piece.

    Layout of ``out``::

        keys/                      fedbank keys init (CA, TLS, auth keys, envelope keys)
        branches/<id>/data.csv     the branch's own records;  privacy_state.json next to it
        .flwr/superlink/           SuperLink FLWR_HOME: config.toml (connection "fedbank"), superlink.db
        .flwr/<id>/                the branch SuperNode's FLWR_HOME
        logs/superlink.log, logs/<id>.log, logs/flwr-run.log, logs/processes.json
        adapter/ metrics.json ledger.jsonl   (written by the ServerApp)

    Ports are chosen once, so a restarted SuperLink comes back on the same
    addresses and the SuperNodes reconnect to it.  Use as a context manager:
    leaving it stops every process it started.
    """

    def __init__(self, out_dir: str | os.PathLike[str], branch_ids: Sequence[str],
                 app_dir: str | os.PathLike[str] | None = None, on_event: OnText | None = None) -> None:
        self.out = Path(out_dir).resolve()
        self.branch_ids = list(branch_ids)
        self.app_dir = Path(app_dir).resolve() if app_dir else Path(__file__).resolve().parents[1]
        self.keys_dir = self.out / "keys"
        self.log_dir = self.out / "logs"
        self.fleet_port = free_port()
        self.control_port = free_port()
        self.runtime_ports = {bid: free_port() for bid in self.branch_ids}
        self.superlink: SuperLink | None = None
        self.supernodes: dict[str, SuperNode] = {}
        self.node_ids: dict[str, int | None] = {}
        self.runs: list[FlowerRun] = []
        self._history: list[ManagedProcess] = []
        self.on_event = on_event or (lambda _msg: None)

    # -- set-up
    def init_keys(self) -> KeyLayout:
        """Create the key directory (once)."""
        from common.keys import init_keys

        if (self.keys_dir / "manifest.json").is_file():
            return KeyLayout.from_dir(self.keys_dir)
        layout = init_keys(self.keys_dir, self.branch_ids, hosts=["127.0.0.1", "localhost"])
        self.on_event(f"keys for {len(self.branch_ids)} branches in {self.keys_dir}")
        return layout

    def data_path(self, branch_id: str) -> Path:
        return self.out / "branches" / branch_id / "data.csv"

    def state_dir(self, branch_id: str) -> Path:
        return self.out / "branches" / branch_id

    # -- processes
    def start_superlink(self) -> SuperLink:
        """Start (or restart) the SuperLink on this deployment's fixed ports."""
        if self.superlink is not None and self.superlink.running:
            return self.superlink
        self.superlink = start_superlink(
            self.keys_dir, self.out / ".flwr" / "superlink", fleet_host="127.0.0.1", fleet_port=self.fleet_port,
            control_host="127.0.0.1", control_port=self.control_port, log_path=self.log_dir / "superlink.log")
        self._track(self.superlink)
        self.on_event(f"SuperLink pid {self.superlink.pid}: Fleet API {self.superlink.fleet_address} (TLS, node auth), "
                      f"Control API {self.superlink.control_address}")
        return self.superlink

    def register(self) -> dict[str, int | None]:
        """Register every branch's SuperNode key (idempotent across restarts)."""
        self.node_ids = register_supernodes(self._link(), self.branch_ids, on_event=self.on_event)
        return self.node_ids

    def start_supernode(self, branch_id: str, **kwargs) -> SuperNode:
        """Start (or restart) one branch's SuperNode."""
        old = self.supernodes.get(branch_id)
        if old is not None and old.running:
            return old
        node = start_supernode(
            self.keys_dir, branch_id, f"127.0.0.1:{self.fleet_port}", data_path=self.data_path(branch_id),
            state_dir=self.state_dir(branch_id), flwr_home=self.out / ".flwr" / branch_id,
            log_path=self.log_dir / f"{branch_id}.log", runtime_port=self.runtime_ports[branch_id], **kwargs)
        self.supernodes[branch_id] = node
        self._track(node)
        return node

    def start_supernodes(self) -> dict[str, SuperNode]:
        for bid in self.branch_ids:
            self.start_supernode(bid)
        return self.supernodes

    def wait_online(self, timeout: float = ONLINE_TIMEOUT) -> list[dict]:
        nodes = wait_supernodes_online(self._link(), [self.node_ids.get(b) for b in self.branch_ids],
                                       watch=list(self.supernodes.values()), timeout=timeout)
        self.on_event(f"{len(self.branch_ids)} SuperNodes online")
        return nodes

    def start_run(self, run_config: Mapping[str, object], on_line: OnText | None = None) -> FlowerRun:
        run = start_run(self._link(), self.app_dir, run_config, self.log_dir / "flwr-run.log", on_line)
        self.runs.append(run)
        self._track(run.process)
        return run

    def wait_run(self, run: FlowerRun, timeout: float, require_success: bool = True) -> DeploymentResult:
        watch = [self._link(), *self.supernodes.values()]
        result = wait_run(run, timeout, watch=watch, require_success=require_success)
        result.output_dir, result.log_dir, result.pids = self.out, self.log_dir, self.pids()
        return result

    def stop_superlink(self) -> None:
        if self.superlink is not None:
            self.superlink.stop()
            self._write_processes()

    def stop_supernode(self, branch_id: str) -> None:
        node = self.supernodes.get(branch_id)
        if node is not None:
            node.stop()
            self._write_processes()

    def stop_all(self) -> None:
        """Stop every process started here: runs, SuperNodes, then the SuperLink."""
        for run in self.runs:
            run.stop()
        for node in self.supernodes.values():
            node.descendants()
        if self.superlink is not None:
            self.superlink.descendants()
        self._write_processes()
        for node in self.supernodes.values():
            node.stop()
        if self.superlink is not None:
            self.superlink.stop()
        self._write_processes()

    def pids(self) -> dict[str, list[int]]:
        """Live PIDs of every process started here (and their helpers), by name."""
        return {p.name: p.pids() for p in self._history if p.pids()}

    def processes(self) -> list[ManagedProcess]:
        """Every process this deployment started, in start order (restarts included)."""
        return list(self._history)

    def __enter__(self) -> "LocalDeployment":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    # -- internals
    def _link(self) -> SuperLink:
        if self.superlink is None:
            raise FedbankError("the SuperLink is not started: call start_superlink() first")
        return self.superlink

    def _track(self, proc: ManagedProcess) -> None:
        self._history.append(proc)
        self._write_processes()

    def _write_processes(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for proc in self._history:
            proc.descendants()
        data = [p.describe() for p in self._history]
        tmp = self.log_dir / "processes.json.tmp"
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.log_dir / "processes.json")


def deploy_local(out_dir: str | os.PathLike[str], num_branches: int, run_config: Mapping[str, object], *,
                 app_dir: str | os.PathLike[str] | None = None, on_line: OnText | None = None,
                 on_event: OnText | None = None, timeout: float = 3600.0) -> DeploymentResult:
    """Run one federation as a real deployment on 127.0.0.1 and stop everything afterwards.

    Keys go to ``OUT/keys``, each branch's data to ``OUT/branches/<id>/data.csv``;
    then the SuperLink (TLS + node auth), registration of every SuperNode
    key, ``num_branches`` SuperNodes, and ``flwr run --stream`` with
    ``run_config`` plus ``output-dir=OUT``, ``num-branches``,
    ``security.keys-dir=OUT/keys`` and a pinned ``data.labels``.  The
    ServerApp writes ``adapter/``, ``metrics.json`` and ``ledger.jsonl`` into
    ``OUT``; logs go to ``OUT/logs``.

    Raises:
        ConfigError / DataError: the run config or data is invalid (before anything starts).
        ProcessFailed: a process exited or a wait timed out (naming it and its log).
        RunFailed: the run ended with another status than ``finished:completed``.
    """
    from common.config import RunConfig

    out = Path(out_dir).resolve()
    branch_ids = [f"branch-{i}" for i in range(num_branches)]
    config = {**run_config, "output-dir": str(out), "num-branches": num_branches,
              "security.keys-dir": str(out / "keys")}
    config.setdefault("min-train-branches", num_branches)
    cfg = RunConfig.from_flower({**RunConfig().to_flower(), **config})
    if (out / "ledger.jsonl").exists():
        raise FedbankError(f"output directory {out} already holds a run (ledger.jsonl): choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    say = on_event or (lambda _msg: None)
    with sigterm_as_interrupt(), LocalDeployment(out, branch_ids, app_dir=app_dir, on_event=say) as dep:
        dep.init_keys()
        files, extra = prepare_branch_data(cfg, out, branch_ids)
        config.update(extra)
        say(f"branch data: {len(files)} files {out / 'branches'}/<id>/data.csv")
        dep.start_superlink()
        dep.register()
        dep.start_supernodes()
        dep.wait_online()
        run = dep.start_run(config, on_line)
        run_id = run.wait_started()
        say(f"run {run_id} started")
        result = dep.wait_run(run, timeout)  # result.pids: what ran, by name (all stopped on return)
    return result


# --------------------------------------------------------------------------- long-running hosts


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only), so clean-up code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _term(_signo, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(procs: Sequence[ManagedProcess], poll: Callable[[], None] | None = None) -> None:
    """Block until Ctrl-C / SIGTERM (returns) or until a process exits (raises ProcessFailed)."""
    try:
        with sigterm_as_interrupt():
            while True:
                for proc in procs:
                    proc.check()
                if poll:
                    poll()
                time.sleep(1.0)
    except KeyboardInterrupt:
        return


def serve_superlink(keys_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str], *,
                    fleet_host: str = "0.0.0.0", fleet_port: int = FLEET_PORT, control_host: str = "127.0.0.1",
                    control_port: int = CONTROL_PORT, branch_ids: Sequence[str] | None = None,
                    on_event: OnText | None = None, on_ready: Callable[[SuperLink], None] | None = None) -> None:
    """Start the SuperLink, register the branches' keys, and run until Ctrl-C; then stop it."""
    say = on_event or (lambda _msg: None)
    link = start_superlink(keys_dir, state_dir, fleet_host=fleet_host, fleet_port=fleet_port,
                           control_host=control_host, control_port=control_port)
    try:
        say(f"SuperLink pid {link.pid}: Fleet API {link.fleet_address} (gRPC-rere, TLS, node auth); "
            f"Control API https://{link.control_address}; log {link.log_path}")
        register_supernodes(link, branch_ids, on_event=say)
        if on_ready:
            on_ready(link)
        _serve([link])
        say("stopping the SuperLink")
    finally:
        link.stop()


def serve_branch(keys_dir: str | os.PathLike[str], branch_id: str, superlink_address: str, *,
                 data_path: str | os.PathLike[str], state_dir: str | os.PathLike[str],
                 runtime_port: int = SUPERNODE_RUNTIME_PORT, on_event: OnText | None = None) -> None:
    """Start the branch's SuperNode and run until Ctrl-C; then stop it."""
    say = on_event or (lambda _msg: None)
    data = Path(data_path).expanduser()
    if not data.is_file():
        raise FedbankError(f"branch data file {data} does not exist: give --data a CSV/JSONL of the branch's records")
    keys = KeyLayout.from_dir(keys_dir)
    mine = keys.branch(branch_id)
    _require([keys.ca_cert, mine.supernode_auth_key, mine.ed25519_key, keys.server_x25519_pub, keys.server_ed25519_pub],
             f"branch {branch_id}")
    node = start_supernode(keys_dir, branch_id, superlink_address, data_path=data, state_dir=state_dir,
                           runtime_port=runtime_port)
    announced = False

    def poll() -> None:
        nonlocal announced
        if not announced and node.node_id is not None:
            announced = True
            say(f"{branch_id} connected to {superlink_address} as SuperNode {node.node_id}")

    try:
        say(f"SuperNode of {branch_id} pid {node.pid} -> {superlink_address} (TLS with {KeyLayout.from_dir(keys_dir).ca_cert}); "
            f"log {node.log_path}")
        _serve([node], poll)
        say(f"stopping the SuperNode of {branch_id}")
    finally:
        node.stop()
