"""The server's optimizer step on the aggregated update: FedAvgM, FedAdam, FedYogi, FedAdagrad.

``aggregation.server-optimizer = "sgd"`` (default) is server momentum (FedAvgM,
Hsu et al. 2019); ``adam``, ``yogi`` and ``adagrad`` are the adaptive server
optimizers of Reddi et al. (ICLR 2021), computed by Flower's own
``FedAdam``/``FedYogi``/``FedAdagrad`` strategies (:class:`ServerAdaptive`).

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
from flwr.app import Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAdagrad, FedAdam, FedYogi

from common.config.run import RunConfig
from common.wire.protocol import arrays_to_record, record_to_arrays

# aggregation.server-optimizer -> Flower's strategy that computes the step.
ADAPTIVE = {"adam": FedAdam, "yogi": FedYogi, "adagrad": FedAdagrad}


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

    def step(self, current: dict[str, np.ndarray], aggregate: dict[str, np.ndarray],
             server_round: int = 1) -> dict[str, np.ndarray]:
        """The next global adapter from the one sent (``current``) and the aggregator's result."""
        del server_round  # FedAvgM's step does not depend on the round
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

    def describe(self) -> str:
        """One line for the run's log."""
        return f"server momentum {self.momentum}, server learning rate {self.learning_rate}"


class ServerAdaptive:
    """FedAdam / FedYogi / FedAdagrad on the aggregate, computed by Flower's strategy of that name.

    Flower's adaptive strategies take the FedAvg of the round's replies as their
    pseudo-gradient's end point.  Here the aggregate comes from fedbank's own
    admission, robust aggregator and central-DP noise, so it is handed to the
    Flower strategy as a single reply of weight 1 (whose FedAvg is itself); the
    moments ``m_t``/``v_t`` live in that strategy and are checkpointed as
    ``m/<array>`` and ``v/<array>``.
    """

    active = True

    def __init__(self, kind: str, learning_rate: float, beta_1: float, beta_2: float, tau: float) -> None:
        self.kind = kind
        self.learning_rate = float(learning_rate)
        params = {"eta": self.learning_rate, "tau": float(tau)}
        if kind != "adagrad":  # FedAdagrad has no momentum and accumulates its second moment
            params.update(beta_1=float(beta_1), beta_2=float(beta_2))
        self.flower = ADAPTIVE[kind](**params)

    def step(self, current: dict[str, np.ndarray], aggregate: dict[str, np.ndarray],
             server_round: int = 1) -> dict[str, np.ndarray]:
        """The next global adapter: Flower's adaptive step from ``current`` towards ``aggregate``."""
        if set(current) != set(aggregate):
            raise ValueError(f"server {self.kind}: the aggregate's arrays do not match the global adapter's")
        self.flower.current_arrays = {k: np.asarray(v, dtype=np.float32) for k, v in current.items()}
        content = RecordDict({"arrays": arrays_to_record(aggregate), "metrics": MetricRecord({"num-examples": 1})})
        reply = Message(content=content, dst_node_id=0, message_type=MessageType.TRAIN)
        stepped, _ = self.flower.aggregate_train(server_round, [reply])
        return {k: np.asarray(v, dtype=np.float32) for k, v in record_to_arrays(stepped).items()}

    def state_arrays(self) -> dict[str, np.ndarray] | None:
        """The first and second moments to checkpoint (None before the first step)."""
        if not self.flower.m_t:
            return None
        state = {f"m/{k}": np.asarray(v, dtype=np.float32) for k, v in self.flower.m_t.items()}
        state.update({f"v/{k}": np.asarray(v, dtype=np.float32) for k, v in (self.flower.v_t or {}).items()})
        return state

    def load_state_arrays(self, state: dict[str, np.ndarray] | None) -> None:
        """Restore the moments of a checkpoint."""
        state = state or {}
        self.flower.m_t = {k[2:]: np.asarray(v) for k, v in state.items() if k.startswith("m/")} or None
        self.flower.v_t = {k[2:]: np.asarray(v) for k, v in state.items() if k.startswith("v/")} or None

    def describe(self) -> str:
        """One line for the run's log."""
        f = self.flower
        return f"server {self.kind} (Flower Fed{self.kind.capitalize()}): eta {f.eta}, beta_1 {f.beta_1}, beta_2 {f.beta_2}, tau {f.tau}"


def build_server_optimizer(cfg: RunConfig) -> ServerMomentum | ServerAdaptive:
    """The server optimizer ``aggregation.server-optimizer`` names, with its settings."""
    agg = cfg.aggregation
    if agg.server_optimizer == "sgd":
        return ServerMomentum(agg.server_learning_rate, agg.server_momentum)
    return ServerAdaptive(agg.server_optimizer, agg.server_learning_rate, agg.server_beta1, agg.server_beta2,
                          agg.server_tau)
