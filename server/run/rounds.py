"""The round loop of the ServerApp: train, aggregate, evaluate, checkpoint.

Flower's ``Strategy.start`` always runs rounds 1..N from the initial arrays;
a resumed run must start after its last checkpointed round, and a run whose
every branch has exhausted its budget must end cleanly.  This loop drives
the strategy's own ``configure_train``/``aggregate_train`` (Flower's grid does
the messaging) and adds those two behaviours.
"""

from __future__ import annotations

from typing import Callable

from flwr.app import ArrayRecord, ConfigRecord
from flwr.common.logger import log
from flwr.serverapp import Grid

from server.aggregation.strategy import BranchStrategy

INFO = 20


def run_rounds(strategy: BranchStrategy, grid: Grid, *, arrays: ArrayRecord, first_round: int, num_rounds: int,
               train_config: dict, timeout: float,
               evaluate: Callable[[int, ArrayRecord], object],
               checkpoint: Callable[[int, ArrayRecord], None]) -> ArrayRecord:
    """Run rounds ``first_round..num_rounds``; return the final global arrays."""
    strategy.summary()
    for server_round in range(first_round, num_rounds + 1):
        log(INFO, "[ROUND %s/%s]", server_round, num_rounds)
        messages = strategy.configure_train(server_round, arrays, ConfigRecord(dict(train_config)), grid)
        replies = grid.send_and_receive(messages=messages, timeout=timeout)
        aggregated, _ = strategy.aggregate_train(server_round, replies)
        if aggregated is not None:
            arrays = aggregated
        evaluate(server_round, arrays)
        checkpoint(server_round, arrays)
        if strategy.all_exhausted():
            log(INFO, "fedbank: every branch has exhausted its privacy budget after round %d; the run ends here", server_round)
            break
    return arrays
