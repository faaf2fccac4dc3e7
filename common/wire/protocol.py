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
* ``metrics`` (MetricRecord): exactly ``num-examples`` (the claim's
  ``examples``, 0 when it did not train), ``unit-weight`` (1) and ``train-loss``.
  The server weighs an update by its *signed claim*'s ``examples`` (1 each under
  client-level DP), never by these: they must only agree with the claim;
* ``arrays`` (ArrayRecord) -- the adapter, or ``envelope`` (ConfigRecord) with
  ``update``: the adapter encrypted for the server and signed by the branch
  (:func:`common.wire.envelope.seal_update`).  Absent when the branch did not train.

The claim is what the server writes to the privacy ledger; the branch's
signature makes it the branch's word, not the server's.  Its schema
(:func:`read_claim`: fields, types, sizes, nesting) and its vocabularies
(:func:`check_vocabulary`: status, kind, protects, accountant, PII types, a
refusal's ``reason``) are checked here, for both sides.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord

from common.wire.canonical import canonical_json
from common.config.run import RunConfig
from common.config.sections import ACCOUNTANTS
from common.errors import Rejection, one_line
from common.privacy.pii import PII_TYPES

# Config keys of the SecAgg+ messages (server/run/secagg_loop.py builds them, client/secagg.py reads them).
SECAGG_KEY_ROUND = "server-round"
SECAGG_KEY_RUN_ID = "run-id"
SECAGG_KEY_ARRAY_NAMES = "array-names"
SECAGG_KEY_GLOBAL = "global-envelope"

STATUS_TRAINED = "trained"
STATUS_EXHAUSTED = "budget-exhausted"
#: The branch refused the round on its own authority (its policy, or a replayed request); ``reason`` says why.
STATUS_REFUSED = "refused"
STATUSES = (STATUS_TRAINED, STATUS_EXHAUSTED, STATUS_REFUSED)
#: A refusal's ``reason`` starts with one of these and is at most MAX_REASON_CHARS long.
REFUSAL_PREFIXES = ("policy: ", "replay: ")
MAX_REASON_CHARS = 300

RECORD_LEVEL = "record-level"
CLIENT_LEVEL = "client-level"
PROTECTS = {
    RECORD_LEVEL: "one customer record within a branch",
    CLIENT_LEVEL: "a whole branch's contribution",
}
#: The accountant of a claim: one of the run's accountants, or ``none`` without DP.
ACCOUNTANT_NONE = "none"
CLAIM_ACCOUNTANTS = ACCOUNTANTS + (ACCOUNTANT_NONE,)

#: Fields of a claim and their JSON types (None allowed where the value may be null).
CLAIM_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (int,), "round": (int,), "branch": (str,), "status": (str,), "kind": (str,),
    "protects": (str,), "accountant": (str,), "examples": (int,), "steps": (int,),
    "sample_rate": (int, float), "noise_multiplier": (int, float), "max_grad_norm": (int, float),
    "epsilon": (int, float, type(None)), "delta": (int, float, type(None)),
    "budget_epsilon": (int, float, type(None)), "pii_counts": (dict,),
}
#: Fields a claim may carry besides CLAIM_FIELDS.
OPTIONAL_CLAIM_FIELDS: dict[str, tuple[type, ...]] = {"reason": (str,)}

#: Limits of the claim schema: its JSON text, its nesting (the claim, then ``pii_counts``), its
#: strings, its counts (the run id: Flower's, 64-bit), the size of ``pii_counts``, and the signature (Ed25519: 64 bytes).
MAX_CLAIM_CHARS = 16_384
MAX_CLAIM_DEPTH = 2
MAX_TEXT_CHARS = 300
MAX_COUNT = 2**31 - 1
MAX_RUN_ID = 2**64 - 1  # Flower's run ids are unsigned 64-bit
MAX_PII_KEYS = 256
SIGNATURE_BYTES = 64


def arrays_to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Adapter arrays to an ArrayRecord (numpy ``.npy`` bytes, never pickle)."""
    return ArrayRecord(array_dict={k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def record_to_arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    """An ArrayRecord back to named numpy arrays."""
    return {k: v.numpy() for k, v in record.items()}


def privacy_claim(cfg: RunConfig, *, run_id: int, server_round: int, branch_id: str, status: str,
                  budget_epsilon: float, examples: int, steps: int, sample_rate: float, noise: float,
                  epsilon: float | None, pii_counts: Mapping[str, int], reason: str | None = None) -> dict[str, Any]:
    """The branch's privacy claim for one round: exactly the ledger line it signs.

    ``epsilon`` is cumulative at this branch (every round it ever trained); without DP the
    accountant is ``none`` and epsilon, delta and budget are null (no
    guarantee, which is not epsilon 0).  ``reason``: why a ``refused`` claim refused
    (``policy: ...`` or ``replay: ...``); absent from every other claim.
    """
    dp = cfg.dp.enabled
    claim = {
        "run_id": int(run_id),
        "round": int(server_round),
        "branch": branch_id,
        "status": status,
        "kind": RECORD_LEVEL,
        "protects": PROTECTS[RECORD_LEVEL],
        "accountant": cfg.dp.accountant if dp else ACCOUNTANT_NONE,
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
    if reason is not None:
        claim["reason"] = str(reason)
    return claim


def claim_bytes(claim: Mapping[str, Any]) -> bytes:
    """The bytes a branch signs (canonical JSON; equals ``server.records.ledger.signed_bytes`` of its line)."""
    return canonical_json(dict(claim))


def branch_record(claim: Mapping[str, Any], signature: bytes | None) -> ConfigRecord:
    """The reply's ``branch`` record: the claim and, when keys exist, its signature."""
    record: dict[str, Any] = {"branch-id": claim["branch"], "status": claim["status"], "claim": claim_bytes(claim).decode("utf-8")}
    if signature is not None:
        record["signature"] = bytes(signature)
    return ConfigRecord(record)


def read_claim(record: Mapping[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """Parse a reply's claim against the claim schema; raise ``Rejection('malformed')`` if it is not one.

    The schema: the claim is JSON text of at most MAX_CLAIM_CHARS, nested at most
    MAX_CLAIM_DEPTH deep (checked before it is parsed), with no repeated key and no
    NaN or infinity; exactly the fields of CLAIM_FIELDS (plus OPTIONAL_CLAIM_FIELDS),
    each of its type; counts in [0, MAX_COUNT] (the run id in [0, MAX_RUN_ID]), numbers finite and >= 0, strings at
    most MAX_TEXT_CHARS; ``pii_counts`` maps strings to integers.  The signature, when
    present, is SIGNATURE_BYTES bytes.  What the values mean is :func:`check_vocabulary`'s.
    """
    raw = record.get("claim") if isinstance(record, Mapping) else None
    if not isinstance(raw, str):
        raise Rejection("malformed", "reply has no privacy claim text")
    if len(raw) > MAX_CLAIM_CHARS:
        raise Rejection("malformed", f"privacy claim is {len(raw)} characters, more than {MAX_CLAIM_CHARS}")
    if json_depth(raw, MAX_CLAIM_DEPTH) > MAX_CLAIM_DEPTH:
        raise Rejection("malformed", f"privacy claim is nested deeper than {MAX_CLAIM_DEPTH}")
    try:
        claim = json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except ValueError as exc:
        raise Rejection("malformed", f"privacy claim is not JSON ({one_line(str(exc))[:200]})") from exc
    if not isinstance(claim, dict) or not set(CLAIM_FIELDS) <= set(claim) <= set(CLAIM_FIELDS) | set(OPTIONAL_CLAIM_FIELDS):
        raise Rejection("malformed", "privacy claim does not have the expected fields")
    for key, types in {**CLAIM_FIELDS, **OPTIONAL_CLAIM_FIELDS}.items():
        if key in claim:
            _check_value(key, claim[key], types)
    for key, count in claim["pii_counts"].items():
        _check_value(f"pii_counts.{key[:40]}", count, (int,), signed=True)
    if len(claim["pii_counts"]) > MAX_PII_KEYS:
        raise Rejection("malformed", f"privacy claim counts more than {MAX_PII_KEYS} PII types")
    signature = record.get("signature")
    if signature is not None and (not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES):
        raise Rejection("malformed", f"claim signature is not {SIGNATURE_BYTES} bytes")
    return claim, signature


def _check_value(key: str, value: Any, types: tuple[type, ...], *, signed: bool = False) -> None:
    """One field of the claim schema (``signed``: the sign is :func:`check_vocabulary`'s to judge)."""
    if isinstance(value, bool) or not isinstance(value, types):
        raise Rejection("malformed", f"privacy claim field '{key}' has type {type(value).__name__}")
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        raise Rejection("malformed", f"privacy claim field '{key}' is longer than {MAX_TEXT_CHARS} characters")
    if isinstance(value, int) and not (-MAX_COUNT if signed else 0) <= value <= (MAX_RUN_ID if key == "run_id" else MAX_COUNT):
        raise Rejection("malformed", f"privacy claim field '{key}' is out of range")
    if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
        raise Rejection("malformed", f"privacy claim field '{key}' is negative or not finite")
    if isinstance(value, dict) and not all(isinstance(k, str) and len(k) <= MAX_TEXT_CHARS for k in value):
        raise Rejection("malformed", f"privacy claim field '{key}' has a key that is not a short string")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key is repeated")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def json_depth(text: str, limit: int) -> int:
    """How deep the arrays and objects of JSON ``text`` nest (counting stops once past ``limit``)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def check_vocabulary(claim: Mapping[str, Any]) -> None:
    """Check what a well-formed claim says against the fixed vocabularies; raise ``Rejection('bad-claim')``.

    A branch's claim is ``record-level`` (client-level lines are the server's), ``protects``
    says what that kind protects, the accountant is one of CLAIM_ACCOUNTANTS, ``pii_counts``
    counts PII types of :data:`common.privacy.pii.PII_TYPES` with non-negative integers, and
    a claim that did not train (``budget-exhausted``, ``refused``) has no examples and no
    steps; only a ``refused`` claim carries a ``reason``, which starts with ``policy: `` or ``replay: ``.
    """
    def bad(detail: str) -> Rejection:
        return Rejection("bad-claim", detail)

    if claim["status"] not in STATUSES:
        raise bad(f"status {claim['status']!r} is not one of {', '.join(STATUSES)}")
    if claim["kind"] != RECORD_LEVEL:
        raise bad(f"kind {claim['kind']!r} is not {RECORD_LEVEL!r} (the only kind a branch claims)")
    if claim["protects"] != PROTECTS[RECORD_LEVEL]:
        raise bad(f"protects {claim['protects']!r} is not what a {RECORD_LEVEL} claim protects")
    if claim["accountant"] not in CLAIM_ACCOUNTANTS:
        raise bad(f"accountant {claim['accountant']!r} is not one of {', '.join(CLAIM_ACCOUNTANTS)}")
    unknown = sorted(set(claim["pii_counts"]) - set(PII_TYPES))
    if unknown:
        raise bad(f"pii_counts names unknown PII type(s) {', '.join(unknown[:3])}")
    if any(count < 0 for count in claim["pii_counts"].values()):
        raise bad("pii_counts holds a negative count")
    if claim["status"] != STATUS_TRAINED and (claim["examples"] or claim["steps"]):
        raise bad(f"a {claim['status']} claim has examples or steps")
    reason = claim.get("reason")
    if reason is not None and claim["status"] != STATUS_REFUSED:
        raise bad("only a refused claim carries a reason")
    if reason is not None and (len(reason) > MAX_REASON_CHARS or not reason.startswith(REFUSAL_PREFIXES)):
        raise bad(f"a refusal's reason starts with {' or '.join(map(repr, REFUSAL_PREFIXES))} "
                  f"and is at most {MAX_REASON_CHARS} characters")


def reply_metrics(examples: int, loss: float) -> MetricRecord:
    """The reply's MetricRecord: FedAvg weights and the train loss."""
    return MetricRecord({
        "num-examples": int(examples),
        "unit-weight": 1,
        "train-loss": float(loss) if np.isfinite(loss) else 0.0,
    })
