"""What the report computes from a run's rows: rounds, branch budget states, summary, checks.

Works on the plain rows :mod:`server.report.run_files` reads: the per round
utility, failures and rejections; per branch the final epsilon against its
budget and the state that follows (``ok``, ``near-budget``, ``exhausted``,
``over-budget``, ``no-dp``, ``no-ledger``); the summary a reviewer reads first;
where ``metrics.json`` and the ledger disagree; and the canary audit's figures.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from server.report.schema import (NEAR_BUDGET, OVER_TOLERANCE, STATUS_EXHAUSTED, STATUS_TRAINED, finite, natural_key,
                                  scalar)

ROUND_SKIP_KEYS = {"round", "branches", "failures", "rejected"}


def budget_from_config(config: Mapping, branch: str) -> float | None:
    """A branch's budget as the run config states it (dp.branch-budgets, then dp.budget-epsilon, then target)."""
    if config.get("dp.enabled") is False:
        return None
    for item in str(config.get("dp.branch-budgets") or "").split(","):
        name, sep, raw = item.partition("=")
        if sep and name.strip() == branch:
            try:
                return float(raw)
            except ValueError:
                break
    for key in ("dp.budget-epsilon", "dp.target-epsilon"):
        value = finite(config.get(key))
        if value:
            return value
    return None


def rounds(round_entries: Sequence[Mapping], rows: Sequence[dict], record_rows: Sequence[dict]) -> list[dict]:
    """Per round: utility figures from metrics.json, its failures and rejections, and who did not train."""
    by_round: dict[int, dict] = {}
    for entry in round_entries:
        rnd = {"round": entry["round"]}
        for key, value in entry.items():
            if key not in ROUND_SKIP_KEYS and finite(value) is not None:
                rnd[key] = finite(value)
        rnd["failures"] = [{"node": str(f.get("branch") or f.get("node", "")), "reason": str(f.get("reason", ""))}
                           for f in entry.get("failures") or [] if isinstance(f, Mapping)]
        rnd["rejected"] = [{"branch": str(f.get("branch", "")), "reason": str(f.get("reason", "")),
                            "detail": str(f.get("detail") or "")}
                           for f in entry.get("rejected") or [] if isinstance(f, Mapping)]
        by_round[entry["round"]] = rnd
    for r in rows:
        if r["round"] is not None and r["round"] not in by_round:
            by_round[r["round"]] = {"round": r["round"], "failures": [], "rejected": []}
    for r in record_rows:  # a rejection the ledger records but metrics.json does not (e.g. an older writer)
        if r["reject_reason"] and r["round"] in by_round and not any(
                x["branch"] == r["branch"] for x in by_round[r["round"]]["rejected"]):
            by_round[r["round"]]["rejected"].append({"branch": r["branch"], "reason": r["reject_reason"], "detail": ""})
    for rnd in by_round.values():
        rnd["not_trained"] = [{"branch": r["branch"], "status": r["status"], "line": r["line"]}
                              for r in record_rows if r["round"] == rnd["round"] and r["status"] != STATUS_TRAINED]
    return [by_round[k] for k in sorted(by_round)]


def branches(round_entries: Sequence[Mapping], record_rows: Sequence[dict], config: Mapping,
             failure_rows: Sequence[dict] = ()) -> list[dict]:
    """Per branch, from its ledger lines: the largest epsilon it claimed against its budget, its state, rounds, PII.

    Cumulative epsilon never goes down: the budget state uses the largest
    claim, and every claim below an earlier one is listed in ``epsilon_decreases``.
    """
    names = {r["branch"] for r in record_rows} | {f["branch"] for f in failure_rows if f["branch"]}
    for entry in round_entries:
        if isinstance(entry.get("branches"), Mapping):
            names |= {str(b) for b in entry["branches"]}
    out = []
    for name in sorted(names, key=natural_key):
        mine = [r for r in record_rows if r["branch"] == name]
        last = mine[-1] if mine else None
        eps = [r["epsilon"] for r in mine if r["epsilon"] is not None]
        budget = next((r["budget_epsilon"] for r in reversed(mine) if r["budget_epsilon"]), None)
        budget = budget if budget is not None else budget_from_config(config, name)
        claimed = max(eps) if eps else None
        possible = possible_epsilon(mine, [f for f in failure_rows if f["branch"] == name], claimed)
        refused = [r["round"] for r in mine if r["status"] == STATUS_EXHAUSTED]
        pii_src = next((r for r in reversed(mine) if r["pii_counts"]), None)
        out.append({
            "branch": name,
            "final_epsilon": eps[-1] if eps else None,
            "max_epsilon": claimed,
            "possible_epsilon": possible,
            "epsilon_decreases": epsilon_decreases(mine),
            "budget_epsilon": budget,
            "budget_used": claimed / budget if claimed is not None and budget else None,
            "possible_budget_used": possible / budget if possible is not None and budget else None,
            "state": budget_state(bool(mine), claimed, claimed / budget if claimed is not None and budget else None,
                                  refused),
            "rounds_trained": sorted(r["round"] for r in mine if r["status"] == STATUS_TRAINED and r["round"] is not None),
            "rounds_refused": refused,
            "last_round": last["round"] if last else None,
            "last_status": last["status"] if last else None,
            "examples": last["examples"] if last else None,
            "ledger_lines": len(mine),
            "pii_counts": dict(pii_src["pii_counts"]) if pii_src else {},
            "pii_round": pii_src["round"] if pii_src else None,
        })
    return out


def epsilon_decreases(mine: Sequence[Mapping]) -> list[dict]:
    """Each claim of a branch below the largest it claimed before (a violation: epsilon is cumulative)."""
    out, top = [], None
    for r in sorted(mine, key=lambda r: r["line"]):
        if r["epsilon"] is None:
            continue
        if top is not None and r["epsilon"] < top["epsilon"] * (1 - 1e-9):
            out.append({"line": r["line"], "epsilon": r["epsilon"], "max_line": top["line"],
                        "max_epsilon": top["epsilon"]})
        if top is None or r["epsilon"] > top["epsilon"]:
            top = r
    return out


def possible_epsilon(mine: Sequence[Mapping], failures: Sequence[Mapping], claimed: float | None) -> float | None:
    """The epsilon a branch may have reached in rounds it failed, until a later signed claim of it settles it."""
    settled = max((r["line"] for r in mine if r["signed"] and r["epsilon"] is not None), default=0)
    open_ = [f["possible_epsilon"] for f in failures if f["possible_epsilon"] is not None and f["line"] > settled]
    if not open_:
        return None
    return max(open_ + ([claimed] if claimed is not None else []))


def unexplained(row: Mapping) -> bool:
    """A trained claim marked not aggregated with no reject_reason: the ledger does not say why."""
    return row["aggregated"] is False and not row["reject_reason"] and row["status"] == STATUS_TRAINED


def budget_state(ledgered: bool, final: float | None, used: float | None, refused: Sequence) -> str:
    """``ok``, ``near-budget``, ``exhausted``, ``over-budget``, ``no-dp`` or ``no-ledger``."""
    if final is None:
        return "no-dp" if ledgered else "no-ledger"
    if used is not None and used > 1 + OVER_TOLERANCE:
        return "over-budget"
    if refused or (used is not None and used >= 1 - 1e-9):
        return "exhausted"
    if used is not None and used >= NEAR_BUDGET:
        return "near-budget"
    return "ok"


def mismatches(round_entries: Sequence[Mapping], record_rows: Sequence[dict]) -> list[dict]:
    """Where metrics.json and the ledger disagree: a branch-round in one only, or another status or epsilon."""
    by_key = {(r["round"], r["branch"]): r for r in record_rows}
    out = []
    for entry in round_entries:
        for name, fig in (entry.get("branches") or {}).items():
            if not isinstance(fig, Mapping):
                continue
            row = by_key.get((entry["round"], str(name)))
            if row is None:
                out.append({"round": entry["round"], "branch": str(name), "what": "in metrics.json but not in the ledger"})
                continue
            if str(fig.get("status")) != row["status"]:
                out.append({"round": entry["round"], "branch": str(name),
                            "what": f"status {fig.get('status')} in metrics.json, {row['status']} in the ledger"})
            m_eps = finite(fig.get("epsilon"))
            if (m_eps is None) != (row["epsilon"] is None) or (
                    m_eps is not None and not math.isclose(m_eps, row["epsilon"], rel_tol=1e-9, abs_tol=1e-12)):
                out.append({"round": entry["round"], "branch": str(name),
                            "what": f"epsilon {fig.get('epsilon')} in metrics.json, {row['epsilon']} in the ledger"})
    metric_keys = {(e["round"], str(b)) for e in round_entries for b in (e.get("branches") or {})}
    # an update rejected after its claim verified: ledgered (not aggregated), listed under the round's "rejected"
    rejected_keys = {(e["round"], str(x.get("branch"))) for e in round_entries
                     for x in e.get("rejected") or [] if isinstance(x, Mapping)}
    for key, row in by_key.items():
        if key not in metric_keys and not (row["reject_reason"] and key in rejected_keys) and metric_keys:
            out.append({"round": key[0], "branch": key[1], "what": f"ledger line {row['line']} not in metrics.json"})
    return out


def summary(metrics: Mapping, config: Mapping, branch_list: Sequence[Mapping], round_list: Sequence[Mapping],
            record_rows: Sequence[dict], client_rows: Sequence[dict], verification: Mapping) -> dict:
    """The figures a reviewer reads first: DP settings, budget states, the largest epsilon, ledger verdict."""
    accountants = sorted({r["accountant"] for r in record_rows if r["accountant"]})
    dp_enabled = config.get("dp.enabled", True) is not False and metrics.get("accountant") != "none"
    central_mode = str(config.get("central-dp.mode", "off"))
    return {
        "branches": len(branch_list),
        "rounds_completed": sum(1 for r in round_list if r["round"] > 0),
        "rounds_planned": config.get("num-server-rounds") if isinstance(config.get("num-server-rounds"), int) else None,
        "dp_enabled": dp_enabled,
        "accountant": str(metrics.get("accountant", accountants[0] if accountants else "")),
        "ledger_accountants": accountants,
        "delta": _first_finite(metrics.get("delta") or None, config.get("dp.delta") if dp_enabled else None,
                               *(r["delta"] for r in record_rows)),
        "target_epsilon": finite(config.get("dp.target-epsilon")),
        "budget_epsilon": finite(config.get("dp.budget-epsilon")),
        "branch_budgets": str(config.get("dp.branch-budgets", "")),
        "central_dp_mode": central_mode,
        "central_dp_delta": finite(config.get("central-dp.delta")) if central_mode != "off" else None,
        "near_budget_threshold": NEAR_BUDGET,
        "branches_near_budget": [b["branch"] for b in branch_list if b["state"] == "near-budget"],
        "branches_exhausted": [b["branch"] for b in branch_list if b["state"] == "exhausted"],
        "branches_over_budget": [b["branch"] for b in branch_list if b["state"] == "over-budget"],
        "max_epsilon": max((b["max_epsilon"] for b in branch_list if b["max_epsilon"] is not None), default=None),
        "max_possible_epsilon": max((b["possible_epsilon"] for b in branch_list if b["possible_epsilon"] is not None),
                                    default=None),
        "branches_epsilon_decreased": [b["branch"] for b in branch_list if b["epsilon_decreases"]],
        "lines_not_aggregated_without_reason": [r["line"] for r in record_rows if unexplained(r)],
        "client_level_epsilon": next((r["epsilon"] for r in reversed(client_rows) if r["epsilon"] is not None), None),
        "ledger_ok": verification["ok"],
        "ledger_status": verification["status"],
        "failures": sum(len(r["failures"]) for r in round_list),
        "rejected": sum(len(r["rejected"]) for r in round_list),
    }


def _count(x: Any) -> int | float | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else finite(x)


def _first_finite(*values: Any) -> float | None:
    return next((v for v in map(finite, values) if v is not None), None)


def audit(raw: Any, branch_list: Sequence[Mapping]) -> dict:
    """The canary audit's figures from ``audit.json``, checked against the formal epsilon of its branch."""
    if not isinstance(raw, Mapping):
        return {"error": "audit.json is not a JSON object"}
    exposed_key = next((k for k in ("exposed", "predicted", "planted_predicted") if k in raw), None)
    out = {
        "canaries": _count(raw.get("canaries")),
        "branch": None if raw.get("branch") is None else str(raw.get("branch")),
        "auc": finite(raw.get("auc")),
        "exposed": _count(raw.get(exposed_key)) if exposed_key else None,
        "held_out_predicted": _count(raw.get("held_out_predicted")),
        "empirical_epsilon_lower_bound": finite(raw.get("empirical_epsilon_lower_bound")),
        "formal_epsilon": finite(raw.get("formal_epsilon")),
        "delta": finite(raw.get("delta")),
        "confidence": finite(raw.get("confidence")),
    }
    if out["formal_epsilon"] is None and out["branch"]:
        out["formal_epsilon"] = next((b["max_epsilon"] for b in branch_list if b["branch"] == out["branch"]), None)
    lb, formal = out["empirical_epsilon_lower_bound"], out["formal_epsilon"]
    out["consistent"] = None if lb is None or formal is None else bool(lb <= formal * (1 + 1e-9))
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if key in out or key == exposed_key:
            continue
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for sub, v in items:
            if isinstance(v, (str, int, float, bool)) or v is None:
                extra[str(key) if sub is None else f"{key}.{sub}"] = scalar(v)
    out["extra"] = extra
    return out
