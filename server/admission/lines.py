"""The ledger lines admission leads to, the same on the normal path and under SecAgg+.

* an admitted claim: the branch's signed claim, ``aggregated`` when it trained
  and the round's aggregate was applied; a line not aggregated says why in
  ``reject_reason`` -- ``below-min-train-branches`` (too few updates to
  aggregate), ``round-discarded`` (SecAgg+ threw the round's sum away),
  ``refused-by-branch`` (a ``refused`` claim) -- except a ``budget-exhausted``
  claim, whose status says it;
* a rejected claim (verified, so the spend is real): the claim, not
  aggregated, with the rejection's reason;
* a failure: a server line naming the branch that failed the round (its id
  learned from its earlier verified claims, else ``node-<id>``) and, when its
  plan is known, ``possible_epsilon``: the epsilon it reaches if it trained
  before failing (:meth:`server.admission.spend.SpendAudit.possible_epsilon`).
"""

from __future__ import annotations

from typing import Any, Mapping

from common.wire.protocol import STATUS_REFUSED, STATUS_TRAINED
from server.records.ledger import FAILURE, SERVER_BRANCH

BELOW_MIN_TRAIN_BRANCHES = "below-min-train-branches"
ROUND_DISCARDED = "round-discarded"
REFUSED_BY_BRANCH = "refused-by-branch"


def admitted_line(claim: Mapping[str, Any], *, time: str, not_aggregated: str | None) -> dict:
    """The ledger line of an admitted claim (``not_aggregated``: why the round's aggregate was not applied)."""
    line = {**claim, "time": time, "aggregated": False}
    if claim["status"] == STATUS_REFUSED:
        line["reject_reason"] = REFUSED_BY_BRANCH
    elif claim["status"] == STATUS_TRAINED:
        line["aggregated"] = not_aggregated is None
        if not_aggregated is not None:
            line["reject_reason"] = not_aggregated
    return line


def rejected_line(claim: Mapping[str, Any], *, time: str, reason: str) -> dict:
    """The ledger line of a verified claim whose reply was rejected."""
    return {**claim, "time": time, "aggregated": False, "reject_reason": reason}


def failure_line(*, run_id: int, server_round: int, branch: str, reason: str, time: str,
                 possible_epsilon: float | None) -> dict:
    """A server line for a branch that failed the round (no claim reached the server)."""
    line = {"run_id": int(run_id), "round": int(server_round), "branch": SERVER_BRANCH, "kind": FAILURE,
            "status": "branch-failed", "failed_branch": branch, "reason": reason[:300], "time": time,
            "aggregated": False}
    if possible_epsilon is not None:
        line["possible_epsilon"] = float(possible_epsilon)
    return line
