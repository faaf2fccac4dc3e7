"""Run the fedbank Flower app in Flower's simulation engine, the 1.39 way.

``flwr run`` talks to a SuperLink *connection* named in
``$FLWR_HOME/config.toml``.  The runner makes that real and contained:

1. ``FLWR_HOME`` lives inside the run directory, with one connection,
   ``local-simulation``, pointing at a SuperLink on a free 127.0.0.1 port;
2. it starts that ``flower-superlink --simulation`` itself (runtime
   dependency installation off, so no torch is pip-installed per run);
3. it calls ``flwr run APP local-simulation --stream`` with the federation
   sized by ``--federation-config`` (N SuperNodes, 1 CPU each), APP being
   a temporary copy of the app's bundle files
   (:mod:`simulations.app_bundle`: Flower would walk a ``.venv`` in the checkout);
4. it reads the run's *final status* with ``flwr ls --format json``, because
   ``flwr run`` can exit 0 for a failed run;
5. it stops, by PID, the SuperLink it started, and nothing else.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from common.atomic import write_bytes_atomic
from common.config.policy import POLICY_FILE, BranchPolicy
from common.config.run import RunConfig
from common.errors import ConfigError, RunFailed
from common.keys.layout import KeyLayout
from common.keys.provision import init_keys
from simulations.app_bundle import stage_app
from simulations.flower_cli import RUN_STARTED, final_status, flower_bin, flower_env, is_success, run_command, write_connection
from simulations.processes import START_TIMEOUT, ManagedProcess, free_port, spawn, wait_port
from simulations.signals import sigterm_as_interrupt

#: The ``flwr`` CLI connection to the simulation's own SuperLink, in the run's ``FLWR_HOME``.
SIMULATION_CONNECTION = "local-simulation"


@dataclass
class SimulationResult:
    """Outcome of one simulated run."""

    run_id: int
    status: str
    sub_status: str
    output_dir: Path
    log_path: Path


class LocalSuperLink:
    """A simulation-mode SuperLink on 127.0.0.1 that this process owns and stops.

    It is a :class:`~simulations.processes.ManagedProcess`: stopping it also
    stops what was forked under it, the simulation engine's Ray helpers
    included (they start a session of their own, out of reach of the group
    signal).  :meth:`remember_helpers`, called while the run goes on, keeps
    them known even if the SuperLink dies on its own before it is stopped.
    """

    def __init__(self, flwr_home: Path, log_path: Path) -> None:
        self.flwr_home = flwr_home
        self.log_path = log_path
        self.connection = SIMULATION_CONNECTION
        self.port = free_port()
        self.proc: ManagedProcess | None = None
        self._looked = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "LocalSuperLink":
        write_connection(self.flwr_home, self.connection, self.address, insecure=True)
        self.proc = spawn(
            "flower-superlink",
            [flower_bin("flower-superlink"), "--insecure", "--simulation", "--disable-runtime-dependency-installation",
             "--host", "127.0.0.1", "--port", str(self.port), "--database", str(self.flwr_home / "state.db")],
            flower_env(self.flwr_home), self.log_path,
        )
        try:  # __exit__ does not run when __enter__ raises (Ctrl-C / SIGTERM included): stop it here
            wait_port(self.proc, "127.0.0.1", self.port, time.monotonic() + START_TIMEOUT, "port")
        except BaseException:
            self.stop(interrupted=True)
            raise
        return self

    def remember_helpers(self, every: float = 5.0) -> None:
        """Note the processes forked under the SuperLink now (at most once per ``every`` seconds)."""
        if self.proc is not None and time.monotonic() - self._looked >= every:
            self._looked = time.monotonic()
            self.proc.descendants()

    def stop(self, *, interrupted: bool = False) -> None:
        """Stop the SuperLink, its process group and every process seen forked under it.

        ``interrupted`` (Ctrl-C, SIGTERM, a failure or a timeout mid-run): the
        ServerApp and its Ray helpers are frozen first, so the run ends where
        it was: no further round, ledger line or checkpoint, and no branch
        ledgered as failed because this stop was ending its ClientApp.
        """
        if self.proc is not None:
            self.proc.stop(halt_helpers=interrupted)

    def __exit__(self, exc_type, *exc) -> None:
        self.stop(interrupted=exc_type is not None)


def give_branches_policy(policy_file: Path, output_dir: Path, num_branches: int) -> None:
    """Copy ``policy_file`` (checked first) to every simulated branch that has no policy yet; never overwrite one."""
    policy = BranchPolicy.load(policy_file)
    for i in range(num_branches):
        target = output_dir / "branches" / f"branch-{i}" / POLICY_FILE
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(target, policy.to_toml().encode("utf-8"))


def simulate(app_dir: Path, output_dir: Path, num_branches: int, run_config: Mapping[str, object],
             num_cpus: float = 1.0, num_gpus: float = 0.0, on_line: Callable[[str], None] | None = None,
             timeout: float = 3600, branch_policy: Path | None = None) -> SimulationResult:
    """Run the app at ``app_dir`` over ``num_branches`` simulated branches.

    ``branch_policy``: a branch policy file (TOML) given to every simulated branch that has
    none yet (each branch's ``<output-dir>/branches/<id>/branch-policy.toml``); without it
    each branch writes the safe defaults at its first round.

    Raises:
        RunFailed: the SuperLink could not start, or the run did not finish
            with status ``completed:finished``.
    """
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    flwr_home = output_dir / ".flwr"
    log_path = output_dir / "flower.log"
    config = {**run_config, "output-dir": str(output_dir), "num-branches": num_branches}
    try:
        cfg = RunConfig.from_flower({**RunConfig().to_flower(), **config})
    except ConfigError:
        cfg = None  # the ServerApp reports the bad config (the CLI validated it before anyway)
    if cfg is not None:
        ensure_simulation_keys(cfg, num_branches)
    if branch_policy is not None:
        give_branches_policy(Path(branch_policy), output_dir, num_branches)
    log_start = log_path.stat().st_size if log_path.exists() else 0
    with sigterm_as_interrupt(), LocalSuperLink(flwr_home, output_dir / "superlink.log") as superlink, ExitStack() as stack:
        # flwr run would walk a .venv inside the checkout; the copy lives outside the run directory, which
        # may itself lie inside the checkout (a later run would bundle it)
        staged = stack.enter_context(tempfile.TemporaryDirectory(prefix="fedbank-app-"))
        app = stage_app(app_dir, Path(staged) / "app")
        cmd = run_command(app, superlink.connection, config, _federation_config(num_branches, num_cpus, num_gpus))
        run_id = None
        with log_path.open("a", encoding="utf-8") as log:
            proc = subprocess.Popen(cmd, env=flower_env(flwr_home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, bufsize=1)
            try:
                deadline = time.monotonic() + timeout
                assert proc.stdout is not None
                for line in proc.stdout:
                    log.write(line)
                    log.flush()
                    superlink.remember_helpers()
                    match = RUN_STARTED.search(line)
                    if match:
                        run_id = int(match.group(1))
                    if on_line:
                        on_line(line.rstrip("\n"))
                    if time.monotonic() > deadline:
                        raise RunFailed(f"run exceeded {timeout:.0f} s; see {log_path}")
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    raise RunFailed(f"flwr run did not exit 120 s after its output ended; see {log_path}") from None
            finally:  # interrupted, timed out or done: the CLI that streams the run goes with us
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        if not superlink.proc.running:  # killed, or out of memory: flwr ls would only say it is unreachable
            then = (f"rounds checkpointed so far are kept: `fedbank simulate --resume {output_dir}` continues the run"
                    if (output_dir / "checkpoint" / "checkpoint.json").exists()
                    else "no round was checkpointed yet: start again with a new --out")
            raise RunFailed(f"flower-superlink exited with code {superlink.proc.returncode} during the run; see "
                            f"{superlink.log_path}; {then}")
        if run_id is None:
            raise RunFailed(f"flwr run did not start a run (exit code {proc.returncode}); see {log_path}")
        status, sub = final_status(superlink, run_id)
    result = SimulationResult(run_id, status, sub, output_dir, log_path)
    if not is_success(status, sub):
        from simulations.local.preflight import explain_failure

        raise explain_failure(RunFailed(f"run {run_id} ended with status {status}:{sub}; see {log_path}"), log_path, log_start)
    return result


def ensure_simulation_keys(cfg: RunConfig, num_branches: int) -> None:
    """Create the envelope keys of a simulated federation (branch-0..N-1) unless they exist."""
    if not cfg.security.envelope:
        return
    wanted = [f"branch-{i}" for i in range(num_branches)]
    if (cfg.keys_dir / "manifest.json").exists():
        missing = sorted(set(wanted) - set(KeyLayout.from_dir(cfg.keys_dir).branch_ids))
        if missing:
            raise ConfigError(f"key directory {cfg.keys_dir} has no keys for {', '.join(missing[:3])}: "
                              f"run 'fedbank keys init --branches {num_branches} --out DIR --force' or set security.keys-dir")
        return
    init_keys(cfg.keys_dir, wanted)


def _federation_config(num_branches: int, num_cpus: float, num_gpus: float) -> str:
    """``--federation-config`` sizing the simulation (CPU counts must be integers)."""
    cpus = int(num_cpus) if float(num_cpus).is_integer() else num_cpus
    parts = [f"num-supernodes={num_branches}", f"client-resources-num-cpus={cpus}"]
    if num_gpus:
        parts.append(f"client-resources-num-gpus={num_gpus}")
    return " ".join(parts)
