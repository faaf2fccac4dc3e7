"""FedAvg that writes every branch's privacy spend to the ledger before aggregating.

``LedgeredFedAvg`` wraps Flower's message-based ``FedAvg``: for each training
reply it reads the branch's status and DP figures, appends one ledger line per
branch per round, and hands only the replies of branches that actually trained
to FedAvg, which averages the adapter arrays weighted by ``num-examples``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.common.logger import log
from flwr.serverapp.strategy import FedAvg

from common.protocol import STATUS_TRAINED, read_privacy
from server.ledger import PrivacyLedger
from server.recorder import RunRecorder

INFO = 20
WARNING = 30


class LedgeredFedAvg(FedAvg):
    """FedAvg over the branches that trained, with a privacy-ledger line per branch."""

    def __init__(self, *, ledger: PrivacyLedger, recorder: RunRecorder, run_id: str, **fedavg_kwargs) -> None:
        super().__init__(**fedavg_kwargs)
        self.ledger = ledger
        self.recorder = recorder
        self.run_id = run_id

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Ledger every reply, then average the adapters of the branches that trained."""
        trained: list[Message] = []
        for msg in replies:
            if msg.has_error():
                log(WARNING, "round %s: node %s failed: %s", server_round, msg.metadata.src_node_id, msg.error.reason)
                self.recorder.add_failure(server_round, msg.metadata.src_node_id, msg.error.reason)
                continue
            branch = msg.content["branch"]
            branch_id, status = str(branch["branch-id"]), str(branch["status"])
            privacy = read_privacy(msg.content["metrics"])
            if str(branch["accountant"]) == "none":  # no DP: no guarantee, not epsilon 0
                privacy.update(epsilon=None, delta=None, budget_epsilon=None)
            entry = {
                "run_id": self.run_id,
                "round": server_round,
                "branch": branch_id,
                "status": status,
                "accountant": str(branch["accountant"]),
                **privacy,
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            self.ledger.append(entry)
            self.recorder.add_branch(server_round, branch_id, status, privacy)
            if status == STATUS_TRAINED:
                trained.append(msg)
            else:
                log(INFO, "round %s: %s did not train (%s, epsilon %s)", server_round, branch_id, status, privacy["epsilon"])
        if not trained:
            log(WARNING, "round %s: no branch trained; the global adapter is unchanged", server_round)
            return None, None
        return super().aggregate_train(server_round, trained)
