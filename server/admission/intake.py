"""Admission of branch replies on the normal path: what must hold before an update may be aggregated.

For each training reply of a round, in order:

1. the reply is not a Flower error (a dropped branch is counted as a failure), and every
   branch sent a message answered before the round's time limit (else: a failure);
2. its records pass the reply schema (:mod:`server.admission.reply_schema`), and its
   privacy claim the one admission path of :mod:`server.admission.claims` (shared
   with SecAgg+): schema (``malformed``), signature (``unknown-branch``, ``forged``),
   run and round (``replayed``), first reply (``duplicate``), vocabularies
   (``bad-claim``), run config and epsilon (``config-mismatch``,
   ``epsilon-decreased``, ``epsilon-mismatch``) and weight (``bad-weight``);
3. when it trained: the envelope opens (``tampered``, ``forged``,
   ``replayed``, ``oversized``, ``malformed``) and is from the same branch as
   the claim, and the adapter passes :func:`server.admission.validation.validate_update`
   (``keys``, ``shape``, ``dtype``, ``non-finite``, ``norm``).

Whatever a reply holds, it ends admitted or rejected with a reason: an
exception no check foresaw rejects it as ``malformed`` (detail ``unforeseen: ...``)
and the round goes on.  An admitted reply is given to Flower's strategies as a
new message in the plain form they read: ``arrays`` and a ``metrics`` record the
server writes, whose weight is the signed claim's ``examples`` (``unit-weight``
1 for client-level DP's uniform average); the received one is untouched.  A
rejected one keeps its reason; its claim is kept when it was verified (the
branch did spend that privacy), so the ledger can still record the spend,
marked not aggregated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from flwr.app import Message, MetricRecord, RecordDict
from flwr.common.logger import log

from common.wire.envelope import open_update
from common.errors import Rejection, fedbank_message, one_line
from common.wire.protocol import STATUS_TRAINED, arrays_to_record, record_to_arrays
from server.admission.claims import ClaimChecks, Rejected
from server.admission.reply_schema import ReplyParts, parse_reply
from server.admission.spend import SpendAudit
from server.admission.validation import validate_update
from server.records.keyring import ServerKeys

WARNING = 30
#: How the detail of a rejection begins when a reply raised where no check foresaw it.
UNFORESEEN = "unforeseen: "


@dataclass
class Admitted:
    """A reply that may be ledgered and (if it trained) aggregated."""

    branch_id: str
    claim: dict
    signature: bytes | None
    message: Message
    wire_bytes: int = 0
    norm: float | None = None


@dataclass
class RoundIntake:
    """The outcome of admitting one round's replies."""

    admitted: list[Admitted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)

    @property
    def trained(self) -> list[Admitted]:
        """Admitted replies that carry an update."""
        return [a for a in self.admitted if a.claim["status"] == STATUS_TRAINED]


class Intake:
    """Admits the replies of each round for one run."""

    def __init__(self, *, run_id: int, keys: ServerKeys | None, max_update_norm: float, max_bytes: int,
                 spend: SpendAudit) -> None:
        self.run_id = int(run_id)
        self.keys = keys
        self.claims = ClaimChecks(run_id=self.run_id, keys=keys, spend=spend)
        self.max_update_norm = max_update_norm
        self.max_bytes = max_bytes
        self.node_branch: dict[int, str] = {}  # learned from verified claims: names a node that fails later

    def admit_round(self, server_round: int, replies: list[Message], global_arrays: dict[str, np.ndarray],
                    sent_to: dict[str, int] | None = None, round_timeout: float | None = None) -> RoundIntake:
        """Admit or reject every reply of ``server_round`` (``sent_to``: message id -> node it was sent to).

        A message in ``sent_to`` that got no reply at all (the round's time limit ran out first) is a failure too.
        """
        out = RoundIntake()
        seen: set[str] = set()
        answered = {msg.metadata.reply_to_message_id for msg in replies}
        limit = f"round-timeout={round_timeout:g} s" if round_timeout is not None else "the round's time limit"
        for message_id, node in (sent_to or {}).items():
            if message_id not in answered:
                out.failures.append((int(node), f"sampled, but no reply had arrived when the round closed ({limit})"))
        for msg in replies:
            if msg.has_error():
                reason = str(msg.error.reason)
                node = (sent_to or {}).get(msg.metadata.reply_to_message_id, int(msg.metadata.src_node_id))
                out.failures.append((int(node), fedbank_message(reason) or one_line(reason)[-300:]))
                continue
            result = self._admit(msg, server_round, global_arrays, seen)
            (out.admitted if isinstance(result, Admitted) else out.rejected).append(result)
        # Replies arrive in any order; aggregate and ledger in branch order so a run is reproducible bit for bit
        # (floating-point sums depend on their order).
        out.admitted.sort(key=lambda a: (len(a.branch_id), a.branch_id))
        return out

    def _admit(self, msg: Message, server_round: int, global_arrays: dict[str, np.ndarray], seen: set[str]) -> Admitted | Rejected:
        """Admit one reply; whatever it holds, the outcome is admitted or rejected with a reason."""
        try:
            return self._admit_checked(msg, server_round, global_arrays, seen)
        except Exception as exc:  # a reply no check foresaw must not end the round: reject it, and say so
            log(WARNING, "round %s: a reply raised %s in admission", server_round, type(exc).__name__)
            return Rejected("?", "malformed", f"{UNFORESEEN}{type(exc).__name__}: {one_line(str(exc))[:200]}")

    def _admit_checked(self, msg: Message, server_round: int, global_arrays: dict[str, np.ndarray],
                       seen: set[str]) -> Admitted | Rejected:
        parts = parse_reply(msg.content, sealed=self.keys is not None, max_tensors=len(global_arrays))
        if parts.branch is None:
            return Rejected("?", parts.problem.reason, parts.problem.detail)
        verified = self.claims.check(parts.branch, server_round, seen, weights=parts.weights, problem=parts.problem)
        if isinstance(verified, Rejected):
            return verified
        branch, claim, signature = verified.branch_id, verified.claim, verified.signature
        self.node_branch[int(msg.metadata.src_node_id)] = branch
        if claim["status"] != STATUS_TRAINED:
            return Admitted(branch, claim, signature, msg)
        try:
            arrays, wire = self._open_update(parts, branch, server_round)
            norm = validate_update(arrays, global_arrays, self.max_update_norm)
        except Rejection as exc:
            return Rejected(branch, exc.reason, exc.detail, claim, signature)
        ordered = {name: arrays[name] for name in global_arrays}  # the global order: Flower's DP wrappers zip by position
        # The weight is the signed claim's (Flower's central-DP average reads unit-weight: 1 for every branch).
        metrics = MetricRecord({"num-examples": claim["examples"], "unit-weight": 1, "train-loss": parts.loss})
        plain = Message(content=RecordDict({"arrays": arrays_to_record(ordered), "metrics": metrics}), reply_to=msg)
        return Admitted(branch, claim, signature, plain, wire_bytes=wire, norm=norm)

    def _open_update(self, parts: ReplyParts, branch: str, server_round: int) -> tuple[dict[str, np.ndarray], int]:
        """The update's arrays and its size on the wire."""
        if self.keys is None:
            try:
                arrays = record_to_arrays(parts.arrays)
            except (ValueError, TypeError, EOFError, OSError) as exc:
                raise Rejection("malformed", f"update arrays do not deserialize ({type(exc).__name__})") from exc
            return arrays, sum(a.nbytes for a in arrays.values())
        opened = open_update(parts.sealed_update, expected_run_id=self.run_id, expected_round=server_round,
                             server_private_key=self.keys.decrypt_key, branch_verify_keys=self.keys.branch_keys,
                             max_bytes=self.max_bytes)
        if opened.branch_id != branch:
            raise Rejection("forged", f"update sealed by {opened.branch_id!r} but claimed by {branch!r}")
        return opened.arrays, opened.nbytes
