"""The content of the messages between server and branches.

One place defines the record names, the statuses a branch can answer with,
and the privacy claim a training reply carries, so the ClientApp that writes
them and the server that reads them cannot drift apart.

Server -> branch (train):

* ``config`` (ConfigRecord): ``server-round``, ``run-id`` (the fedbank run id,
  stable across a resumed run);
* ``arrays`` (ArrayRecord) -- the global adapter in plain form, or, when the
  envelope is on, ``envelope`` (ConfigRecord) with ``global``: the adapter
  signed by the server (:func:`common.wire.global_envelope.sign_global`).

Branch -> server (train reply):

* ``branch`` (ConfigRecord): ``claim`` -- the branch's privacy claim for this
  round as canonical JSON (:func:`privacy_claim`), ``signature`` -- the
  branch's Ed25519 signature over it when keys exist;
* ``metrics`` (MetricRecord): ``num-examples`` (FedAvg's weight),
  ``unit-weight`` (1, the weight of client-level DP's uniform average) and
  ``train-loss``;
* ``arrays`` (ArrayRecord) -- the adapter, or ``envelope`` (ConfigRecord) with
  ``update``: the adapter encrypted for the server and signed by the branch
  (:func:`common.wire.envelope.seal_update`).  Absent when the branch did not train.

The claim is what the server writes to the privacy ledger; the branch's
signature makes it the branch's word, not the server's.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord

from common.wire.canonical import canonical_json
from common.config.run import RunConfig
from common.errors import Rejection
from common.privacy.pii import PII_TYPES

# Config keys of the SecAgg+ messages (server/run/secagg_loop.py builds them, client/secagg.py reads them).
SECAGG_KEY_ROUND = "server-round"
SECAGG_KEY_RUN_ID = "run-id"
SECAGG_KEY_ARRAY_NAMES = "array-names"
SECAGG_KEY_GLOBAL = "global-envelope"

STATUS_TRAINED = "trained"
STATUS_EXHAUSTED = "budget-exhausted"
STATUSES = (STATUS_TRAINED, STATUS_EXHAUSTED)

RECORD_LEVEL = "record-level"
CLIENT_LEVEL = "client-level"
PROTECTS = {
    RECORD_LEVEL: "one customer record within a branch",
    CLIENT_LEVEL: "a whole branch's contribution",
}

#: Fields of a claim and their JSON types (None allowed where the value may be null).
CLAIM_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (int,), "round": (int,), "branch": (str,), "status": (str,), "kind": (str,),
    "protects": (str,), "accountant": (str,), "examples": (int,), "steps": (int,),
    "sample_rate": (int, float), "noise_multiplier": (int, float), "max_grad_norm": (int, float),
    "epsilon": (int, float, type(None)), "delta": (int, float, type(None)),
    "budget_epsilon": (int, float, type(None)), "pii_counts": (dict,),
}


def arrays_to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Adapter arrays to an ArrayRecord (numpy ``.npy`` bytes, never pickle)."""
    return ArrayRecord(array_dict={k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def record_to_arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    """An ArrayRecord back to named numpy arrays."""
    return {k: v.numpy() for k, v in record.items()}


def privacy_claim(cfg: RunConfig, *, run_id: int, server_round: int, branch_id: str, status: str,
                  budget_epsilon: float, examples: int, steps: int, sample_rate: float, noise: float,
                  epsilon: float | None, pii_counts: Mapping[str, int]) -> dict[str, Any]:
    """The branch's privacy claim for one round: exactly the ledger line it signs.

    ``epsilon`` is cumulative over the run at this branch; without DP the
    accountant is ``none`` and epsilon, delta and budget are null (no
    guarantee, which is not epsilon 0).
    """
    dp = cfg.dp.enabled
    return {
        "run_id": int(run_id),
        "round": int(server_round),
        "branch": branch_id,
        "status": status,
        "kind": RECORD_LEVEL,
        "protects": PROTECTS[RECORD_LEVEL],
        "accountant": cfg.dp.accountant if dp else "none",
        "examples": int(examples),
        "steps": int(steps),
        "sample_rate": float(sample_rate),
        "noise_multiplier": float(noise) if dp else 0.0,
        "max_grad_norm": float(cfg.dp.max_grad_norm) if dp else 0.0,
        "epsilon": float(epsilon) if dp and epsilon is not None else None,
        "delta": float(cfg.dp.delta) if dp else None,
        "budget_epsilon": float(budget_epsilon) if dp else None,
        "pii_counts": {t: int(pii_counts.get(t, 0)) for t in PII_TYPES},
    }


def claim_bytes(claim: Mapping[str, Any]) -> bytes:
    """The bytes a branch signs (canonical JSON; equals ``server.records.ledger.signed_bytes`` of its line)."""
    return canonical_json(dict(claim))


def branch_record(claim: Mapping[str, Any], signature: bytes | None) -> ConfigRecord:
    """The reply's ``branch`` record: the claim and, when keys exist, its signature."""
    record: dict[str, Any] = {"branch-id": claim["branch"], "status": claim["status"], "claim": claim_bytes(claim).decode("utf-8")}
    if signature is not None:
        record["signature"] = bytes(signature)
    return ConfigRecord(record)


def read_claim(record: ConfigRecord) -> tuple[dict[str, Any], bytes | None]:
    """Parse and type-check a reply's claim; raise ``Rejection('malformed')`` if it is not one."""
    try:
        raw = record["claim"]
        claim = json.loads(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejection("malformed", f"reply has no readable privacy claim ({exc})") from exc
    if not isinstance(claim, dict) or set(claim) != set(CLAIM_FIELDS):
        raise Rejection("malformed", "privacy claim does not have the expected fields")
    for key, types in CLAIM_FIELDS.items():
        value = claim[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise Rejection("malformed", f"privacy claim field '{key}' has type {type(value).__name__}")
    if claim["status"] not in STATUSES:
        raise Rejection("malformed", f"privacy claim status {claim['status']!r} is unknown")
    signature = record.get("signature") if "signature" in record else None
    if signature is not None and not isinstance(signature, bytes):
        raise Rejection("malformed", "claim signature is not bytes")
    return claim, signature


def reply_metrics(examples: int, loss: float) -> MetricRecord:
    """The reply's MetricRecord: FedAvg weights and the train loss."""
    return MetricRecord({
        "num-examples": int(examples),
        "unit-weight": 1,
        "train-loss": float(loss) if np.isfinite(loss) else 0.0,
    })
