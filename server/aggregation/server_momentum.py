"""Server-side momentum on the aggregated update (FedAvgM, Hsu et al. 2019).

Each round the aggregator (FedAvg, a robust aggregator, and any central-DP
noise) returns a new global adapter.  With ``aggregation.server-momentum`` or
``aggregation.server-learning-rate`` set, the server treats the change it
received as a pseudo-gradient ``g = global - aggregate`` and steps

    v <- momentum * v + g
    global <- global - server_learning_rate * v

It only post-processes what was already released, so it spends no privacy
(per-record DP of the branches and client-level central DP are unchanged).
Under DP noise and non-IID branches it carries progress across rounds: the
noise of one round partly cancels against the next.  The velocity ``v`` is
part of the server's state: it is checkpointed with the adapter so a resumed
run continues exactly (see :mod:`server.records.checkpoint`).
"""

from __future__ import annotations

import numpy as np


class ServerMomentum:
    """The server's velocity and its step; applied after aggregation."""

    def __init__(self, learning_rate: float = 1.0, momentum: float = 0.0) -> None:
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.velocity: dict[str, np.ndarray] | None = None

    @property
    def active(self) -> bool:
        """False for plain averaging (learning rate 1, no momentum): :meth:`step` is then the identity."""
        return self.momentum != 0.0 or self.learning_rate != 1.0

    def step(self, current: dict[str, np.ndarray], aggregate: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The next global adapter from the one sent (``current``) and the aggregator's result."""
        if not self.active:
            return aggregate
        if set(current) != set(aggregate):
            raise ValueError("server momentum: the aggregate's arrays do not match the global adapter's")
        grad = {k: np.asarray(current[k], dtype=np.float32) - np.asarray(aggregate[k], dtype=np.float32) for k in current}
        if self.velocity is None:
            self.velocity = grad
        elif set(self.velocity) != set(grad):
            raise ValueError("server momentum: the checkpointed velocity does not match the global adapter's arrays")
        else:
            self.velocity = {k: (self.momentum * self.velocity[k] + grad[k]).astype(np.float32) for k in grad}
        return {k: (np.asarray(current[k], dtype=np.float32) - self.learning_rate * self.velocity[k]).astype(np.float32)
                for k in current}

    def state_arrays(self) -> dict[str, np.ndarray] | None:
        """The velocity to checkpoint (None before the first step or when inactive)."""
        return dict(self.velocity) if self.active and self.velocity is not None else None

    def load_state_arrays(self, velocity: dict[str, np.ndarray] | None) -> None:
        """Restore the velocity of a checkpoint."""
        self.velocity = {k: np.asarray(v, dtype=np.float32) for k, v in velocity.items()} if velocity else None
