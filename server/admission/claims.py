"""The checks on a reply's privacy claim, shared by the normal path and SecAgg+.

Every training reply carries the branch's signed privacy claim (the ledger
line it vouches for).  Before anything else of a reply is looked at, its claim
must

1. parse and type-check (``malformed``);
2. when the server has keys, carry the valid signature of the branch it names
   (``unknown-branch``, ``forged``);
3. be for this run and this round (``replayed``);
4. be the first reply from that branch this round (``duplicate``).

:class:`server.admission.intake.Intake` (normal path) then opens and validates
the update; the SecAgg+ loop checks the weight that travels beside the masked
vector.  A failure is a :class:`Rejected`, which keeps the claim only when the
claim itself verified (the branch did spend that privacy, so it is ledgered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature

from common.errors import Rejection
from common.wire.protocol import claim_bytes, read_claim
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

    def __init__(self, *, run_id: int, keys: ServerKeys | None) -> None:
        self.run_id = int(run_id)
        self.keys = keys

    def check(self, record: Mapping[str, Any], server_round: int, seen: set[str]) -> VerifiedClaim | Rejected:
        """Check the claim in ``record`` (a reply's ``branch`` record); add its branch to ``seen`` when it passes."""
        try:
            claim, signature = read_claim(record)
        except Rejection as exc:
            return Rejected("?", "malformed", exc.detail)
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
        return VerifiedClaim(claim, signature)

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
