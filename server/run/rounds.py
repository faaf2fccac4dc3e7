"""The round loop of the ServerApp: train, evaluate, checkpoint; the same for every aggregation path.

Flower's ``Strategy.start`` always runs rounds 1..N from the initial arrays;
a resumed run must start after its last checkpointed round, and a run whose
every branch has exhausted its budget must end cleanly.  This loop adds those
two behaviours around a :class:`RoundDriver`, which runs one round's messaging
and aggregation: :class:`server.run.standard_loop.StandardRounds` (each
branch's update admitted on its own) or :class:`server.run.secagg_loop.SecAggRounds`
(SecAgg+: only the sum).  The setup and finish around it are
:class:`server.run.setup.ServerRun`'s.
"""

from __future__ import annotations

from typing import Protocol

from flwr.app import ArrayRecord
from flwr.common.logger import log

from server.run.setup import ServerRun

INFO = 20


class RoundDriver(Protocol):
    """One aggregation path, a round at a time."""

    def summary(self) -> None:
        """Log how rounds will be run."""

    def train_round(self, server_round: int, arrays: ArrayRecord) -> ArrayRecord:
        """Run ``server_round`` from the global ``arrays``; return the new global (``arrays`` when not aggregated)."""

    def checkpoint(self, server_round: int, arrays: ArrayRecord) -> None:
        """Checkpoint the state after ``server_round`` (where the path can resume)."""

    def all_exhausted(self) -> bool:
        """True when the last round's every admitted reply was a budget refusal."""


def run_rounds(driver: RoundDriver, run: ServerRun) -> ArrayRecord:
    """Run rounds ``run.first_round..num-rounds``; return the final global arrays."""
    arrays = run.initial_arrays()
    driver.summary()
    num_rounds = run.cfg.federation.num_rounds
    for server_round in range(run.first_round, num_rounds + 1):
        log(INFO, "[ROUND %s/%s]", server_round, num_rounds)
        arrays = driver.train_round(server_round, arrays)
        run.evaluator(server_round, arrays)
        driver.checkpoint(server_round, arrays)
        if driver.all_exhausted():
            log(INFO, "fedbank: every branch has exhausted its privacy budget after round %d; the run ends here", server_round)
            break
    return arrays
