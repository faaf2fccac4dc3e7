"""The report document as JSON and as CSV, for tools.

Both print the document :func:`server.report.build.build_report` makes, as the
HTML page does (:mod:`server.report.html`), so the three formats never disagree.
Every CSV cell of text that starts like a formula (``=``, ``+``, ``-``, ``@``,
tab, carriage return) is neutralised with a leading ``'`` (OWASP guidance).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Mapping

from server.report.schema import KIND_CLIENT, budget_used, rejection_text

CSV_COLUMNS = ("run_id", "round", "branch", "kind", "status", "accountant", "examples", "steps", "sample_rate",
               "noise_multiplier", "max_grad_norm", "clipping_norm", "epsilon", "delta", "budget_epsilon",
               "budget_used")
CSV_ROUND_COLUMNS = ("loss", "accuracy", "macro_f1", "perplexity", "rouge_l")


def render_json(report: Mapping) -> str:
    """The report document as indented JSON."""
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> Any:
    """A CSV cell: None empty, floats exact; text that a spreadsheet would run as a formula gets a leading quote."""
    if v is None:
        return ""
    if isinstance(v, (bool, int, float)):
        return repr(v) if isinstance(v, float) else v
    text = str(v)
    return "'" + text if text.startswith(FORMULA_START) else text


def render_csv(report: Mapping) -> str:
    """One row per ledger line (a branch in a round; client-level lines as branch '(server)')."""
    pii_types = list(report["pii_types"])
    rounds = {r["round"]: r for r in report["rounds"]}
    header = [*CSV_COLUMNS, *(f"pii_{t}" for t in pii_types), *(f"round_{k}" for k in CSV_ROUND_COLUMNS),
              "aggregated", "rejected_reason", "signed", "ledger_line"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in sorted([*report["ledger"], *report["client_level"]],
                      key=lambda r: (r["round"] if r["round"] is not None else -1, r["line"])):
        rnd = rounds.get(row["round"], {})
        rejected = "; ".join(rejection_text(x) for x in rnd.get("rejected", []) if x["branch"] == row["branch"])
        values = [report["run_id"] if row["run_id"] is None else row["run_id"], row["round"], row["branch"],
                  row["kind"], row["status"], row["accountant"], row["examples"], row["steps"], row["sample_rate"],
                  row["noise_multiplier"], row["max_grad_norm"], row["clipping_norm"], row["epsilon"], row["delta"],
                  row["budget_epsilon"], budget_used(row),
                  *(row["pii_counts"].get(t) if row["kind"] != KIND_CLIENT else None for t in pii_types),
                  *(rnd.get(k) for k in CSV_ROUND_COLUMNS),
                  None if row["aggregated"] is None else str(row["aggregated"]).lower(),
                  rejected or None, str(row["signed"]).lower(), row["line"]]
        writer.writerow([_cell(v) for v in values])
    return buf.getvalue()
