"""The one admission path of a reply's privacy claim, shared by the normal path and SecAgg+.

Every training reply carries the branch's signed privacy claim (the ledger
line it vouches for).  Before anything else of a reply is used, its claim
must, in order,

1. parse against the claim schema (:func:`common.wire.protocol.read_claim`:
   ``malformed``), with the ``branch-id`` and ``status`` beside it equal to the claim's;
2. when the server has keys, carry the valid signature of the branch it names
   (``unknown-branch``, ``forged``);
3. be for this run and this round (``replayed``);
4. be the first reply from that branch this round (``duplicate``).

From here the claim is the branch's word, so every later failure keeps it
(the branch did spend that privacy: it is ledgered, not aggregated):

5. its values come from the fixed vocabularies
   (:func:`common.wire.protocol.check_vocabulary`: ``bad-claim``);
6. the rest of the reply passed its schema (the caller's ``problem``: ``malformed``);
7. its aggregation weight -- the claim's ``examples``, a positive integer when it
   trained, 0 when it did not -- equals every other place the reply states a
   weight (the caller's ``weights``: the metrics record, SecAgg+'s weight beside
   the masked vector): ``bad-weight``;
8. its figures agree with the run config and its epsilon with the server's
   recomputation (:class:`server.admission.spend.SpendAudit`:
   ``config-mismatch``, ``epsilon-decreased``, ``epsilon-mismatch``).  The audit
   sees every claim that passed 5, so its spend is recorded even when 6 or 7 fail.

:class:`server.admission.intake.Intake` (normal path) then opens and validates
the update; the SecAgg+ loop has nothing more to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature

from common.errors import Rejection
from common.wire.protocol import STATUS_TRAINED, check_vocabulary, claim_bytes, read_claim
from server.admission.spend import SpendAudit
from server.records.keyring import ServerKeys


@dataclass
class Rejected:
    """A reply excluded from aggregation, with why."""

    branch_id: str
    reason: str
    detail: str
    claim: dict | None = None  # set when the claim itself verified
    signature: bytes | None = None


@dataclass(frozen=True)
class VerifiedClaim:
    """A claim that passed every check of this module."""

    claim: dict
    signature: bytes | None

    @property
    def branch_id(self) -> str:
        """The branch that signed the claim."""
        return self.claim["branch"]


class ClaimChecks:
    """Verifies the claims of one run's replies, round by round."""

    def __init__(self, *, run_id: int, keys: ServerKeys | None, spend: SpendAudit) -> None:
        self.run_id = int(run_id)
        self.keys = keys
        self.spend = spend

    def check(self, record: Mapping[str, Any], server_round: int, seen: set[str], *,
              weights: Mapping[str, Any] | None = None, problem: Rejection | None = None) -> VerifiedClaim | Rejected:
        """Check the claim in ``record`` (a reply's ``branch`` record); add its branch to ``seen`` once it verified.

        ``weights``: where else the reply states its weight -> the value there; ``problem``: what the
        reply's schema found wrong outside the claim (reported once the claim verified).
        """
        try:
            claim, signature = read_claim(record)
            if record.get("branch-id") != claim["branch"] or record.get("status") != claim["status"]:
                raise Rejection("malformed", "branch-id or status beside the claim differs from the claim's")
        except Rejection as exc:
            return Rejected("?", exc.reason, exc.detail)
        branch = claim["branch"]
        rejected = self._check_signature(claim, signature)
        if rejected is not None:
            return rejected
        if claim["run_id"] != self.run_id or claim["round"] != server_round:
            return Rejected(branch, "replayed", f"claim is for run {claim['run_id']} round {claim['round']}, "
                                                f"expected run {self.run_id} round {server_round}")
        if branch in seen:
            return Rejected(branch, "duplicate", f"second reply from {branch} in round {server_round}")
        seen.add(branch)
        failure = self._check_content(claim, weights or {}, problem)
        if failure is not None:
            return Rejected(branch, failure.reason, failure.detail, claim, signature)
        return VerifiedClaim(claim, signature)

    def _check_content(self, claim: dict, weights: Mapping[str, Any], problem: Rejection | None) -> Rejection | None:
        """Checks 5-8 on a verified claim: the first failure, or None.  The spend audit sees every
        vocabulary-valid claim (it records the spend even when the reply fails otherwise)."""
        try:
            check_vocabulary(claim)
        except Rejection as exc:
            return exc
        spent = self.spend.check(claim)
        return problem or weight_problem(claim, weights) or spent

    def _check_signature(self, claim: dict, signature: bytes | None) -> Rejected | None:
        """Verify the branch's signature on its claim (when the server has keys)."""
        if self.keys is None:
            return None
        branch = claim["branch"]
        key = self.keys.branch_keys.get(branch)
        if key is None:
            return Rejected(branch, "unknown-branch", f"branch {branch!r} is not registered")
        if signature is None:
            return Rejected(branch, "forged", "privacy claim is not signed")
        try:
            key.verify(signature, claim_bytes(claim))
        except InvalidSignature:
            return Rejected(branch, "forged", f"privacy claim not signed by the registered key of {branch!r}")
        return None


def weight_problem(claim: Mapping[str, Any], weights: Mapping[str, Any]) -> Rejection | None:
    """``bad-weight`` unless the claim's weight is a positive integer (0 when it did not train) and every
    other statement of it (``weights``: where -> value) is that same integer."""
    trained = claim["status"] == STATUS_TRAINED
    expected = claim["examples"] if trained else 0
    if trained and expected < 1:
        return Rejection("bad-weight", f"a trained claim with {expected} examples")
    for where, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, int) or value != expected:
            return Rejection("bad-weight", f"{where} is {value!r}, the claim's weight is {expected}")
    return None
