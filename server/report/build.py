"""The compliance reviewer's report of one run (``fedbank report RUN_DIR``).

:func:`build_report` reads a run directory -- ``metrics.json`` and
``ledger.jsonl`` (required), ``audit.json`` and ``keys/`` (optional) -- into
one plain document of figures; :func:`render_html`, :func:`render_json` and
:func:`render_csv` print that *same* document three ways, so the three formats
can never disagree; :func:`write_report` does both and writes the file.

Sources of truth:

* per branch per round privacy figures (status, epsilon, delta, noise,
  clipping, sample rate, steps, budget, PII counts) come from the
  **ledger** -- the tamper-evident record -- and its verification result
  (:func:`server.records.ledger.verify_ledger`, with the branches' Ed25519 verify keys
  when ``RUN_DIR/keys`` exists) is part of the report;
* held-out utility, failures and rejected updates per round come from
  ``metrics.json``, which is also cross-checked against the ledger;
* the canary audit (empirical epsilon lower bound) from ``audit.json``.

Every string taken from a file is HTML-escaped; the HTML page is one
self-contained file (inline CSS, plots as base64 PNG, no script, no link).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from common.atomic import write_bytes_atomic
from common.errors import DataError, FedbankError, LedgerError
from server.records.ledger import SERVER_BRANCH, verify_ledger

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
ROUND_SKIP_KEYS = {"round", "branches", "failures", "rejected"}

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


# --------------------------------------------------------------------------- reading


def _natural_key(text: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(text))]


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} {path}: {exc.__class__.__name__}: {exc}") from exc
    except ValueError as exc:
        raise DataError(f"{what} {path} is not valid JSON ({exc}); was the run interrupted while writing it?") from exc


def _read_ledger_lines(path: Path) -> tuple[list[tuple[int, dict]], list[int]]:
    """The ledger's entries as (1-based line number, entry), and the lines that do not parse."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc}") from exc
    good, bad = [], []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            bad.append(n)
            continue
        if isinstance(obj, dict):
            good.append((n, obj))
        else:
            bad.append(n)
    return good, bad


def _keys_dir(run_dir: Path, config: Mapping) -> Path | None:
    """RUN_DIR/keys (where a simulation keeps them), else the run's security.keys-dir if it exists."""
    if (run_dir / "keys").is_dir():
        return run_dir / "keys"
    configured = str(config.get("security.keys-dir") or "")
    if configured and Path(configured).expanduser().is_dir():
        return Path(configured).expanduser()
    return None


def _verify(run_dir: Path, ledger_path: Path, config: Mapping) -> dict:
    """verify_ledger on the run's ledger, with the branches' (and server's) verify keys when a key dir exists."""

    keys_dir = _keys_dir(run_dir, config)
    verify_keys, keys_note, keys_ok = None, "no keys/ directory: signatures (if any) were not checked", True
    if keys_dir is not None:
        try:
            from common.keys.layout import KeyLayout, load_branch_verify_keys, load_ed25519_public

            verify_keys = dict(load_branch_verify_keys(keys_dir))
            server_pub = KeyLayout.from_dir(keys_dir).server_ed25519_pub
            if server_pub.is_file():  # lines the server itself writes (central DP) may be server-signed
                verify_keys[SERVER_BRANCH] = load_ed25519_public(server_pub)
            keys_note = f"signatures checked against the verify keys of {len(verify_keys)} signer(s) in {keys_dir}"
        except FedbankError as exc:
            verify_keys, keys_ok = None, False
            keys_note = f"cannot load the verify keys in {keys_dir} ({exc}); signatures NOT checked"
    result = verify_ledger(ledger_path, verify_keys)
    return {
        "ok": bool(result.ok and keys_ok),
        "chain_ok": bool(result.ok),
        "entries": result.entries,
        "bad_line": result.bad_line,
        "reason": result.reason,
        "head_hash": result.head_hash,
        "signatures_checked": verify_keys is not None,
        "keys": keys_note,
    }


def _budget_from_config(config: Mapping, branch: str) -> float | None:
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
        value = _finite(config.get(key))
        if value:
            return value
    return None


def _ledger_row(n: int, entry: Mapping) -> dict:
    branch = str(entry.get("branch", ""))
    kind = entry.get("kind")
    if not isinstance(kind, str) or not kind:
        kind = KIND_CLIENT if branch == SERVER_BRANCH else KIND_RECORD
    pii = entry.get("pii_counts")
    return {
        "line": n,
        "run_id": None if entry.get("run_id") is None else str(entry.get("run_id")),
        "round": entry.get("round") if isinstance(entry.get("round"), int) else None,
        "branch": branch,
        "kind": kind,
        "protects": str(entry.get("protects") or PROTECTS.get(kind, ("",))[0]),
        "status": str(entry.get("status", "")),
        "accountant": None if entry.get("accountant") is None else str(entry.get("accountant")),
        "examples": entry.get("examples") if isinstance(entry.get("examples"), int) else None,
        "steps": entry.get("steps") if isinstance(entry.get("steps"), int) else None,
        "sample_rate": _finite(entry.get("sample_rate")),
        "noise_multiplier": _finite(entry.get("noise_multiplier")),
        "max_grad_norm": _finite(entry.get("max_grad_norm")),
        "clipping_norm": _finite(entry.get("clipping_norm")) if entry.get("clipping_norm") is not None
        else (_finite(entry.get("max_grad_norm")) if kind == KIND_CLIENT else None),
        "epsilon": _finite(entry.get("epsilon")),
        "delta": _finite(entry.get("delta")),
        "budget_epsilon": _finite(entry.get("budget_epsilon")) or None,
        "pii_counts": {str(k): int(v) for k, v in pii.items() if _finite(v) is not None} if isinstance(pii, Mapping) else {},
        "time": None if entry.get("time") is None else str(entry.get("time")),
        "aggregated": entry.get("aggregated") if isinstance(entry.get("aggregated"), bool) else None,
        "reject_reason": None if entry.get("reject_reason") in (None, "") else str(entry.get("reject_reason")),
        "signed": entry.get("signature") is not None,
    }


def _round_entries(metrics: Mapping) -> list[dict]:
    rounds = metrics.get("rounds")
    if not isinstance(rounds, list):
        raise DataError("metrics.json has no 'rounds' list: not a fedbank metrics file")
    return [r for r in rounds if isinstance(r, Mapping) and isinstance(r.get("round"), int)]


def build_report(run_dir: str | Path) -> dict:
    """Read a run directory into the report document (plain JSON-ready figures).

    Raises:
        ReportError: If ``run_dir`` is not a directory or lacks metrics.json / ledger.jsonl.
        DataError: If metrics.json (or a present audit.json) is not valid JSON of the right shape.
        LedgerError: If the ledger cannot be read at all.
    """
    run_dir = Path(run_dir)
    metrics, ledger_path = _read_run(run_dir)
    config = metrics.get("config") if isinstance(metrics.get("config"), Mapping) else {}
    round_entries = _round_entries(metrics)

    entries, unparsable = _read_ledger_lines(ledger_path)
    verification = _verify(run_dir, ledger_path, config)
    verification["unparsable_lines"] = unparsable
    verification["signed_lines"] = sum(1 for _, e in entries if e.get("signature") is not None)
    # Failure lines (kind 'failure') are the server's record of dropouts; metrics.json lists them per round.
    rows = [_ledger_row(n, e) for n, e in entries if e.get("kind") != "failure"]
    is_client = [r["kind"] == KIND_CLIENT or r["branch"] == SERVER_BRANCH for r in rows]
    record_rows = [r for r, c in zip(rows, is_client) if not c]
    client_rows = [r for r, c in zip(rows, is_client) if c]

    round_list = _rounds(round_entries, rows, record_rows)
    utility_keys = [k for k in ("loss", "accuracy", "macro_f1") if any(k in r for r in round_list)]
    utility_keys += sorted({k for r in round_list for k in r
                            if k not in utility_keys and k not in ("round", "failures", "rejected", "not_trained")})
    branches = _branches(round_entries, record_rows, config)
    pii_types = [t for t in PII_ORDER if any(t in b["pii_counts"] for b in branches)]
    pii_types += sorted({t for b in branches for t in b["pii_counts"]} - set(pii_types))

    run_ids = sorted({r["run_id"] for r in rows if r["run_id"]})
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
        "run_id": str(metrics.get("run_id", run_ids[0] if run_ids else "")),
        "ledger_run_ids": run_ids,
        "summary": _summary(metrics, config, branches, round_list, record_rows, client_rows, verification),
        "branches": branches,
        "pii_types": pii_types,
        "rounds": round_list,
        "utility_keys": utility_keys,
        "ledger": record_rows,
        "client_level": client_rows,
        "verification": verification,
        "consistency": {"metrics_vs_ledger": _mismatches(round_entries, record_rows)},
        "audit": _read_audit(run_dir, branches),
        "protects": {k: {"protects": v[0], "explanation": v[1]} for k, v in PROTECTS.items()},
        "config": {str(k): _scalar(v) for k, v in config.items() if isinstance(v, (str, int, float, bool)) or v is None},
    }


def _read_run(run_dir: Path) -> tuple[Mapping, Path]:
    """``metrics.json`` (parsed) and the ledger's path, or a one-line error naming what is missing."""
    if not run_dir.is_dir():
        raise ReportError(f"run directory {run_dir} does not exist (give the --out of a fedbank run)")
    metrics_path, ledger_path = run_dir / "metrics.json", run_dir / "ledger.jsonl"
    for path in (metrics_path, ledger_path):
        if not path.is_file():
            raise ReportError(f"{run_dir} has no {path.name}: not a fedbank run directory "
                              f"(a run writes metrics.json and ledger.jsonl to its output-dir)")
    metrics = _read_json(metrics_path, "metrics file")
    if not isinstance(metrics, Mapping):
        raise DataError(f"metrics file {metrics_path} is not a JSON object: not a fedbank metrics file")
    return metrics, ledger_path


def _rounds(round_entries: Sequence[Mapping], rows: Sequence[dict], record_rows: Sequence[dict]) -> list[dict]:
    """Per round: utility figures from metrics.json, its failures and rejections, and who did not train."""
    rounds: dict[int, dict] = {}
    for entry in round_entries:
        rnd = {"round": entry["round"]}
        for key, value in entry.items():
            if key not in ROUND_SKIP_KEYS and _finite(value) is not None:
                rnd[key] = _finite(value)
        rnd["failures"] = [{"node": str(f.get("branch") or f.get("node", "")), "reason": str(f.get("reason", ""))}
                           for f in entry.get("failures") or [] if isinstance(f, Mapping)]
        rnd["rejected"] = [{"branch": str(f.get("branch", "")), "reason": str(f.get("reason", "")),
                            "detail": str(f.get("detail") or "")}
                           for f in entry.get("rejected") or [] if isinstance(f, Mapping)]
        rounds[entry["round"]] = rnd
    for r in rows:
        if r["round"] is not None and r["round"] not in rounds:
            rounds[r["round"]] = {"round": r["round"], "failures": [], "rejected": []}
    for r in record_rows:  # a rejection the ledger records but metrics.json does not (e.g. an older writer)
        if r["reject_reason"] and r["round"] in rounds and not any(
                x["branch"] == r["branch"] for x in rounds[r["round"]]["rejected"]):
            rounds[r["round"]]["rejected"].append({"branch": r["branch"], "reason": r["reject_reason"], "detail": ""})
    for rnd in rounds.values():
        rnd["not_trained"] = [{"branch": r["branch"], "status": r["status"], "line": r["line"]}
                              for r in record_rows if r["round"] == rnd["round"] and r["status"] != STATUS_TRAINED]
    return [rounds[k] for k in sorted(rounds)]


def _branches(round_entries: Sequence[Mapping], record_rows: Sequence[dict], config: Mapping) -> list[dict]:
    """Per branch, from its ledger lines: final epsilon against its budget, its state, rounds, PII counts."""
    names = {r["branch"] for r in record_rows}
    for entry in round_entries:
        if isinstance(entry.get("branches"), Mapping):
            names |= {str(b) for b in entry["branches"]}
    branches = []
    for name in sorted(names, key=_natural_key):
        mine = [r for r in record_rows if r["branch"] == name]
        last = mine[-1] if mine else None
        eps = [r["epsilon"] for r in mine if r["epsilon"] is not None]
        budget = next((r["budget_epsilon"] for r in reversed(mine) if r["budget_epsilon"]), None)
        budget = budget if budget is not None else _budget_from_config(config, name)
        final = eps[-1] if eps else None
        used = final / budget if final is not None and budget else None
        refused = [r["round"] for r in mine if r["status"] == STATUS_EXHAUSTED]
        pii_src = next((r for r in reversed(mine) if r["pii_counts"]), None)
        branches.append({
            "branch": name,
            "final_epsilon": final,
            "max_epsilon": max(eps) if eps else None,
            "budget_epsilon": budget,
            "budget_used": used,
            "state": _budget_state(bool(mine), final, used, refused),
            "rounds_trained": sorted(r["round"] for r in mine if r["status"] == STATUS_TRAINED and r["round"] is not None),
            "rounds_refused": refused,
            "last_round": last["round"] if last else None,
            "last_status": last["status"] if last else None,
            "examples": last["examples"] if last else None,
            "ledger_lines": len(mine),
            "pii_counts": dict(pii_src["pii_counts"]) if pii_src else {},
            "pii_round": pii_src["round"] if pii_src else None,
        })
    return branches


def _budget_state(ledgered: bool, final: float | None, used: float | None, refused: Sequence) -> str:
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


def _mismatches(round_entries: Sequence[Mapping], record_rows: Sequence[dict]) -> list[dict]:
    """Where metrics.json and the ledger disagree: a branch-round in one only, or another status or epsilon."""
    by_key = {(r["round"], r["branch"]): r for r in record_rows}
    mismatches = []
    for entry in round_entries:
        for name, fig in (entry.get("branches") or {}).items():
            if not isinstance(fig, Mapping):
                continue
            row = by_key.get((entry["round"], str(name)))
            if row is None:
                mismatches.append({"round": entry["round"], "branch": str(name), "what": "in metrics.json but not in the ledger"})
                continue
            if str(fig.get("status")) != row["status"]:
                mismatches.append({"round": entry["round"], "branch": str(name),
                                   "what": f"status {fig.get('status')} in metrics.json, {row['status']} in the ledger"})
            m_eps = _finite(fig.get("epsilon"))
            if (m_eps is None) != (row["epsilon"] is None) or (
                    m_eps is not None and not math.isclose(m_eps, row["epsilon"], rel_tol=1e-9, abs_tol=1e-12)):
                mismatches.append({"round": entry["round"], "branch": str(name),
                                   "what": f"epsilon {fig.get('epsilon')} in metrics.json, {row['epsilon']} in the ledger"})
    metric_keys = {(e["round"], str(b)) for e in round_entries for b in (e.get("branches") or {})}
    # an update rejected after its claim verified: ledgered (not aggregated), listed under the round's "rejected"
    rejected_keys = {(e["round"], str(x.get("branch"))) for e in round_entries
                     for x in e.get("rejected") or [] if isinstance(x, Mapping)}
    for key, row in by_key.items():
        if key not in metric_keys and not (row["reject_reason"] and key in rejected_keys) and metric_keys:
            mismatches.append({"round": key[0], "branch": key[1], "what": f"ledger line {row['line']} not in metrics.json"})
    return mismatches


def _read_audit(run_dir: Path, branches: Sequence[Mapping]) -> dict | None:
    """The canary audit from ``audit.json`` (None without one; an ``error`` entry if it is unreadable)."""
    audit_path = run_dir / "audit.json"
    if not audit_path.is_file():
        return None
    try:
        raw_audit = _read_json(audit_path, "audit file")
    except DataError as exc:
        return {"error": str(exc)}
    return _audit(raw_audit, branches)


def _summary(metrics: Mapping, config: Mapping, branches: Sequence[Mapping], round_list: Sequence[Mapping],
             record_rows: Sequence[dict], client_rows: Sequence[dict], verification: Mapping) -> dict:
    """The figures a reviewer reads first: DP settings, budget states, the largest epsilon, ledger verdict."""
    accountants = sorted({r["accountant"] for r in record_rows if r["accountant"]})
    dp_enabled = config.get("dp.enabled", True) is not False and metrics.get("accountant") != "none"
    central_mode = str(config.get("central-dp.mode", "off"))
    return {
        "branches": len(branches),
        "rounds_completed": sum(1 for r in round_list if r["round"] > 0),
        "rounds_planned": config.get("num-server-rounds") if isinstance(config.get("num-server-rounds"), int) else None,
        "dp_enabled": dp_enabled,
        "accountant": str(metrics.get("accountant", accountants[0] if accountants else "")),
        "ledger_accountants": accountants,
        "delta": _first_finite(metrics.get("delta") or None, config.get("dp.delta") if dp_enabled else None,
                               *(r["delta"] for r in record_rows)),
        "target_epsilon": _finite(config.get("dp.target-epsilon")),
        "budget_epsilon": _finite(config.get("dp.budget-epsilon")),
        "branch_budgets": str(config.get("dp.branch-budgets", "")),
        "central_dp_mode": central_mode,
        "central_dp_delta": _finite(config.get("central-dp.delta")) if central_mode != "off" else None,
        "near_budget_threshold": NEAR_BUDGET,
        "branches_near_budget": [b["branch"] for b in branches if b["state"] == "near-budget"],
        "branches_exhausted": [b["branch"] for b in branches if b["state"] == "exhausted"],
        "branches_over_budget": [b["branch"] for b in branches if b["state"] == "over-budget"],
        "max_epsilon": max((b["final_epsilon"] for b in branches if b["final_epsilon"] is not None), default=None),
        "client_level_epsilon": next((r["epsilon"] for r in reversed(client_rows) if r["epsilon"] is not None), None),
        "ledger_ok": verification["ok"],
        "failures": sum(len(r["failures"]) for r in round_list),
        "rejected": sum(len(r["rejected"]) for r in round_list),
    }


def _count(x: Any) -> int | float | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else _finite(x)


def _scalar(v: Any) -> Any:
    """A JSON scalar as the report keeps it: NaN and infinities become None (JSON has neither)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _first_finite(*values: Any) -> float | None:
    return next((v for v in map(_finite, values) if v is not None), None)


def _audit(raw: Any, branches: Sequence[Mapping]) -> dict:
    if not isinstance(raw, Mapping):
        return {"error": "audit.json is not a JSON object"}
    exposed_key = next((k for k in ("exposed", "predicted", "planted_predicted") if k in raw), None)
    out = {
        "canaries": _count(raw.get("canaries")),
        "branch": None if raw.get("branch") is None else str(raw.get("branch")),
        "auc": _finite(raw.get("auc")),
        "exposed": _count(raw.get(exposed_key)) if exposed_key else None,
        "held_out_predicted": _count(raw.get("held_out_predicted")),
        "empirical_epsilon_lower_bound": _finite(raw.get("empirical_epsilon_lower_bound")),
        "formal_epsilon": _finite(raw.get("formal_epsilon")),
        "delta": _finite(raw.get("delta")),
        "confidence": _finite(raw.get("confidence")),
    }
    if out["formal_epsilon"] is None and out["branch"]:
        out["formal_epsilon"] = next((b["final_epsilon"] for b in branches if b["branch"] == out["branch"]), None)
    lb, formal = out["empirical_epsilon_lower_bound"], out["formal_epsilon"]
    out["consistent"] = None if lb is None or formal is None else bool(lb <= formal * (1 + 1e-9))
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if key in out or key == exposed_key:
            continue
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for sub, v in items:
            if isinstance(v, (str, int, float, bool)) or v is None:
                extra[str(key) if sub is None else f"{key}.{sub}"] = _scalar(v)
    out["extra"] = extra
    return out


# --------------------------------------------------------------------------- JSON and CSV

CSV_COLUMNS = ("run_id", "round", "branch", "kind", "status", "accountant", "examples", "steps", "sample_rate",
               "noise_multiplier", "max_grad_norm", "clipping_norm", "epsilon", "delta", "budget_epsilon",
               "budget_used")
CSV_ROUND_COLUMNS = ("loss", "accuracy", "macro_f1", "perplexity", "rouge_l")


def _reason(rejection: Mapping) -> str:
    return rejection["reason"] + (f": {rejection['detail']}" if rejection.get("detail") else "")


def render_json(report: Mapping) -> str:
    """The report document as indented JSON."""
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_csv(report: Mapping) -> str:
    """One row per ledger line (a branch in a round; client-level lines as branch '(server)')."""
    pii_types = list(report["pii_types"])
    rounds = {r["round"]: r for r in report["rounds"]}
    header = [*CSV_COLUMNS, *(f"pii_{t}" for t in pii_types), *(f"round_{k}" for k in CSV_ROUND_COLUMNS),
              "aggregated", "rejected_reason", "signed", "ledger_line"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)

    def cell(v: Any) -> Any:
        return "" if v is None else (repr(v) if isinstance(v, float) else v)

    for row in sorted([*report["ledger"], *report["client_level"]],
                      key=lambda r: (r["round"] if r["round"] is not None else -1, r["line"])):
        rnd = rounds.get(row["round"], {})
        used = (row["epsilon"] / row["budget_epsilon"]) if row["epsilon"] is not None and row["budget_epsilon"] else None
        rejected = "; ".join(_reason(x) for x in rnd.get("rejected", []) if x["branch"] == row["branch"])
        values = [report["run_id"] if row["run_id"] is None else row["run_id"], row["round"], row["branch"],
                  row["kind"], row["status"], row["accountant"], row["examples"], row["steps"], row["sample_rate"],
                  row["noise_multiplier"], row["max_grad_norm"], row["clipping_norm"], row["epsilon"], row["delta"],
                  row["budget_epsilon"], used,
                  *(row["pii_counts"].get(t) if row["kind"] != KIND_CLIENT else None for t in pii_types),
                  *(rnd.get(k) for k in CSV_ROUND_COLUMNS),
                  None if row["aggregated"] is None else str(row["aggregated"]).lower(),
                  rejected or None, str(row["signed"]).lower(), row["line"]]
        writer.writerow([cell(v) for v in values])
    return buf.getvalue()


def render_html(report: Mapping) -> str:
    """The report as one self-contained HTML page (:mod:`server.report.html`)."""
    from server.report.html import render_html as _render

    return _render(report)


RENDERERS = {"html": render_html, "json": render_json, "csv": render_csv}


def infer_format(out: str | Path, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format ``out``'s suffix names (``.json``, ``.csv``), else ``html``."""
    if fmt:
        return str(fmt).lower()
    suffix = Path(out).suffix.lstrip(".").lower()
    return suffix if suffix in RENDERERS else "html"


def write_report(run_dir: Path, out: Path, fmt: str = "html") -> Path:
    """Write the compliance report of ``run_dir`` to ``out`` as ``html``, ``json`` or ``csv``.

    Returns:
        ``out`` (written atomically; its directory is created if needed).

    Raises:
        ReportError: On an unknown format, an unusable ``out``, or a run directory
            without metrics.json / ledger.jsonl.
        DataError, LedgerError: If a run file cannot be read or parsed.
    """
    fmt = str(fmt).lower()
    if fmt not in RENDERERS:
        raise ReportError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise ReportError(f"--out {out} is a directory: give a file name, e.g. {out / ('report.' + fmt)}")
    report = build_report(Path(run_dir))
    text = RENDERERS[fmt](report)
    try:
        write_bytes_atomic(out, text.encode("utf-8"))
        os.chmod(out, 0o644)  # a report is meant to be handed on (mkstemp made it 0600)
    except OSError as exc:
        raise ReportError(f"cannot write report {out}: {exc.strerror or exc}") from exc
    return out
