"""The report's vocabulary, shared by the builder and every renderer.

The names a report document uses (format, kinds of epsilon, statuses, the
near-budget threshold, what each epsilon protects), the report's error, and the
small pure helpers that more than one report module needs.  It imports no
other report module, so every module of :mod:`server.report` can import it.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from common.errors import FedbankError

FORMATS = ("html", "json", "csv")
REPORT_FORMAT = "fedbank-report"
REPORT_VERSION = 1
NEAR_BUDGET = 0.9  # a branch at or above this share of its budget is highlighted
OVER_TOLERANCE = 1e-6  # epsilon above budget x (1 + this) means the budget gate did not hold
KIND_RECORD = "record-level"
KIND_CLIENT = "client-level"
STATUS_TRAINED = "trained"
STATUS_EXHAUSTED = "budget-exhausted"
PII_ORDER = ("ID_CARD", "PHONE", "BANK_CARD", "EMAIL", "NAME", "ADDRESS")  # common.privacy.pii.PII_TYPES

PROTECTS = {
    KIND_RECORD: (
        "one customer record within a branch",
        "Record-level epsilon (DP-SGD at each branch, composed over every round by the branch's "
        "accountant): whoever sees everything the branch sent — the server, the other branches, the "
        "final model — can tell only up to a factor e^epsilon (plus probability delta) whether any "
        "ONE record was in that branch's training data. It does not hide statistics of the branch as "
        "a whole, and a customer with k records is protected only at about k x epsilon."),
    KIND_CLIENT: (
        "a whole branch's contribution",
        "Client-level epsilon (central DP: the server clips each branch's update and adds Gaussian "
        "noise to the aggregate): whoever sees the global model can tell only up to e^epsilon (plus "
        "delta) whether a WHOLE branch took part at all. It assumes the server is trusted to add the "
        "noise: the server itself sees the individual updates (unless secure aggregation hides them)."),
    "empirical": (
        "a measured lower bound, not a guarantee",
        "Empirical epsilon (canary audit): canary records planted in one branch, then a membership "
        "test on the trained model. The bound it gives is what an attacker demonstrably achieved; "
        "it must stay at or below the formal epsilon. A lower bound ABOVE the formal epsilon means "
        "the implementation or the accounting is broken."),
    "none": (
        "nothing",
        "A line with no epsilon (null) comes from a run without DP (dp.enabled = false): it carries "
        "no privacy guarantee at all, which is not the same as epsilon 0."),
}


class ReportError(FedbankError):
    """The report cannot be made: the run directory or an option is unusable."""


def natural_key(text: str) -> list:
    """Sort key that orders ``branch-2`` before ``branch-10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(text))]


def finite(x: Any) -> float | None:
    """``x`` as a float if it is a finite number (not a bool), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def scalar(v: Any) -> Any:
    """A JSON scalar as the report keeps it: NaN and infinities become None (JSON has neither)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def rejection_text(rejection: Mapping) -> str:
    """A rejected update's reason, with its detail when there is one."""
    return rejection["reason"] + (f": {rejection['detail']}" if rejection.get("detail") else "")


def budget_used(row: Mapping) -> float | None:
    """A ledger row's epsilon as a share of its budget (None without either)."""
    return row["epsilon"] / row["budget_epsilon"] if row["epsilon"] is not None and row["budget_epsilon"] else None
