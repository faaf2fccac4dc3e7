"""The deployment's ``flower-superlink`` (TLS, SuperNode authentication) and its Control API calls.

What Flower 1.39 listens on (``flower-superlink``):

* **Fleet API** (gRPC-rere, TLS): ``--fleet-api-address HOST:PORT``, default
  port 9092.  The only port branches connect to.
* **Control + Runtime HTTP API** (HTTPS, same certificate): ``--host``/``--port``.
  In 1.39 the Control API (``flwr run``, ``flwr ls``, ``flwr supernode
  register``) and the Runtime/ServerAppIo API share this one port; the
  separate 9091/9093 gRPC APIs of earlier releases are gone.  Keep it on
  127.0.0.1 (or an admin network): it is how runs are submitted.

``flower-supernode`` (:mod:`simulations.deploy.supernode`) opens no port
reachable from outside.  The SuperLink runs as ``python -m
server.signed_superlink`` (Flower's ``flower-superlink`` that passes an
uploaded app's signatures on to the SuperNodes, which verify them).  Here:
:func:`start_superlink`, then
:func:`register_supernodes` (``flwr supernode register``), :func:`list_supernodes`
and :func:`wait_supernodes_online`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from common.errors import FedbankError, RunFailed
from common.keys.layout import KeyLayout, require_key_files
from simulations.flower_cli import flower_env, flwr_json, write_connection
from simulations.processes import (
    START_TIMEOUT,
    WILDCARD_HOSTS,
    ManagedProcess,
    OnText,
    ProcessFailed,
    free_port,
    spawn,
    wait_port,
)

#: The ``flwr`` CLI connection to the deployment's SuperLink, in the SuperLink's ``FLWR_HOME``.
DEPLOYMENT_CONNECTION = "fedbank"
FLEET_PORT = 9092
CONTROL_PORT = 9093
ONLINE_TIMEOUT = 180.0


class SuperLink(ManagedProcess):
    """A ``flower-superlink`` with TLS and SuperNode authentication, and the CLI connection to it."""

    def __init__(self, proc: ManagedProcess, *, fleet_address: str, control_address: str, flwr_home: Path,
                 keys: KeyLayout, connection: str = DEPLOYMENT_CONNECTION) -> None:
        super().__init__(proc.name, proc.popen, proc.log_path, proc.cmd)
        self.fleet_address = fleet_address
        self.control_address = control_address
        self.flwr_home = flwr_home
        self.keys = keys
        self.connection = connection


def _cli_host(control_host: str, keys: KeyLayout) -> str:
    """The host the local ``flwr`` CLI dials: it must be a name in the SuperLink certificate."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(keys.superlink_cert.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = set()
    candidates = ["127.0.0.1", "localhost"] if control_host in WILDCARD_HOSTS else [control_host]
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
    """Start the SuperLink (TLS, node auth, gRPC-rere Fleet API, no runtime pip, app signatures passed on); wait until it listens.

    ``state_dir`` holds its ``FLWR_HOME`` (with the ``flwr`` CLI connection
    :data:`DEPLOYMENT_CONNECTION`) and its database ``superlink.db``, so
    registrations and runs survive a restart.  A port of 0 picks a free one.

    Raises:
        KeyFileError: a key or certificate is missing.
        ProcessFailed: the SuperLink exited or did not listen within ``timeout``.
    """
    keys = KeyLayout.from_dir(keys_dir)
    require_key_files([keys.ca_cert, keys.superlink_cert, keys.superlink_key], "SuperLink")
    state = Path(state_dir).resolve()
    flwr_home = state / "flwr"
    fleet_port = fleet_port or free_port()
    control_port = control_port or free_port()
    cli_host = _cli_host(control_host, keys)
    control_address = f"{cli_host}:{control_port}"
    write_connection(flwr_home, DEPLOYMENT_CONNECTION, control_address, ca_cert=keys.ca_cert)
    fleet_bind = f"[{fleet_host}]:{fleet_port}" if ":" in fleet_host else f"{fleet_host}:{fleet_port}"
    cmd = [
        sys.executable, "-m", "server.signed_superlink",
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
    proc = spawn(name, cmd, flower_env(flwr_home), log_path)
    deadline = time.monotonic() + timeout
    wait_port(proc, control_host, control_port, deadline, "Control API")
    wait_port(proc, fleet_host, fleet_port, deadline, "Fleet API")
    return SuperLink(proc, fleet_address=fleet_bind, control_address=control_address, flwr_home=flwr_home, keys=keys)


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
        require_key_files([pub], f"registration of {bid}")
        data = flwr_json(superlink, ["supernode", "register", str(pub.resolve()), superlink.connection, "--name", bid],
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
    data = flwr_json(superlink, ["supernode", "ls", superlink.connection], "list SuperNodes")
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
