"""Flower 1.39's command line as fedbank drives it: binaries, environment, SuperLink connection, runs.

Shared by the simulation runner (:mod:`simulations.local.runner`) and the
deployment (:mod:`simulations.deploy`):

* :func:`flower_bin` and :func:`flower_env`: the ``flwr`` / ``flower-*``
  executables of this interpreter's environment, and the environment Flower
  processes run in (a contained ``FLWR_HOME``, no telemetry, no runtime pip);
* :func:`write_connection`: ``$FLWR_HOME/config.toml`` with the one SuperLink
  connection the ``flwr`` CLI uses (insecure for the simulation's SuperLink,
  TLS verified with the deployment CA otherwise);
* :func:`run_command`: ``flwr run APP CONNECTION --stream`` with its run config;
* :func:`flwr_json`, :func:`run_status` and :func:`final_status`: ``flwr ...
  --format json`` calls and a run's final status, which is what tells
  whether a run succeeded (``flwr run`` can exit 0 for a failed run).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from common.errors import RunFailed

#: How long a ``flwr`` CLI call (``ls``, ``supernode register``, ...) may take.
CLI_TIMEOUT = 60.0
#: The line of ``flwr run``'s output that names the run id (and of the signed run's, which prints the same).
RUN_STARTED_TEXT = "Successfully started run"
RUN_STARTED = re.compile(RUN_STARTED_TEXT + r" (\d+)")


class SuperLinkConnection(Protocol):
    """What the ``flwr`` CLI needs to talk to a SuperLink: the ``FLWR_HOME``, the connection name, its log."""

    flwr_home: Path
    connection: str
    log_path: Path


def flower_bin(name: str) -> str:
    """The path of Flower executable ``name`` beside this interpreter, else the bare name (found on PATH)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def flower_env(flwr_home: Path) -> dict[str, str]:
    """Environment for Flower processes: contained home, no telemetry, no pip."""
    env = os.environ.copy()
    env.update({
        # Flower starts flwr-simulation / flwr-serverapp / flwr-clientapp by name: from this
        # interpreter's environment first, even when it was not activated (.venv/bin/fedbank ...).
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "FLWR_HOME": str(flwr_home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "RAY_DEDUP_LOGS": "0",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def write_connection(flwr_home: Path, name: str, address: str, *, insecure: bool = False,
                     ca_cert: Path | None = None) -> Path:
    """Write ``$FLWR_HOME/config.toml`` with one SuperLink connection ``name``, the default.

    ``insecure``: plain gRPC (the simulation's SuperLink on 127.0.0.1);
    ``ca_cert``: TLS verified with that CA (``root-certificates``); neither:
    TLS verified with the system CAs.
    """
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f"default = {json.dumps(name)}", "", f"[superlink.{name}]", f"address = {json.dumps(address)}"]
    if insecure:
        lines.append("insecure = true")
    if ca_cert is not None:
        lines.append(f"root-certificates = {json.dumps(str(Path(ca_cert).resolve()))}")
    path = flwr_home / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_command(app_dir: str | os.PathLike[str], connection: str, run_config: Mapping[str, object],
                federation_config: str | None = None) -> list[str]:
    """``flwr run APP CONNECTION --stream`` with ``--federation-config`` and ``--run-config`` overrides."""
    cmd = [flower_bin("flwr"), "run", str(app_dir), connection, "--stream"]
    if federation_config:
        cmd += ["--federation-config", federation_config]
    if run_config:
        cmd += ["--run-config", run_config_text(run_config)]
    return cmd


def run_config_text(run_config: Mapping[str, object]) -> str:
    """Run-config overrides as ``flwr run --run-config`` takes them: ``key=value`` pairs, TOML values."""
    return " ".join(f"{k}={_toml(v)}" for k, v in run_config.items())


def _toml(value: object) -> str:
    """A run-config override value in TOML syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def flwr_json(link: SuperLinkConnection, args: Sequence[str], what: str, timeout: float = CLI_TIMEOUT) -> dict:
    """Run a ``flwr`` CLI command with ``--format json``; its parsed output (``success`` may be false)."""
    cmd = [flower_bin("flwr"), *args, "--format", "json"]
    try:
        out = subprocess.run(cmd, env=flower_env(link.flwr_home), capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise RunFailed(f"`flwr {' '.join(args[:2])}` ({what}) did not answer within {timeout:.0f} s; "
                        f"is the SuperLink up? see {link.log_path}") from err
    try:
        data = json.loads(out.stdout[out.stdout.index("{"):])
    except ValueError as err:
        raise RunFailed(f"`flwr {' '.join(args[:2])}` ({what}) gave no JSON (exit code {out.returncode}): "
                        f"{(out.stdout + out.stderr).strip()[-300:]}") from err
    return data


def run_status(link: SuperLinkConnection, run_id: int) -> tuple[str, str]:
    """(status, sub-status) of a run, from ``flwr ls --run-id``."""
    data = flwr_json(link, ["ls", link.connection, "--run-id", str(run_id)], f"status of run {run_id}")
    try:
        status = data["runs"][0]["status"]
    except (KeyError, IndexError, TypeError) as err:
        raise RunFailed(f"could not read the status of run {run_id}: {str(data)[:300]}") from err
    main, _, sub = str(status).partition(":")
    return main, sub


def final_status(link: SuperLinkConnection, run_id: int, settle: float = 15.0) -> tuple[str, str]:
    """A run's status once it has ended: the stream of ``flwr run`` can end a moment before the status settles."""
    status, sub = run_status(link, run_id)
    deadline = time.monotonic() + settle
    while status not in ("finished", "completed") and time.monotonic() < deadline:
        time.sleep(0.5)
        status, sub = run_status(link, run_id)
    return status, sub


def is_success(status: str, sub: str) -> bool:
    """Whether a run's (status, sub-status) says it finished and completed."""
    return (status, sub) in {("finished", "completed"), ("completed", "finished")}
