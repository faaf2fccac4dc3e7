"""Flower 1.39's deployment processes: the SuperLink, SuperNodes and runs submitted with ``flwr run``.

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
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


from common.errors import FedbankError, KeyFileError
from common.keys.layout import KeyLayout
from common.errors import RunFailed
from simulations.local.runner import _bin, _toml, flower_env, free_port
from simulations.processes import ManagedProcess, OnText, ProcessFailed, _WILDCARD, _last_error_line, _spawn, _wait_port


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

