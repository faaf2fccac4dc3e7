"""Secure aggregation (``security.secagg = true``): the server learns only the weighted sum.

Each round runs Flower's **SecAgg+** protocol: ``SecAggPlusWorkflow`` here, the
``secaggplus_mod`` at the branches (:mod:`client.secagg`).  Four stages of
messages -- setup (public keys), share keys (Shamir shares of each branch's
mask seeds, encrypted branch to branch through the server), collect masked
vectors (the branches train here: record-level DP-SGD exactly as in the normal
path, then quantize and mask their update), unmask (shares to remove the
masks) -- and the server ends up with ``sum(n_i * delta_i) / sum(n_i)``, the
FedAvg of the branch updates weighted by ``num-examples``, never with one
branch's update.

Flower 1.39 offers SecAgg+ only as a *legacy* workflow: it runs inside this
message-API ``@app.main`` with its ``Grid``, but it needs a ``LegacyContext``
with a legacy ``flwr.server.strategy.Strategy`` (``configure_fit`` /
``aggregate_fit`` on ``FitIns``/``FitRes``); none of the message-API
strategies (``flwr.serverapp.strategy``) can drive it.  This module supplies a
minimal legacy strategy and runs the workflow one round at a time
(:class:`SecAggRounds`), so the round loop (:func:`server.run.rounds.run_rounds`)
and the run's setup and finish (:class:`server.run.setup.ServerRun`: held-out
evaluation, ``metrics.json``, the final adapter) are the normal path's.

What the branches send is the **update delta** (trained adapter minus the
global), so the aggregate is added to the global here.  Per round:

* every reply's privacy claim travels in the clear beside the masked vector
  (``fitres.metrics``); claims go through the normal path's one admission
  path (:mod:`server.admission.claims`: schema, signature, run/round,
  duplicate, vocabularies, run config and epsilon), the weight beside the
  masked vector must be the claim's (``bad-weight``), and claims are ledgered
  as in the normal path (:mod:`server.admission.lines`), one line per branch,
  and a failure line per sampled branch that sent no masked update;
* the masked sum cannot be taken apart: when any reply is rejected, or fewer
  than ``min-train-branches`` branches trained, the round's aggregate is
  discarded and the global adapter stays unchanged (fail closed; the ledger
  says ``round-discarded`` or ``below-min-train-branches``);
* the one update check left is on the aggregate: its L2 norm must stay within
  ``aggregation.max-update-norm`` (masks that failed to cancel give noise far
  beyond it), else the round is discarded;
* a branch that drops out after the key exchange is masked out of the sum by
  the survivors' shares (up to the reconstruction threshold) and counted as a
  failure.

Not available with SecAgg (refused with a one-line error): robust aggregators
and server-side validation of individual updates (the server never sees one),
central DP (server-side clipping needs individual updates), and ``resume``.
"""

from __future__ import annotations

import json
import random
import time
import timeit
from datetime import datetime, timezone

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.common import FitIns, FitRes, Parameters, Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.logger import log
from flwr.compat.common import recorddict_compat as compat
from flwr.server import LegacyContext, ServerConfig
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.serverapp import Grid

from common.config.run import RunConfig
from common.errors import FedbankError, one_line
from common.wire.global_envelope import sign_global
from common.wire.protocol import SECAGG_KEY_ARRAY_NAMES as KEY_NAMES
from common.wire.protocol import SECAGG_KEY_GLOBAL as KEY_GLOBAL
from common.wire.protocol import SECAGG_KEY_ROUND as KEY_ROUND
from common.wire.protocol import SECAGG_KEY_RUN_ID as KEY_RUN_ID
from common.wire.protocol import STATUS_EXHAUSTED, STATUS_TRAINED, arrays_to_record, record_to_arrays
from server.admission.claims import ClaimChecks, Rejected, VerifiedClaim
from server.admission.intake import UNFORESEEN
from server.admission.lines import BELOW_MIN_TRAIN_BRANCHES, ROUND_DISCARDED, admitted_line, failure_line, rejected_line
from server.admission.reply_schema import secagg_metrics_problem
from server.admission.spend import SpendAudit
from server.flower_patches import ClaimKeepingSecAggPlusWorkflow
from server.run.setup import ServerRun

INFO = 20
WARNING = 30

#: SecAgg+ parameters.  Shares as a fraction of the sampled branches (1.0: every
#: branch shares its secrets with every other, i.e. SecAgg on a complete graph);
#: threshold as a fraction of the shares: any 2/3 of a branch's neighbours can
#: remove its masks, fewer cannot (dropout tolerance 1/3).
NUM_SHARES = 1.0
RECONSTRUCTION_THRESHOLD = 2 / 3
#: Quantization (Flower's defaults): each coordinate of ``weight * delta`` is
#: clipped to [-CLIPPING_RANGE, CLIPPING_RANGE] and mapped to an integer in
#: [0, QUANTIZATION_RANGE]; masks and sums live modulo MODULUS_RANGE.
CLIPPING_RANGE = 8.0
QUANTIZATION_RANGE = 2**22
MODULUS_RANGE = 2**32
#: The weight (num-examples) that maps to 1.0 in the first round; each later round
#: uses the largest num-examples of the round before (public: the claims carry it),
#: which keeps the quantization step of the average small.  A larger weight still
#: works: its coordinates are then clipped at CLIPPING_RANGE * max_weight / weight.
FIRST_MAX_WEIGHT = 1000.0


def check_supported(cfg: RunConfig) -> None:
    """Refuse, with one line each, the settings SecAgg+ cannot serve that :class:`RunConfig` itself allows.

    (``RunConfig`` already refuses, with security.secagg, a robust aggregator, server momentum, central DP and resume.)
    """
    if cfg.faults.server_crash_round:
        raise FedbankError("faults.server-crash-round tests resume, which security.secagg does not support")
    if max(int(cfg.federation.num_branches * cfg.federation.fraction_train), cfg.federation.min_train_branches) < 2:
        raise FedbankError("SecAgg+ needs at least 2 branches per round (3 or more for the sum to hide "
                           "one branch's update from the others): raise min-train-branches or fraction-train")


def run_info() -> dict:
    """What the head of a SecAgg+ run's ``metrics.json`` adds: the protocol and its parameters."""
    return {"secure_aggregation": {
        "protocol": "SecAgg+ (flwr.server.workflow.SecAggPlusWorkflow)", "weighting": "num-examples",
        "num_shares": NUM_SHARES, "reconstruction_threshold": RECONSTRUCTION_THRESHOLD,
        "clipping_range": CLIPPING_RANGE, "quantization_range": QUANTIZATION_RANGE, "modulus_range": MODULUS_RANGE,
    }}


class _Strategy(LegacyStrategy):
    """The legacy strategy SecAggPlusWorkflow drives: sampling in, the unmasked aggregate out."""

    def __init__(self, rounds: "SecAggRounds") -> None:
        self.rounds = rounds

    def __repr__(self) -> str:
        return "fedbank SecAgg+"

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return None

    def configure_fit(self, server_round: int, parameters: Parameters,
                      client_manager: ClientManager) -> list[tuple[ClientProxy, FitIns]]:
        return self.rounds.fit_instructions(server_round, parameters)

    def aggregate_fit(self, server_round: int, results: list[tuple[ClientProxy, FitRes]],
                      failures) -> tuple[Parameters | None, dict[str, Scalar]]:  # noqa: ANN001
        # SecAggPlusWorkflow puts the one unmasked aggregate into every result.
        self.rounds.aggregate = parameters_to_ndarrays(results[0][1].parameters) if results else None
        return None, {}  # the round loop applies the aggregate itself

    def configure_evaluate(self, server_round, parameters, client_manager):  # noqa: ANN001
        return []

    def aggregate_evaluate(self, server_round, results, failures):  # noqa: ANN001
        return None, {}

    def evaluate(self, server_round, parameters):  # noqa: ANN001
        return None


class SecAggRounds:
    """The :class:`server.run.rounds.RoundDriver` of SecAgg+: sample, run the protocol, admit and ledger the
    claims, apply the aggregate.  No checkpoint: a SecAgg+ run cannot resume."""

    def __init__(self, run: ServerRun, grid: Grid, context: Context) -> None:
        cfg = run.cfg
        self.cfg, self.grid, self.keys = cfg, grid, run.keys
        self.ledger, self.recorder, self.run_id = run.ledger, run.recorder, run.run_id
        self.claims = ClaimChecks(run_id=run.run_id, keys=run.keys, spend=SpendAudit(cfg))
        self.node_branch: dict[int, str] = {}  # learned from verified claims: names a node that fails later
        self.flower_run_id = int(context.run_id)
        self.workflow = ClaimKeepingSecAggPlusWorkflow(
            num_shares=NUM_SHARES, reconstruction_threshold=RECONSTRUCTION_THRESHOLD, max_weight=FIRST_MAX_WEIGHT,
            clipping_range=CLIPPING_RANGE, quantization_range=QUANTIZATION_RANGE, modulus_range=MODULUS_RANGE,
            timeout=cfg.federation.round_timeout,
        )
        self.legacy = LegacyContext(context, config=ServerConfig(num_rounds=cfg.federation.num_rounds),
                                    strategy=_Strategy(self))
        self.aggregate: list[np.ndarray] | None = None
        self.sampled: list[int] = []
        self.last_statuses: list[str] = []
        self._global: dict[str, np.ndarray] = {}
        self._names: list[str] = []

    def summary(self) -> None:
        """Log SecAgg+'s parameters and what the envelope still does."""
        log(INFO, "fedbank: SecAgg+ on (shares %s, threshold %.2f, clipping range %s, quantization 2^%d, modulus 2^%d); "
            "envelope %s", NUM_SHARES, RECONSTRUCTION_THRESHOLD, CLIPPING_RANGE, QUANTIZATION_RANGE.bit_length() - 1,
            MODULUS_RANGE.bit_length() - 1, "signs the global and the claims (masking replaces its encryption)"
            if self.keys else "off")

    def checkpoint(self, server_round: int, arrays: ArrayRecord) -> None:
        """No checkpoint (re-running a round would reveal a second sum of the same updates); the round's ledger head is signed."""
        self.ledger.seal_round(server_round)

    # -- called by the workflow -------------------------------------------------------------

    def fit_instructions(self, server_round: int, parameters: Parameters) -> list[tuple[ClientProxy, FitIns]]:
        """Sample branches and build each one's FitIns: the global (signed when the envelope is on) and the round."""
        fed = self.cfg.federation
        nodes = self._wait_for_nodes(fed.min_train_branches)
        size = min(len(nodes), max(int(len(nodes) * fed.fraction_train), fed.min_train_branches))
        self.sampled = sorted(random.sample(nodes, size))
        if size == 2:
            log(WARNING, "round %s: SecAgg+ with 2 branches hides nothing between them (each can subtract its own "
                "update from the aggregate)", server_round)
        config: dict[str, Scalar] = {KEY_ROUND: server_round, KEY_RUN_ID: self.run_id, KEY_NAMES: json.dumps(self._names)}
        if self.keys is not None:
            config[KEY_GLOBAL] = sign_global(self._global, run_id=self.run_id, server_round=server_round,
                                             server_signing_key=self.keys.signing_key)
            parameters = Parameters(tensors=[], tensor_type="numpy.ndarray")  # the signed blob carries the global
        ins = FitIns(parameters=parameters, config=config)
        proxies = {nid: GridClientProxy(node_id=nid, grid=self.grid, run_id=self.flower_run_id) for nid in nodes}
        manager = self.legacy.client_manager  # only for Flower's "sampled N clients (out of M)" log line
        for proxy in list(manager.all().values()):
            manager.unregister(proxy)
        for proxy in proxies.values():
            manager.register(proxy)
        return [(proxies[nid], ins) for nid in self.sampled]

    def _wait_for_nodes(self, minimum: int) -> list[int]:
        deadline = time.monotonic() + self.cfg.federation.round_timeout
        while True:
            nodes = sorted(int(n) for n in self.grid.get_node_ids())
            if len(nodes) >= minimum:
                return nodes
            if time.monotonic() > deadline:
                raise FedbankError(f"only {len(nodes)} branch(es) connected, fewer than min-train-branches={minimum}")
            time.sleep(1.0)

    # -- one round ------------------------------------------------------------------------------

    def train_round(self, server_round: int, arrays: ArrayRecord) -> ArrayRecord:
        """Run SecAgg+ for ``server_round``; return the new global adapter (``arrays`` when not aggregated)."""
        updated = self._run_round(server_round, record_to_arrays(arrays))
        return arrays_to_record(updated) if updated is not None else arrays

    def _run_round(self, server_round: int, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """The protocol, the claims, the aggregate: the new global adapter, or None when not aggregated."""
        self._global, self._names = arrays, list(arrays)
        self.aggregate, self.sampled, self.workflow.replies = None, [], []
        state = self.legacy.state
        state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({
            WorkflowKey.CURRENT_ROUND: server_round, WorkflowKey.START_TIME: timeit.default_timer()})
        state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
            ndarrays_to_parameters([arrays[k] for k in self._names]), keep_input=True)
        self.workflow(self.grid, self.legacy)
        state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord()  # the global lives here, not in the context

        admitted, rejected = self._admit_round(server_round)
        trained = sum(1 for claim, _ in admitted if claim["status"] == STATUS_TRAINED)
        weights = [claim["examples"] for claim, _ in admitted]
        if weights and max(weights) > 0:  # public (the claims carry them): sharpen the next round's quantization
            self.workflow.max_weight = float(max(weights))
        updated, not_aggregated = self._apply(server_round, arrays, trained, rejected)
        self._ledger_admitted(server_round, admitted, not_aggregated=not_aggregated)
        return updated

    def _apply(self, server_round: int, arrays: dict[str, np.ndarray], trained: int,
               rejected: int) -> tuple[dict[str, np.ndarray] | None, str | None]:
        """The new global adapter, or None and why (logged; the ledger's reason) when this round's aggregate may not be used."""
        why = None
        reason = ROUND_DISCARDED
        if self.aggregate is None:
            why = "SecAgg+ did not complete (see the log above)"
        elif rejected:
            why = (f"{rejected} reply(ies) rejected, but their masked updates are inside the sum and SecAgg+ "
                   "cannot take them out")
        elif trained < self.cfg.federation.min_train_branches:
            why = f"{trained} branch(es) trained, fewer than min-train-branches={self.cfg.federation.min_train_branches}"
            reason = BELOW_MIN_TRAIN_BRANCHES
        elif len(self.aggregate) != len(self._names) or not all(np.all(np.isfinite(a)) for a in self.aggregate):
            why = "the unmasked aggregate is malformed or not finite"
        else:
            norm = float(np.sqrt(sum(float(np.sum(np.square(d, dtype=np.float64))) for d in self.aggregate)))
            bound = self.cfg.aggregation.max_update_norm
            if bound > 0 and norm > bound:  # the one update check left: on the sum, not on a branch
                why = (f"the aggregate update has L2 norm {norm:.3g} > aggregation.max-update-norm={bound:.3g} "
                       "(masks that did not cancel, or an outsized update inside the sum)")
        if why is not None:
            log(WARNING, "round %s: %s; the global adapter is unchanged", server_round, why)
            return None, reason
        return {k: (arrays[k] + d.reshape(arrays[k].shape)).astype(arrays[k].dtype)
                for k, d in zip(self._names, self.aggregate, strict=True)}, None

    def _admit_round(self, server_round: int) -> tuple[list[tuple[dict, bytes | None]], int]:
        """Verify every claim of the round; record failures and rejections.  Returns (admitted, rejected count)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        replies = self.workflow.replies
        replied = {nid for nid, _ in replies}
        for nid in self.sampled:
            if nid not in replied:
                self._ledger_failure(server_round, nid, "no masked update (dropped out of SecAgg+ or failed)", now)
        admitted: list[tuple[dict, bytes | None]] = []
        rejected = 0
        seen: set[str] = set()
        for nid, fitres in replies:
            result = self._admit(fitres, server_round, seen)
            if isinstance(result, VerifiedClaim):
                self.node_branch[int(nid)] = result.branch_id
                admitted.append((result.claim, result.signature))
                continue
            rejected += 1
            log(WARNING, "round %s: rejected reply from %s: %s (%s)", server_round, result.branch_id, result.reason,
                result.detail)
            self.recorder.add_rejection(server_round, result.branch_id, result.reason, result.detail)
            if result.claim is not None:  # verified claim, rejected reply: the spend is real
                self.node_branch[int(nid)] = result.branch_id
                self.ledger.append(rejected_line(result.claim, time=now, reason=result.reason), signature=result.signature)
        return admitted, rejected

    def _ledger_failure(self, server_round: int, nid: int, reason: str, now: str) -> None:
        """A server line for a sampled branch that sent no masked update (named when an earlier claim named it)."""
        branch = self.node_branch.get(int(nid), f"node-{nid}")
        log(WARNING, "round %s: %s sent no masked update (dropped out or failed)", server_round, branch)
        self.recorder.add_failure(server_round, nid, reason, branch)
        entry = failure_line(run_id=self.run_id, server_round=server_round, branch=branch, reason=reason, time=now,
                             possible_epsilon=self.claims.spend.possible_epsilon(branch))
        self.ledger.append(entry, signer=self.keys.signing_key.sign if self.keys is not None else None)

    def _ledger_admitted(self, server_round: int, admitted: list[tuple[dict, bytes | None]], *,
                         not_aggregated: str | None) -> None:
        """One ledger line per admitted branch (its signed claim), and its figures in metrics.json."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.last_statuses = [claim["status"] for claim, _ in admitted]
        for claim, signature in admitted:
            self.ledger.append(admitted_line(claim, time=now, not_aggregated=not_aggregated), signature=signature)
            self.recorder.add_branch(server_round, claim["branch"], claim)
            if claim["status"] != STATUS_TRAINED:
                log(INFO, "round %s: %s did not train (%s, epsilon %.3f of %.3f)", server_round, claim["branch"],
                    claim["status"], claim["epsilon"] or 0.0, claim["budget_epsilon"] or 0.0)

    def _admit(self, fitres: FitRes, server_round: int, seen: set[str]) -> VerifiedClaim | Rejected:
        """The one admission path (:mod:`server.admission.claims`); the weight beside the masked vector is checked there."""
        try:
            return self.claims.check(fitres.metrics, server_round, seen, weights={"SecAgg+ weight": fitres.num_examples},
                                     problem=secagg_metrics_problem(fitres.metrics))
        except Exception as exc:  # a reply no check foresaw must not end the round: reject it, and say so
            return Rejected("?", "malformed", f"{UNFORESEEN}{type(exc).__name__}: {one_line(str(exc))[:200]}")

    def all_exhausted(self) -> bool:
        """True when the last round's every admitted reply was a budget refusal."""
        return bool(self.last_statuses) and all(s == STATUS_EXHAUSTED for s in self.last_statuses)
