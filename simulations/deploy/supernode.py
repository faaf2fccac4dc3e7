"""A branch's ``flower-supernode`` in a deployment: TLS verified with the CA, authenticated with its key.

A SuperNode opens no port reachable from outside: its own Runtime HTTP API
(``--port``, default 9094) is bound to 127.0.0.1 for its local
SuperExec/ClientApp only.  It dials the SuperLink's Fleet API
(:mod:`simulations.deploy.superlink`), which admits it only if its public key
was registered.  Its node config tells the ClientApp which branch it is and
where that branch's data, privacy state and keys are.  With
``trusted_entities`` (Flower's ``--trusted-entities``) it runs only app
bundles signed by one of those keys (:mod:`common.keys.app_signing`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from common.errors import FedbankError
from common.keys.layout import KeyLayout, require_key_files
from simulations.flower_cli import flower_bin, flower_env
from simulations.processes import ManagedProcess, free_port, spawn

SUPERNODE_RUNTIME_PORT = 9094
_NODE_ID = re.compile(r"SuperNode ID: (\d+)")


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
                    max_wait_time: float | None = None, trusted_entities: Path | None = None) -> SuperNode:
    """Start a branch's ``flower-supernode``: TLS verified with the CA, authenticated with its P-384 key.

    Its node config carries ``branch-id``, ``data-path``, ``state-dir`` (the
    branch's privacy accountant) and ``keys-dir`` (its Ed25519 signing key
    and the server's public keys, for sealed updates).  ``runtime_port`` is
    its local Runtime API port (0 = a free one; distinct per SuperNode on one
    host).  ``verify_with_ca=False`` leaves out ``--root-certificates`` (then
    Flower falls back to the system CAs and the TLS handshake fails): only to
    show that a client without the CA cannot connect.  ``trusted_entities``:
    the YAML of app-signing keys whose signed apps alone it runs (None: any
    app the SuperLink sends).

    Returns at once; the SuperNode connects in the background (see
    :func:`wait_supernodes_online`).

    Raises:
        KeyFileError: the branch's keys or the CA certificate are missing.
    """
    keys = KeyLayout.from_dir(keys_dir)
    bkeys = keys.branch(branch_id)
    require_key_files([keys.ca_cert, bkeys.supernode_auth_key], f"SuperNode of {branch_id}")
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
    cmd = [flower_bin("flower-supernode"), "--superlink", superlink_address]
    if verify_with_ca:
        cmd += ["--root-certificates", str(keys.ca_cert.resolve())]
    cmd += [
        "--auth-supernode-private-key", str(bkeys.supernode_auth_key.resolve()),
        "--node-config", node_config_string(config),
        "--isolation", "subprocess",
        "--host", "127.0.0.1", "--port", str(runtime_port or free_port()),
    ]
    if trusted_entities is not None:
        require_key_files([Path(trusted_entities)], f"SuperNode of {branch_id} (trusted app-signing keys)")
        cmd += ["--trusted-entities", str(Path(trusted_entities).resolve())]
    if max_retries is not None:
        cmd += ["--max-retries", str(max_retries)]
    if max_wait_time is not None:
        cmd += ["--max-wait-time", str(max_wait_time)]
    log_path = log_path or state / "supernode.log"
    proc = spawn(branch_id, cmd, flower_env(flwr_home), log_path)
    return SuperNode(proc, branch_id, {k: str(v) for k, v in config.items()}, flwr_home)
