"""The schema of a branch's training reply, checked before anything reads the reply.

A reply (:mod:`common.wire.protocol`) holds exactly these records:

* ``branch`` (ConfigRecord): ``branch-id``, ``status``, ``claim`` and, when keys
  exist, ``signature`` -- nothing else (the claim's own schema is
  :func:`common.wire.protocol.read_claim`'s);
* ``metrics`` (MetricRecord): exactly ``num-examples`` and ``unit-weight``
  (integers; they must agree with the claim: ``bad-weight``) and ``train-loss``
  (a finite number);
* when it trained: ``envelope`` (ConfigRecord, envelope on) with only
  ``update``, bytes (their size is the envelope's to check), or ``arrays`` (ArrayRecord,
  envelope off) with at most as many tensors as the global adapter; when it did
  not train, neither.

:func:`parse_reply` never raises: it returns the parts it could read and the
first problem it found, which :class:`server.admission.claims.ClaimChecks`
reports once the claim verified (so the spend is ledgered) or, without a
readable ``branch`` record, at once.  Under SecAgg+ a reply is a ``FitRes``:
:func:`secagg_metrics_problem` checks its ``metrics`` (the branch record plus
``train-loss``); its weight beside the masked vector goes to the claim checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from common.errors import Rejection
from common.wire.protocol import STATUS_TRAINED

BRANCH_KEYS = frozenset({"branch-id", "status", "claim", "signature"})
METRIC_KEYS = frozenset({"num-examples", "unit-weight", "train-loss"})
#: SecAgg+: ``fitres.metrics`` is the branch record plus the train loss (the weight is ``fitres.num_examples``).
SECAGG_METRIC_KEYS = BRANCH_KEYS | {"train-loss"}


@dataclass
class ReplyParts:
    """What :func:`parse_reply` read of a reply."""

    branch: ConfigRecord | None = None
    weights: dict[str, Any] = field(default_factory=dict)
    loss: float = 0.0
    sealed_update: bytes | None = None
    arrays: ArrayRecord | None = None
    problem: Rejection | None = None


def parse_reply(content: Any, *, sealed: bool, max_tensors: int) -> ReplyParts:
    """Check a reply's records against the schema; never raises."""
    parts = ReplyParts()
    if not isinstance(content, RecordDict):
        parts.problem = Rejection("malformed", "reply has no content")
        return parts
    branch = content.get("branch") if "branch" in content else None
    if not isinstance(branch, ConfigRecord):
        parts.problem = Rejection("malformed", "reply has no branch record")
        return parts
    parts.branch = branch
    try:
        _check_records(content, branch, sealed)
        _read_metrics(content["metrics"], parts)
        if branch.get("status") == STATUS_TRAINED:
            _read_update(content, parts, sealed, max_tensors)
    except Rejection as exc:
        parts.problem = exc
    return parts


def secagg_metrics_problem(metrics: Any) -> Rejection | None:
    """What is wrong with a SecAgg+ reply's ``fitres.metrics`` outside its claim, or None."""
    if not isinstance(metrics, Mapping):
        return Rejection("malformed", "SecAgg+ reply has no metrics")
    extra = sorted(str(k)[:40] for k in set(metrics) - SECAGG_METRIC_KEYS)
    if extra:
        return Rejection("malformed", f"SecAgg+ metrics have unexpected key(s) {', '.join(extra[:3])}")
    loss = metrics.get("train-loss")
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
        return Rejection("malformed", f"SecAgg+ train-loss is {loss!r}, not a finite number")
    return None


def _check_records(content: RecordDict, branch: ConfigRecord, sealed: bool) -> None:
    extra = sorted(set(branch) - BRANCH_KEYS)
    if extra:
        raise Rejection("malformed", f"branch record has unexpected key(s) {', '.join(k[:40] for k in extra[:3])}")
    update = "envelope" if sealed else "arrays"
    allowed = {"branch", "metrics"} | ({update} if branch.get("status") == STATUS_TRAINED else set())
    names = set(content)
    if names - allowed:
        raise Rejection("malformed", f"reply has unexpected record(s) {', '.join(sorted(n[:40] for n in names - allowed)[:3])}")
    if "metrics" not in names or not isinstance(content["metrics"], MetricRecord):
        raise Rejection("malformed", "reply has no metrics record")


def _read_metrics(metrics: MetricRecord, parts: ReplyParts) -> None:
    if set(metrics) != METRIC_KEYS:
        raise Rejection("malformed", f"metrics record has keys {sorted(k[:40] for k in metrics)[:5]}, "
                        f"expected {sorted(METRIC_KEYS)}")
    parts.weights["metrics num-examples"] = metrics["num-examples"]
    unit = metrics["unit-weight"]
    if isinstance(unit, bool) or not isinstance(unit, int) or unit != 1:
        raise Rejection("bad-weight", f"metrics unit-weight is {unit!r}, not 1")
    loss = metrics["train-loss"]
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
        raise Rejection("malformed", f"metrics train-loss is {loss!r}, not a finite number")
    parts.loss = float(loss)


def _read_update(content: RecordDict, parts: ReplyParts, sealed: bool, max_tensors: int) -> None:
    if sealed:
        envelope = content.get("envelope") if "envelope" in content else None
        if not isinstance(envelope, ConfigRecord) or set(envelope) != {"update"}:
            raise Rejection("malformed", "trained reply without a sealed update")
        blob = envelope["update"]
        if not isinstance(blob, bytes):
            raise Rejection("malformed", "sealed update is not bytes")
        parts.sealed_update = blob
        return
    arrays = content.get("arrays") if "arrays" in content else None
    if not isinstance(arrays, ArrayRecord):
        raise Rejection("malformed", "trained reply without arrays")
    if len(arrays) > max_tensors:
        raise Rejection("keys", f"update has {len(arrays)} tensors, the adapter {max_tensors}")
    parts.arrays = arrays
