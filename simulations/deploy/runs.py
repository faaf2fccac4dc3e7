"""Runs submitted to a deployment's SuperLink: a signed (or raw ``flwr run``) submission in progress, and its end.

:func:`start_run` submits the app signed with the app-signing key
(:mod:`simulations.deploy.signed_run`), which the branches' SuperNodes
require; without a key it runs the raw ``flwr run ... --stream``, whose app
only SuperNodes started without trusted app keys run.  :func:`hq_connection`
is the ``flwr`` connection from which ``fedbank deploy run`` submits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import RunFailed
from simulations.flower_cli import (
    CLI_TIMEOUT,
    RUN_STARTED,
    SuperLinkConnection,
    final_status,
    flower_env,
    is_success,
    run_command,
    run_config_text,
    write_connection,
)
from simulations.app_bundle import stage_app
from simulations.processes import ManagedProcess, OnText, last_error_suffix


class FlowerRun:
    """A run submission (signed, or ``flwr run``) streaming its log; its output goes to ``log_path`` and ``on_line``."""

    def __init__(self, superlink: SuperLinkConnection, cmd: Sequence[str], log_path: Path, on_line: OnText | None = None) -> None:
        self.superlink = superlink
        self.log_path = log_path
        self.run_id: int | None = None
        self.on_line = on_line
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(list(cmd), env=flower_env(superlink.flwr_home), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                      start_new_session=True)
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
                match = RUN_STARTED.search(line)
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

    def wait_streamed(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for ``flwr run`` to stop streaming."""
        self._thread.join(timeout)

    def wait_started(self, timeout: float = CLI_TIMEOUT) -> int:
        """The run id, once the SuperLink accepted the run."""
        if not self._started.wait(timeout) or self.run_id is None:
            self.stop()
            raise RunFailed(f"flwr run did not start a run within {timeout:.0f} s (exit code {self.popen.poll()}); "
                            f"see {self.log_path}" + last_error_suffix(self.log_path))
        return self.run_id

    def stop(self) -> None:
        """Stop the ``flwr run`` client (the run itself lives on in the SuperLink)."""
        self.process.stop(timeout=5)
        self._thread.join(timeout=5)


def start_run(superlink: SuperLinkConnection, app_dir: str | os.PathLike[str], run_config: Mapping[str, object],
              log_path: Path, on_line: OnText | None = None, signing_key: Path | None = None) -> FlowerRun:
    """Submit the app at ``app_dir`` to the SuperLink, signed with ``signing_key`` (else raw ``flwr run``); returns at once."""
    app = Path(app_dir).resolve()
    if signing_key is None:  # flwr run takes a directory; it would walk a .venv in the checkout, its copy is quick
        cmd = run_command(stage_app(app, Path(log_path).parent / "app-bundle"), superlink.connection, run_config)
    else:
        cmd = [sys.executable, "-m", "simulations.deploy.signed_run", str(app), superlink.connection,
               "--signing-key", str(Path(signing_key).resolve())]
        if run_config:
            cmd += ["--run-config", run_config_text(run_config)]
    return FlowerRun(superlink, cmd, log_path, on_line)


@dataclass
class ControlConnection:
    """A ``flwr`` connection to a SuperLink's Control API, in its own ``FLWR_HOME``."""

    flwr_home: Path
    connection: str
    log_path: Path


def hq_connection(state_dir: Path, address: str, ca_cert: Path, connection: str = "fedbank") -> ControlConnection:
    """Write ``state_dir/flwr/config.toml`` with a TLS connection to the Control API at ``address``."""
    flwr_home = Path(state_dir).resolve() / "flwr"
    write_connection(flwr_home, connection, address, ca_cert=ca_cert)
    return ControlConnection(flwr_home, connection, Path(state_dir).resolve() / "flwr-run.log")


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
        run.wait_streamed(0.5)
    run.process.stop(timeout=5)
    status, sub = final_status(run.superlink, run_id)
    if require_success and not is_success(status, sub):
        raise RunFailed(f"run {run_id} ended with status {status}:{sub}; see {run.log_path} and {run.superlink.log_path}"
                        + last_error_suffix(run.log_path))
    return DeploymentResult(run_id, status, sub)
