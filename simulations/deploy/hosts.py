"""The long-running hosts of a real deployment, one per machine, each in the foreground until Ctrl-C.

``fedbank deploy superlink`` runs :func:`serve_superlink` at the headquarters
(the SuperLink, with every branch's SuperNode key registered); ``fedbank
deploy branch`` runs :func:`serve_branch` at a branch (its SuperNode).  Each
stops what it started when interrupted, and fails in one line when its
process exits.  A branch runs only apps signed by the app-signing keys it
trusts (:func:`trust_app_keys`; by default ``<keys>/app-signing/ed25519.pub``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from common.config.policy import POLICY_FILE, BranchPolicy
from common.errors import FedbankError
from common.keys.app_signing import AppSigningKeys, write_trusted_entities
from common.keys.layout import KeyLayout, require_key_files
from simulations.deploy.superlink import CONTROL_PORT, FLEET_PORT, SuperLink, register_supernodes, start_superlink
from simulations.deploy.supernode import SUPERNODE_RUNTIME_PORT, start_supernode
from simulations.processes import ManagedProcess, OnText
from simulations.signals import sigterm_as_interrupt


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
                 runtime_port: int = SUPERNODE_RUNTIME_PORT, on_event: OnText | None = None,
                 policy_file: Path | None = None, trusted_app_keys: Sequence[Path] | None = None) -> None:
    """Start the branch's SuperNode and run until Ctrl-C; then stop it.

    ``trusted_app_keys``: the app-signing public keys whose signed apps alone
    the SuperNode runs (None: ``<keys>/app-signing/ed25519.pub``; empty: any
    app, signed or not).

    The branch's policy (``policy_file``, else ``<state_dir>/branch-policy.toml`` with safe defaults) is
    read before the SuperNode starts: a bad policy stops here in one line, nothing started.
    """
    say = on_event or (lambda _msg: None)
    data = Path(data_path).expanduser()
    if not data.is_file():
        raise FedbankError(f"branch data file {data} does not exist: give --data a CSV/JSONL of the branch's records")
    keys = KeyLayout.from_dir(keys_dir)
    mine = keys.branch(branch_id)
    require_key_files([keys.ca_cert, mine.supernode_auth_key, mine.ed25519_key, keys.server_x25519_pub, keys.server_ed25519_pub],
             f"branch {branch_id}")
    policy = BranchPolicy.ensure(Path(state_dir), policy_file)
    say(f"{branch_id} enforces its policy ({policy_file or Path(state_dir) / POLICY_FILE}): DP required "
        f"{policy.dp_required}, lifetime budget epsilon {policy.lifetime_budget_epsilon:g}")
    extra = {"policy-file": str(policy_file)} if policy_file is not None else None
    trusted = trust_app_keys(keys_dir, state_dir, trusted_app_keys)
    say(f"{branch_id} runs only apps signed by {', '.join(str(p) for p in _trusted_keys(keys_dir, trusted_app_keys))}"
        if trusted else f"{branch_id} runs ANY app the SuperLink sends (no trusted app-signing key)")
    node = start_supernode(keys_dir, branch_id, superlink_address, data_path=data, state_dir=state_dir,
                           runtime_port=runtime_port, extra_node_config=extra, trusted_entities=trusted)
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


def trust_app_keys(keys_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str],
                   public_keys: Sequence[Path] | None = None) -> Path | None:
    """Write ``<state_dir>/trusted-entities.yaml`` from the app-signing keys a branch trusts; its path.

    ``public_keys`` None: the deployment's ``<keys>/app-signing/ed25519.pub``;
    empty: trust no key, so run any app (returns None).

    Raises:
        KeyFileError: a public key is missing or not Ed25519.
    """
    keys = _trusted_keys(keys_dir, public_keys)
    if not keys:
        return None
    return write_trusted_entities(Path(state_dir) / "trusted-entities.yaml", keys)


def _trusted_keys(keys_dir: str | os.PathLike[str], public_keys: Sequence[Path] | None) -> list[Path]:
    return [AppSigningKeys.in_keys_dir(keys_dir).public] if public_keys is None else list(public_keys)


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
