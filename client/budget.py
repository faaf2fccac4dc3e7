"""A branch's privacy spend: the accountant's persisted history and the budget gate.

The Opacus accountant's history (``(noise_multiplier, sample_rate, steps)``
entries) is the whole of a branch's spend.  It lives in the branch's own
directory (``privacy_state.json``, replaced atomically), so epsilon composes
over every round and survives a restart of the branch process; it is never
reset.  Before a round the gate computes the epsilon the branch *would* reach
after it and refuses to train if that exceeds the budget.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common.atomic import write_bytes_atomic
from common.errors import ConfigError
from common.privacy.accounting import epsilon_of

STATE_FILE = "privacy_state.json"


@dataclass
class PrivacyState:
    """The persisted spend of one branch."""

    accountant: str
    delta: float
    history: list[list[float]] = field(default_factory=list)
    rounds: list[dict] = field(default_factory=list)

    @property
    def epsilon(self) -> float:
        """Epsilon spent so far."""
        return epsilon_of([tuple(h) for h in self.history], self.accountant, self.delta)

    def epsilon_after(self, noise_multiplier: float, sample_rate: float, steps: int) -> float:
        """Epsilon the branch would reach after ``steps`` more DP-SGD steps."""
        return epsilon_of([tuple(h) for h in self.history] + [(noise_multiplier, sample_rate, steps)], self.accountant, self.delta)

    def record_round(self, run_id: int, server_round: int, accountant_history: list, steps: int, *,
                     noise_multiplier: float | None = None, sample_rate: float | None = None) -> float:
        """Adopt the accountant's history after a trained round; return the epsilon now spent.

        The round's own noise and sample rate are kept beside it, so the epsilon one run
        spent can be recomputed (``run_epsilon_after``).
        """
        self.history = [[float(s), float(q), int(n)] for s, q, n in accountant_history]
        epsilon = self.epsilon
        entry = {"run_id": int(run_id), "round": int(server_round), "steps": int(steps), "epsilon": epsilon}
        if noise_multiplier is not None and sample_rate is not None:
            entry.update(noise_multiplier=float(noise_multiplier), sample_rate=float(sample_rate))
        self.rounds.append(entry)
        return epsilon

    def record_without_dp(self, run_id: int, server_round: int, steps: int) -> None:
        """Record a round trained without DP (only where the branch's policy allows it): no guarantee, but never replayed."""
        self.rounds.append({"run_id": int(run_id), "round": int(server_round), "steps": int(steps), "epsilon": None,
                            "dp": False})

    def has_round(self, run_id: int, server_round: int) -> bool:
        """True if this round's spend is already recorded (a resent message)."""
        return any(r["run_id"] == int(run_id) and r["round"] == int(server_round) for r in self.rounds)

    def latest_round(self, run_id: int) -> int:
        """The latest round this branch trained for ``run_id`` (0 if none)."""
        return max((int(r["round"]) for r in self.rounds if r["run_id"] == int(run_id)), default=0)

    def run_epsilon_after(self, run_id: int, noise_multiplier: float, sample_rate: float, steps: int) -> float:
        """Epsilon that run ``run_id`` alone would have spent here after ``steps`` more steps.

        Rounds recorded without their noise (an older state file) are bounded by the
        lifetime epsilon, which can only over-state the run's share.
        """
        own = [r for r in self.rounds if r["run_id"] == int(run_id) and r.get("dp", True)]
        if any("noise_multiplier" not in r for r in own):
            return self.epsilon_after(noise_multiplier, sample_rate, steps)
        history = [(r["noise_multiplier"], r["sample_rate"], r["steps"]) for r in own]
        return epsilon_of(history + [(noise_multiplier, sample_rate, steps)], self.accountant, self.delta)

    # -- persistence -----------------------------------------------------
    @classmethod
    def load(cls, state_dir: Path, accountant: str, delta: float) -> "PrivacyState":
        """Load the branch's state, or start an empty one."""
        path = Path(state_dir) / STATE_FILE
        if not path.exists():
            return cls(accountant=accountant, delta=delta)
        data = json.loads(path.read_text(encoding="utf-8"))
        state = cls(**data)
        if state.accountant != accountant or state.delta != delta:
            raise ConfigError(
                f"branch state {path} was accounted with {state.accountant} at delta={state.delta}; "
                f"this run asks for {accountant} at delta={delta}: keep dp.accountant/dp.delta or use a new output-dir"
            )
        return state

    def save(self, state_dir: Path) -> None:
        """Write the state atomically (temp file, fsync, rename)."""
        write_bytes_atomic(Path(state_dir) / STATE_FILE, json.dumps(self.__dict__, indent=1).encode("utf-8"))


@contextlib.contextmanager
def branch_lock(state_dir: Path) -> Iterator[None]:
    """Exclusive lock on a branch's state directory for the duration of one round."""
    path = Path(state_dir) / ".train.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
