"""The server's strategy: admission, the privacy ledger, then Flower's aggregation.

``BranchStrategy`` wraps the Flower strategy built by
:func:`server.aggregation.aggregators.build_aggregator` (FedAvg, a robust aggregator, and
optionally a central-DP wrapper).  Each round it

* signs the global adapter it sends when the envelope is on;
* admits the replies (:class:`server.admission.intake.Intake`): failures counted,
  forged/tampered/replayed/duplicate/invalid updates excluded and logged with
  their reason;
* writes one ledger line per branch whose claim verified -- the branch's
  signed privacy claim, marked ``aggregated`` or with its ``reject_reason`` --
  a server line (``kind: failure``) per branch that failed the round or did not
  answer before ``round-timeout``, naming the branch and the epsilon it may
  have reached (:mod:`server.admission.lines`), and,
  with central DP, one client-level line for the release;
* on the round a resumed run starts with, ledgers the claims of branches that
  spent in the interrupted attempt of that round but were not sampled again
  (``reject_reason: interrupted``), so no spend goes missing from the ledger;
* aggregates only when at least ``min-train-branches`` updates were admitted,
  then takes the server's momentum step on the result when one is configured
  (:mod:`server.aggregation.server_optimizer`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from common.wire.global_envelope import sign_global
from common.wire.protocol import CLIENT_LEVEL, PROTECTS, STATUS_EXHAUSTED, STATUS_TRAINED, arrays_to_record, record_to_arrays
from server.aggregation.aggregators import ClientLevelAccountant
from server.admission.intake import Intake, RoundIntake
from server.admission.lines import BELOW_MIN_TRAIN_BRANCHES, admitted_line, failure_line, rejected_line
from server.records.keyring import ServerKeys
from server.records.ledger import INTERRUPTED, SERVER_FIELDS, SERVER_BRANCH, PrivacyLedger
from server.records.metrics import RunRecorder
from server.aggregation.server_optimizer import ServerAdaptive, ServerMomentum

INFO = 20
WARNING = 30


class BranchStrategy(Strategy):
    """Admission + ledger around a Flower strategy."""

    def __init__(self, inner: Strategy, *, intake: Intake, ledger: PrivacyLedger, recorder: RunRecorder,
                 keys: ServerKeys | None, min_train_branches: int, client_level: ClientLevelAccountant | None = None,
                 server_optimizer: ServerMomentum | ServerAdaptive | None = None, round_timeout: float | None = None,
                 interrupted: dict[int, list[dict]] | None = None) -> None:
        """``interrupted``: per round, claims set aside from an unfinished attempt of it (resume only)."""
        super().__init__()
        self.inner = inner
        self.intake = intake
        self.ledger = ledger
        self.recorder = recorder
        self.keys = keys
        self.min_train_branches = min_train_branches
        self.client_level = client_level
        self.server_optimizer = server_optimizer or ServerMomentum()
        self.round_timeout = round_timeout
        self.interrupted = dict(interrupted or {})
        self.last_intake: RoundIntake | None = None
        self._global: dict = {}
        self._sent: list[Message] = []

    @property
    def run_id(self) -> int:
        """The fedbank run id (stable across a resumed run)."""
        return self.intake.run_id

    def summary(self) -> None:
        """Log the wrapped strategy's summary."""
        log(INFO, "\t├──> fedbank: envelope %s, ledger %s", "on" if self.keys else "off", self.ledger.path)
        if self.server_optimizer.active:
            log(INFO, "\t├──> %s", self.server_optimizer.describe())
        self.inner.summary()

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """Sample branches (inner strategy); sign the global adapter when the envelope is on."""
        self._global = record_to_arrays(arrays)
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        if self.keys is not None and messages:
            blob = sign_global(self._global, run_id=self.run_id, server_round=server_round, server_signing_key=self.keys.signing_key)
            content = RecordDict({"config": messages[0].content["config"], "envelope": ConfigRecord({"global": blob})})
            for msg in messages:
                msg.content = content
        self._sent = messages
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Admit, ledger, then aggregate the admitted updates."""
        # An error reply may come from the SuperLink (node unavailable): name the node it was sent to.
        sent_to = {m.metadata.message_id: int(m.metadata.dst_node_id) for m in self._sent if m.metadata.message_id}
        intake = self.intake.admit_round(server_round, list(replies), self._global, sent_to=sent_to,
                                         round_timeout=self.round_timeout)
        self.last_intake = intake
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for node, reason in intake.failures:
            self._ledger_failure(server_round, node, reason, now)
        for rej in intake.rejected:
            log(WARNING, "round %s: rejected update from %s: %s (%s)", server_round, rej.branch_id, rej.reason, rej.detail)
            self.recorder.add_rejection(server_round, rej.branch_id, rej.reason, rej.detail)
            if rej.claim is not None:
                self.ledger.append(rejected_line(rej.claim, time=now, reason=rej.reason), signature=rej.signature)
        enough = len(intake.trained) >= self.min_train_branches
        for adm in intake.admitted:
            line = admitted_line(adm.claim, time=now, not_aggregated=None if enough else BELOW_MIN_TRAIN_BRANCHES)
            self.ledger.append(line, signature=adm.signature)
            self.recorder.add_branch(server_round, adm.branch_id, adm.claim, adm.wire_bytes, adm.norm)
            if adm.claim["status"] != STATUS_TRAINED:
                log(INFO, "round %s: %s did not train (%s%s, epsilon %.3f of %.3f)", server_round, adm.branch_id,
                    adm.claim["status"], f": {adm.claim['reason']}" if adm.claim.get("reason") else "",
                    adm.claim["epsilon"] or 0.0, adm.claim["budget_epsilon"] or 0.0)
        self._ledger_interrupted(server_round, now)
        trained = intake.trained
        if not enough:
            log(WARNING, "round %s: %d update(s) admitted, fewer than min-train-branches=%d; the global adapter is unchanged",
                server_round, len(trained), self.min_train_branches)
            return None, None
        arrays, metrics = self.inner.aggregate_train(server_round, [a.message for a in trained])
        if arrays is not None and self.client_level is not None:
            self._ledger_release(server_round, len(trained), now)
        if arrays is not None and self.server_optimizer.active:
            arrays = arrays_to_record(self.server_optimizer.step(self._global, record_to_arrays(arrays), server_round))
        return arrays, metrics

    def _ledger_interrupted(self, server_round: int, now: str) -> None:
        """Ledger the set-aside claims of this round whose branch has no line in it now (not sampled again)."""
        claims = self.interrupted.pop(server_round, [])
        if not claims:
            return
        ledgered = {e.get("branch") for e in self.ledger.entries() if e.get("round") == server_round}
        for line in claims:
            if line.get("branch") in ledgered:
                continue  # sampled again: it resent its cached reply, ledgered above
            claim = {k: v for k, v in line.items() if k not in SERVER_FIELDS}
            signature = bytes.fromhex(line["signature"]) if line.get("signature") else None
            self.intake.claims.spend.replay(claim)  # spent in the interrupted attempt: part of its history
            self.ledger.append(rejected_line(claim, time=line.get("time") or now, reason=INTERRUPTED), signature=signature)
            detail = "answered an attempt of this round that did not finish; no claim from it when the round ran again"
            self.recorder.add_rejection(server_round, str(line.get("branch")), INTERRUPTED, detail)
            log(INFO, "round %s: %s answered the interrupted attempt of this round; its claim is ledgered (not aggregated)",
                server_round, line.get("branch"))

    def _ledger_failure(self, server_round: int, node: int, reason: str, now: str) -> None:
        """One server line for a branch that failed the round: no claim arrived, so the server says what it knows."""
        branch = self.intake.node_branch.get(node, f"node-{node}")
        log(WARNING, "round %s: %s failed: %s", server_round, branch, reason)
        self.recorder.add_failure(server_round, node, reason, branch)
        entry = failure_line(run_id=self.run_id, server_round=server_round, branch=branch, reason=reason, time=now,
                             possible_epsilon=self.intake.claims.spend.possible_epsilon(branch))
        self.ledger.append(entry, signer=self.keys.signing_key.sign if self.keys is not None else None)

    def _ledger_release(self, server_round: int, sample_size: int, now: str) -> None:
        """One client-level ledger line for a central-DP release."""
        cl = self.client_level
        epsilon = cl.release(sample_size)
        entry = {
            "run_id": self.run_id, "round": server_round, "branch": SERVER_BRANCH, "status": "released",
            "kind": CLIENT_LEVEL, "protects": PROTECTS[CLIENT_LEVEL], "accountant": "rdp (flwr)",
            "examples": sample_size, "steps": 1, "sample_rate": 1.0, "noise_multiplier": cl.noise_multiplier,
            "max_grad_norm": cl.clipping_norm, "epsilon": epsilon, "delta": cl.delta, "budget_epsilon": None,
            "pii_counts": {}, "time": now, "aggregated": True,
        }
        signer = self.keys.signing_key.sign if self.keys is not None else None
        self.ledger.append(entry, signer=signer)
        self.recorder.add_client_level(server_round, epsilon, cl.delta)

    def all_exhausted(self) -> bool:
        """True when the last round's every admitted reply was a budget refusal."""
        it = self.last_intake
        return bool(it and it.admitted and all(a.claim["status"] == STATUS_EXHAUSTED for a in it.admitted))

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """No federated evaluation: the server evaluates on its held-out set."""
        return []

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """Nothing to aggregate (see :meth:`configure_evaluate`)."""
        return None
