"""The normal aggregation path: each branch's update admitted on its own, then Flower's aggregator.

Each round :class:`server.aggregation.strategy.BranchStrategy` -- around the
configured Flower aggregator (:func:`server.aggregation.aggregators.build_aggregator`),
the client-level accountant of central DP and the server's momentum --
samples the branches and signs the global adapter, Flower's grid does the
messaging, and the strategy admits, ledgers and aggregates the replies.  After
each round the aggregation state is checkpointed with the adapter; a resumed
run restores it (and ledgers the claims set aside from the interrupted round), and
rebuilds each branch's spend from the ledger for the epsilon checks.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp import Grid

from server.admission.intake import Intake
from server.admission.spend import SpendAudit
from server.aggregation.aggregators import ClientLevelAccountant, build_aggregator
from server.aggregation.server_optimizer import build_server_optimizer
from server.aggregation.strategy import BranchStrategy
from server.records.checkpoint import load_velocity, unfinished_claims
from server.run.setup import ServerRun


class StandardRounds:
    """The :class:`server.run.rounds.RoundDriver` of the normal path."""

    def __init__(self, run: ServerRun, grid: Grid) -> None:
        cfg, ckpt = run.cfg, run.resumed
        self.run, self.grid = run, grid
        self.client_level = ClientLevelAccountant(cfg) if cfg.central_dp.mode != "off" else None
        self.inner = build_aggregator(cfg)
        self.momentum = build_server_optimizer(cfg)
        if ckpt is not None:
            self.momentum.load_state_arrays(load_velocity(run.out, ckpt))
            if self.client_level is not None and ckpt.client_level:
                self.client_level.load_state_dict(ckpt.client_level)
            if "clipping_norm" in ckpt.strategy:
                self.inner.clipping_norm = ckpt.strategy["clipping_norm"]
        spend = SpendAudit(cfg)
        if ckpt is not None:
            spend.rebuild(run.ledger.entries(), run.run_id)
        self.strategy = BranchStrategy(
            self.inner,
            intake=Intake(run_id=run.run_id, keys=run.keys, max_update_norm=cfg.aggregation.max_update_norm,
                          max_bytes=int(cfg.security.max_update_mb * 1024 * 1024), spend=spend),
            ledger=run.ledger, recorder=run.recorder, keys=run.keys,
            min_train_branches=cfg.federation.min_train_branches, client_level=self.client_level,
            server_optimizer=self.momentum, round_timeout=cfg.federation.round_timeout,
            interrupted={run.first_round: unfinished_claims(run.out, run.first_round)} if ckpt is not None else None,
        )

    def summary(self) -> None:
        """The strategy's summary."""
        self.strategy.summary()

    def train_round(self, server_round: int, arrays: ArrayRecord) -> ArrayRecord:
        """Sample and send (strategy), collect the replies (grid), admit, ledger and aggregate them (strategy)."""
        config = ConfigRecord({"run-id": self.run.run_id})
        messages = self.strategy.configure_train(server_round, arrays, config, self.grid)
        replies = self.grid.send_and_receive(messages=messages, timeout=self.run.cfg.federation.round_timeout)
        aggregated, _ = self.strategy.aggregate_train(server_round, replies)
        return aggregated if aggregated is not None else arrays

    def checkpoint(self, server_round: int, arrays: ArrayRecord) -> None:
        """The adapter with the aggregation state: client-level accountant, adaptive clipping norm, momentum."""
        state = {"clipping_norm": float(self.inner.clipping_norm)} if hasattr(self.inner, "clipping_norm") else {}
        self.run.save_checkpoint(server_round, arrays, strategy=state, velocity=self.momentum.state_arrays(),
                                 client_level=self.client_level.state_dict() if self.client_level else None)

    def all_exhausted(self) -> bool:
        """True when the last round's every admitted reply was a budget refusal."""
        return self.strategy.all_exhausted()
