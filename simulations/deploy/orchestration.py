"""Run fedbank as a real Flower 1.39 deployment on 127.0.0.1: one SuperLink, one SuperNode per branch.

Every connection is TLS (the CA, SuperLink certificate and key come from a
``fedbank keys init`` directory) and the SuperLink runs with
``--enable-supernode-auth``: only SuperNodes whose public key was registered
with ``flwr supernode register`` may connect.  Runtime dependency
installation is off everywhere, telemetry is off, and every process this
module starts is a :class:`~simulations.processes.ManagedProcess` that it
stops again, by PID and process group, together with the helpers Flower
forked from it (SuperExec, ServerApp, ClientApp) and nothing else.

This module wires a deployment together from its building blocks, which are
reusable on their own (e.g. to kill and restart a SuperLink mid-run):
:mod:`simulations.deploy.superlink` (the SuperLink, SuperNode registration;
which port is for whom), :mod:`simulations.deploy.supernode` (a branch's
SuperNode), :mod:`simulations.deploy.runs` (a signed run and its end).  The
deployment's app-signing key signs the app and every SuperNode trusts only it.
:func:`prepare_branch_data` writes each branch's own records,
:class:`LocalDeployment` starts and stops the pieces under one directory and
:func:`deploy_local` runs one federation end to end.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.errors import FedbankError
from common.keys.app_signing import AppSigningKeys, init_app_signing
from common.keys.layout import KeyLayout
from simulations.deploy.runs import DeploymentResult, FlowerRun, start_run, wait_run
from simulations.deploy.superlink import (
    ONLINE_TIMEOUT,
    SuperLink,
    register_supernodes,
    start_superlink,
    wait_supernodes_online,
)
from simulations.deploy.hosts import trust_app_keys
from simulations.deploy.supernode import SuperNode, start_supernode
from simulations.processes import ManagedProcess, OnText, free_port
from simulations.signals import signals_deferred, sigterm_as_interrupt


# --------------------------------------------------------------------------- branch data


def prepare_branch_data(cfg, out_dir: Path, branch_ids: Sequence[str]) -> tuple[dict[str, Path], dict[str, object]]:
    """Write each branch's own CSV (``OUT/branches/<id>/data.csv``) from the run's corpus.

    The corpus (``data.source``: the synthetic generator or a CSV/JSONL) is
    split and partitioned exactly as in simulation (``common.data.sources.simulation_split``
    with ``num-branches`` = the number of branches), so the server's held-out
    set is the part no branch holds.  Returns the files and the run-config
    additions that pin one label set on every node (``data.labels``).
    """
    from common.data.files import corpus_table
    from common.data.sources import simulation_split

    train, _, parts, names = simulation_split(cfg)
    files: dict[str, Path] = {}
    for bid, idx in zip(branch_ids, parts):
        path = out_dir / "branches" / bid / "data.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        subset = train.subset(idx)
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            header, rows = corpus_table(cfg, subset)
            writer.writerow(header)
            writer.writerows(rows)
        files[bid] = path
    extra: dict[str, object] = {}
    if names and not cfg.data.labels.strip():  # chat has no label set
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
        self.app_dir = Path(app_dir).resolve() if app_dir else Path(__file__).resolve().parents[2]
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
        """Create the key directory and the app-signing key pair (once each)."""
        from common.keys.provision import init_keys

        if not AppSigningKeys.in_keys_dir(self.keys_dir).private.is_file():
            init_app_signing(self.keys_dir)
        if (self.keys_dir / "manifest.json").is_file():
            return KeyLayout.from_dir(self.keys_dir)
        layout = init_keys(self.keys_dir, self.branch_ids, hosts=["127.0.0.1", "localhost"])
        self.on_event(f"keys for {len(self.branch_ids)} branches in {self.keys_dir} (apps signed with "
                      f"{AppSigningKeys.in_keys_dir(self.keys_dir).private})")
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
        """Start (or restart) one branch's SuperNode, trusting the deployment's app-signing key unless told otherwise."""
        old = self.supernodes.get(branch_id)
        if old is not None and old.running:
            return old
        if "trusted_entities" not in kwargs:
            kwargs["trusted_entities"] = trust_app_keys(self.keys_dir, self.state_dir(branch_id))
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

    def start_run(self, run_config: Mapping[str, object], on_line: OnText | None = None, *,
                  app_dir: Path | None = None, signing_key: Path | None = None, unsigned: bool = False) -> FlowerRun:
        """Submit the app (this deployment's, or ``app_dir``) signed with ``signing_key`` (default: the
        deployment's app-signing key), or with ``unsigned`` through raw ``flwr run``."""
        key = None if unsigned else (signing_key or AppSigningKeys.in_keys_dir(self.keys_dir).private)
        run = start_run(self._link(), app_dir or self.app_dir, run_config, self.log_dir / "flwr-run.log", on_line,
                        signing_key=key)
        self.runs.append(run)
        self._track(run.process)
        return run

    def wait_run(self, run: FlowerRun, timeout: float, require_success: bool = True) -> DeploymentResult:
        watch = [self._link(), *self.supernodes.values()]
        result = wait_run(run, timeout, watch=watch, require_success=require_success)
        result.output_dir, result.log_dir, result.pids = self.out, self.log_dir, self.pids()
        return result

    def stop_all(self) -> None:
        """Stop every process started here: runs, SuperNodes, then the SuperLink (a Ctrl-C meanwhile waits)."""
        with signals_deferred():
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
    key, ``num_branches`` SuperNodes (trusting only the app-signing key made in
    ``OUT/keys/app-signing``), and the app signed with that key and streamed, with
    ``run_config`` plus ``output-dir=OUT``, ``num-branches``,
    ``security.keys-dir=OUT/keys`` and a pinned ``data.labels``.  The
    ServerApp writes ``adapter/``, ``metrics.json`` and ``ledger.jsonl`` into
    ``OUT``; logs go to ``OUT/logs``.

    Raises:
        ConfigError / DataError: the run config or data is invalid (before anything starts).
        ProcessFailed: a process exited or a wait timed out (naming it and its log).
        RunFailed: the run ended with another status than ``finished:completed``.
    """
    from common.config.run import RunConfig

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
