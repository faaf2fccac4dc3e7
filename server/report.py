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
  (:func:`server.ledger.verify_ledger`, with the branches' Ed25519 verify keys
  when ``RUN_DIR/keys`` exists) is part of the report;
* held-out utility, failures and rejected updates per round come from
  ``metrics.json``, which is also cross-checked against the ledger;
* the canary audit (empirical epsilon lower bound) from ``audit.json``.

Every string taken from a file is HTML-escaped; the HTML page is one
self-contained file (inline CSS, plots as base64 PNG, no script, no link).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from common.atomic import write_bytes_atomic
from common.errors import DataError, FedbankError, LedgerError

FORMATS = ("html", "json", "csv")
REPORT_FORMAT = "fedbank-report"
REPORT_VERSION = 1
NEAR_BUDGET = 0.9  # a branch at or above this share of its budget is highlighted
OVER_TOLERANCE = 1e-6  # epsilon above budget x (1 + this) means the budget gate did not hold
SERVER_BRANCH = "(server)"
KIND_RECORD = "record-level"
KIND_CLIENT = "client-level"
STATUS_TRAINED = "trained"
STATUS_EXHAUSTED = "budget-exhausted"
PII_ORDER = ("ID_CARD", "PHONE", "BANK_CARD", "EMAIL", "NAME", "ADDRESS")  # common.pii.PII_TYPES
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
    from server.ledger import verify_ledger

    keys_dir = _keys_dir(run_dir, config)
    verify_keys, keys_note, keys_ok = None, "no keys/ directory: signatures (if any) were not checked", True
    if keys_dir is not None:
        try:
            from common.keys import KeyLayout, load_branch_verify_keys, load_ed25519_public

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

    # ------------------------------------------------------------- per round
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
    round_list = [rounds[k] for k in sorted(rounds)]
    utility_keys = [k for k in ("loss", "accuracy", "macro_f1") if any(k in r for r in round_list)]
    utility_keys += sorted({k for r in round_list for k in r
                            if k not in utility_keys and k not in ("round", "failures", "rejected", "not_trained")})

    # ------------------------------------------------------------- per branch
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
        if final is None:
            state = "no-dp" if mine else "no-ledger"
        elif used is not None and used > 1 + OVER_TOLERANCE:
            state = "over-budget"
        elif refused or (used is not None and used >= 1 - 1e-9):
            state = "exhausted"
        elif used is not None and used >= NEAR_BUDGET:
            state = "near-budget"
        else:
            state = "ok"
        pii_src = next((r for r in reversed(mine) if r["pii_counts"]), None)
        branches.append({
            "branch": name,
            "final_epsilon": final,
            "max_epsilon": max(eps) if eps else None,
            "budget_epsilon": budget,
            "budget_used": used,
            "state": state,
            "rounds_trained": sorted(r["round"] for r in mine if r["status"] == STATUS_TRAINED and r["round"] is not None),
            "rounds_refused": refused,
            "last_round": last["round"] if last else None,
            "last_status": last["status"] if last else None,
            "examples": last["examples"] if last else None,
            "ledger_lines": len(mine),
            "pii_counts": dict(pii_src["pii_counts"]) if pii_src else {},
            "pii_round": pii_src["round"] if pii_src else None,
        })
    pii_types = [t for t in PII_ORDER if any(t in b["pii_counts"] for b in branches)]
    pii_types += sorted({t for b in branches for t in b["pii_counts"]} - set(pii_types))

    # ------------------------------------------------------------- metrics.json vs ledger
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
    for key, row in by_key.items():
        if key not in metric_keys and metric_keys:
            mismatches.append({"round": key[0], "branch": key[1], "what": f"ledger line {row['line']} not in metrics.json"})

    # ------------------------------------------------------------- audit
    audit = None
    audit_path = run_dir / "audit.json"
    if audit_path.is_file():
        try:
            raw_audit = _read_json(audit_path, "audit file")
        except DataError as exc:
            audit = {"error": str(exc)}
        else:
            audit = _audit(raw_audit, branches)

    run_ids = sorted({r["run_id"] for r in rows if r["run_id"]})
    accountants = sorted({r["accountant"] for r in record_rows if r["accountant"]})
    dp_enabled = config.get("dp.enabled", True) is not False and metrics.get("accountant") != "none"
    central_mode = str(config.get("central-dp.mode", "off"))
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
        "run_id": str(metrics.get("run_id", run_ids[0] if run_ids else "")),
        "ledger_run_ids": run_ids,
        "summary": {
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
        },
        "branches": branches,
        "pii_types": pii_types,
        "rounds": round_list,
        "utility_keys": utility_keys,
        "ledger": record_rows,
        "client_level": client_rows,
        "verification": verification,
        "consistency": {"metrics_vs_ledger": mismatches},
        "audit": audit,
        "protects": {k: {"protects": v[0], "explanation": v[1]} for k, v in PROTECTS.items()},
        "config": {str(k): _scalar(v) for k, v in config.items() if isinstance(v, (str, int, float, bool)) or v is None},
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
CSV_ROUND_COLUMNS = ("loss", "accuracy", "macro_f1")


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


# --------------------------------------------------------------------------- HTML

CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",Helvetica,Arial,sans-serif;
 color:#1d232b;background:#f4f6f9;margin:0;line-height:1.45;font-size:15px}
main{max-width:1140px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:5px;border-bottom:2px solid #dde3ea}
h3{font-size:16px;margin:20px 0 6px}
.meta{color:#5a6573;font-size:13px;margin:0 0 16px}
.meta code{font-size:12px}
nav{font-size:13px;margin:10px 0 6px}
nav a{color:#1f5fa8;margin-right:12px;text-decoration:none}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;min-width:150px;background:#fafbfc}
.card .k{font-size:12px;color:#5a6573;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600}
.card.bad{border-color:#d33;background:#fdecec}
.card.good{border-color:#2a8a4a;background:#ebf7ef}
.card.warn{border-color:#d9a400;background:#fff7dc}
table{border-collapse:collapse;width:100%;margin:8px 0 14px;font-size:13.5px}
th,td{border:1px solid #dde3ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafbfc}
tr.near td{background:#fff4cc}
tr.exhausted td{background:#fde0e0}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;white-space:nowrap}
.b-ok{background:#dcf1e3;color:#1c6b38}
.b-near{background:#ffe08a;color:#6b4f00}
.b-exhausted{background:#e0393e;color:#fff}
.b-over{background:#7a0010;color:#fff}
.b-none{background:#e4e7eb;color:#3b4450}
.verdict{border-radius:8px;padding:12px 16px;margin:10px 0;font-size:15px}
.verdict.ok{background:#ebf7ef;border:1px solid #2a8a4a}
.verdict.fail{background:#fdecec;border:1px solid #d33}
.verdict.warn{background:#fff7dc;border:1px solid #d9a400}
.verdict b{font-size:17px}
.plot{margin:8px 0 4px;text-align:center}
.plot img{max-width:100%;height:auto;border:1px solid #eef2f6}
.note{color:#5a6573;font-size:13px}
.bar{display:inline-block;height:9px;border-radius:4px;background:#2a8a4a;vertical-align:middle;margin-right:6px}
.bar.near{background:#d9a400}.bar.exhausted{background:#d33}
.explain{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.explain>div{border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;background:#fafbfc;font-size:14px}
.explain .p{font-weight:600;color:#1f5fa8;margin-bottom:4px}
table.compact{width:auto;min-width:55%}
code{background:#eef2f6;padding:1px 4px;border-radius:3px}
.nw,td.n{white-space:nowrap}
.dense table{font-size:12.5px}
.dense th,.dense td{padding:4px 6px}
details summary{cursor:pointer;color:#1f5fa8;font-size:13px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _fmt(x: Any, spec: str = ".4g", none: str = "—") -> str:
    if x is None:
        return none
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return format(x, spec)
    return _e(x)


def _eps(x: float | None, none: str = "none (no DP)") -> str:
    return none if x is None else f"{x:.3f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (),
           row_classes: Sequence[str] | None = None, attrs: Sequence[str] | None = None, compact: bool = False) -> str:
    """A table; cells are already-escaped HTML."""
    head = "".join(f'<th class="n">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = []
    for j, row in enumerate(rows):
        cls = f' class="{row_classes[j]}"' if row_classes and row_classes[j] else ""
        extra = f" {attrs[j]}" if attrs and attrs[j] else ""
        cells = "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{cls}{extra}>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="note">none</td></tr>')
    cls = ' class="compact"' if compact else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(b64: str | None, alt: str) -> str:
    if not b64:
        return f'<p class="note">({_e(alt)}: nothing to plot)</p>'
    return f'<div class="plot"><img alt="{_e(alt)}" src="data:image/png;base64,{b64}"></div>'


STATE_BADGE = {
    "ok": ("b-ok", "within budget"),
    "near-budget": ("b-near", "≥ 90 % of budget"),
    "exhausted": ("b-exhausted", "budget exhausted"),
    "over-budget": ("b-over", "OVER BUDGET"),
    "no-dp": ("b-none", "no DP: no guarantee"),
    "no-ledger": ("b-none", "no ledger line"),
}


def _ranges(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 5, 7, 8]`` -> ``"1–3, 5, 7–8"``."""
    out: list[list[int]] = []
    for n in sorted(set(numbers)):
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in out)


def _badge(state: str) -> str:
    cls, text = STATE_BADGE.get(state, ("b-none", state))
    return f'<span class="badge {cls}">{_e(text)}</span>'


def _row_class(state: str) -> str:
    return {"near-budget": "near", "exhausted": "exhausted", "over-budget": "exhausted"}.get(state, "")


def _section_summary(rep: Mapping) -> str:
    s, v = rep["summary"], rep["verification"]
    planned = f" of {s['rounds_planned']}" if s["rounds_planned"] is not None else ""
    flagged = len(s["branches_near_budget"]) + len(s["branches_exhausted"])
    cards = [
        ("", "branches", str(s["branches"])),
        ("", "rounds", f"{s['rounds_completed']}{planned}"),
        ("", "accountant", _e(s["accountant"] or "—")),
        ("", "delta", _fmt(s["delta"], ".3g")),
        ("" if s["max_epsilon"] is not None else "warn", "largest branch epsilon", _eps(s["max_epsilon"])),
        ("warn" if flagged else "good", "branches ≥ 90 % / exhausted",
         f"{len(s['branches_near_budget'])} / {len(s['branches_exhausted'])}"),
        ("good" if v["ok"] else "bad", "ledger", "OK" if v["ok"] else "FAIL"),
        *([("bad", "branches over budget", str(len(s["branches_over_budget"])))] if s["branches_over_budget"] else []),
        ("bad" if s["failures"] + s["rejected"] else "", "failures / rejected", f"{s['failures']} / {s['rejected']}"),
    ]
    if s["client_level_epsilon"] is not None:
        cards.insert(5, ("", "client-level epsilon", _eps(s["client_level_epsilon"])))
    audit = rep.get("audit") or {}
    if audit.get("empirical_epsilon_lower_bound") is not None:
        cards.insert(5, ("bad" if audit.get("consistent") is False else "", "audit: empirical epsilon ≥",
                         _fmt(audit["empirical_epsilon_lower_bound"], ".3f")))
    html_cards = "".join(f'<div class="card {c}"><div class="k">{_e(k)}</div><div class="v">{val}</div></div>'
                         for c, k, val in cards)
    budget_text = "per branch (below)"
    if s["branch_budgets"]:
        budget_text = f"dp.branch-budgets = <code>{_e(s['branch_budgets'])}</code>"
    elif s["budget_epsilon"]:
        budget_text = f"dp.budget-epsilon = {_fmt(s['budget_epsilon'], 'g')}"
    elif s["target_epsilon"]:
        budget_text = f"dp.target-epsilon = {_fmt(s['target_epsilon'], 'g')} (no separate budget set)"
    central = _e(s["central_dp_mode"])
    if s["central_dp_mode"] != "off":
        central += f" (client-level delta {_fmt(s['central_dp_delta'], '.3g')})"
    facts = (f'<p class="note">Record-level DP: {"on" if s["dp_enabled"] else "<b>off</b> (no guarantee)"}; '
             f"budget: {budget_text}; central (client-level) DP: {central}. "
             f"Rows at or above {NEAR_BUDGET:.0%} of their budget are highlighted "
             f"{_badge('near-budget')}, exhausted ones {_badge('exhausted')}; a branch whose epsilon is above "
             f"its budget {_badge('over-budget')} means the budget gate did not hold.</p>")

    audit_by_branch = {audit.get("branch"): audit} if audit.get("branch") else {}
    rows, classes, attrs = [], [], []
    for b in rep["branches"]:
        used = b["budget_used"]
        width = 0 if used is None else max(2, min(100, round(100 * used)))
        bar = f'<span class="bar {_row_class(b["state"])}" style="width:{width}px"></span>' if used is not None else ""
        emp = ""
        if b["branch"] in audit_by_branch and audit_by_branch[b["branch"]].get("empirical_epsilon_lower_bound") is not None:
            emp = f'<br><span class="note">audit lower bound {_fmt(audit_by_branch[b["branch"]]["empirical_epsilon_lower_bound"], ".3f")}</span>'
        rows.append([
            f"<b class=\"nw\">{_e(b['branch'])}</b>",
            _eps(b["final_epsilon"]) + emp,
            _fmt(b["budget_epsilon"], "g"),
            bar + _pct(used),
            _badge(b["state"]),
            _e(_ranges(b["rounds_trained"]) or "none"),
            _e(_ranges(b["rounds_refused"]) or "none"),
            _fmt(b["examples"]),
        ])
        classes.append(_row_class(b["state"]))
        attrs.append(f'data-branch="{_e(b["branch"])}" data-state="{_e(b["state"])}" '
                     f'data-epsilon="{_e(repr(b["final_epsilon"]))}" data-budget="{_e(repr(b["budget_epsilon"]))}"')
    table = _table(["branch", "epsilon spent (record-level)", "budget", "budget used", "state", "rounds trained",
                    "rounds refused", "examples"], rows, numeric=(1, 2, 3, 7), row_classes=classes, attrs=attrs)
    return (f'<h2 id="summary">1. Summary</h2><div class="cards">{html_cards}</div>{facts}'
            f'<h3>Privacy spent per branch (from the ledger; cumulative over all rounds)</h3>'
            f'<div id="branch-summary">{table}</div>')


def _section_epsilon(rep: Mapping, plot: str | None) -> str:
    return (f'<h2 id="epsilon">2. Epsilon over the rounds</h2>'
            f'<p class="note">Each branch\'s cumulative record-level epsilon after each round, as written in the ledger; '
            f'dashed lines are the budgets (the dotted line marks {NEAR_BUDGET:.0%} of a shared budget). '
            f'A cross marks a round the branch refused to train.</p>{_img(plot, "epsilon per branch over rounds")}')


def _in_model(row: Mapping) -> str:
    if row["reject_reason"]:
        return f'<b>no</b>: {_e(row["reject_reason"])}'
    if row["aggregated"] is None:
        return "—"
    return "yes" if row["aggregated"] else "no"


def _columns(spec: Sequence[tuple[str, bool, Any]], rows: Sequence[Mapping]) -> tuple[list[str], tuple[int, ...], list[list[str]]]:
    """Headers, numeric column indices and cells of a table from (header, numeric, cell(row)) columns."""
    headers = [h for h, _, _ in spec]
    numeric = tuple(i for i, (_, num, _) in enumerate(spec) if num)
    return headers, numeric, [[cell(r) for _, _, cell in spec] for r in rows]


def _used(r: Mapping) -> float | None:
    return r["epsilon"] / r["budget_epsilon"] if r["epsilon"] is not None and r["budget_epsilon"] else None


def _section_dp(rep: Mapping) -> str:
    ledger = sorted(rep["ledger"], key=lambda x: (x["round"] if x["round"] is not None else -1, _natural_key(x["branch"])))
    spec: list[tuple[str, bool, Any]] = [
        ("round", True, lambda r: _fmt(r["round"])),
        ("branch", False, lambda r: f'<span class="nw">{_e(r["branch"])}</span>'),
        ("status", False, lambda r: _e(r["status"])),
        ("examples", True, lambda r: _fmt(r["examples"])),
        ("steps", True, lambda r: _fmt(r["steps"])),
        ("sample rate q", True, lambda r: _fmt(r["sample_rate"])),
        ("noise σ", True, lambda r: _fmt(r["noise_multiplier"])),
        ("clip C", True, lambda r: _fmt(r["max_grad_norm"])),
        ("epsilon (cum.)", True, lambda r: f'<b>{_eps(r["epsilon"], "null")}</b>'),
        ("delta", True, lambda r: _fmt(r["delta"], ".3g")),
        ("budget", True, lambda r: _fmt(r["budget_epsilon"], "g")),
        ("used", True, lambda r: _pct(_used(r))),
    ]
    if len({r["accountant"] for r in ledger}) > 1:
        spec.append(("accountant", False, lambda r: _e(r["accountant"] or "—")))
    if any(r["aggregated"] is not None or r["reject_reason"] for r in ledger):
        spec.append(("aggregated", False, _in_model))
    if any(r["signed"] for r in ledger):
        spec.append(("signed", False, lambda r: "yes" if r["signed"] else "no"))
    spec.append(("ledger line", True, lambda r: _fmt(r["line"])))
    headers, numeric, rows = _columns(spec, ledger)
    classes = [_row_class("exhausted" if r["status"] == STATUS_EXHAUSTED or (_used(r) or 0) >= 1 - 1e-9
                          else "near-budget" if (_used(r) or 0) >= NEAR_BUDGET else "") for r in ledger]
    table = _table(headers, rows, numeric=numeric, row_classes=classes)
    accountants = ", ".join(sorted({str(r["accountant"]) for r in ledger if r["accountant"]})) or "—"
    out = (f'<h2 id="dp">3. DP parameters per branch per round (record-level, DP-SGD)</h2>'
           f'<p class="note">Protects: <b>one customer record within a branch</b>. Poisson sample rate q, '
           f'noise multiplier σ and per-sample clipping norm C are what the branch trained with; '
           f'epsilon is cumulative over the run at the delta shown (accountant: {_e(accountants)}).</p>'
           f'<div class="dense">{table}</div>')
    if rep["client_level"]:
        crow = [[_fmt(r["round"]), _e(r["branch"]), _e(r["status"] or "—"), _fmt(r["examples"]),
                 _fmt(r["noise_multiplier"]), _fmt(r["clipping_norm"]), _eps(r["epsilon"], "null"),
                 _fmt(r["delta"], ".3g"), _e(r["accountant"] or "—"), "yes" if r["signed"] else "no",
                 _fmt(r["line"])] for r in rep["client_level"]]
        out += ('<h3>Client-level (central) DP per round</h3>'
                '<p class="note">Protects: <b>a whole branch\'s contribution</b>. The server clips each branch\'s '
                'update to the clipping norm and adds Gaussian noise (σ x clipping norm) to their aggregate; '
                'epsilon is cumulative over the releases.</p>'
                + _table(["round", "written by", "status", "branches in release", "noise σ", "clipping norm",
                          "epsilon (cum.)", "delta", "accountant", "signed", "ledger line"], crow,
                         numeric=(0, 3, 4, 5, 6, 7, 10)))
    return out


def _section_pii(rep: Mapping, plot: str | None) -> str:
    types = rep["pii_types"]
    rows = [[f"<b>{_e(b['branch'])}</b>", _fmt(b["pii_round"]), *(_fmt(b["pii_counts"].get(t, 0)) for t in types),
             _fmt(sum(b["pii_counts"].values()))] for b in rep["branches"]]
    totals = ["<b>all branches</b>", "", *(_fmt(sum(b["pii_counts"].get(t, 0) for b in rep["branches"])) for t in types),
              _fmt(sum(sum(b["pii_counts"].values()) for b in rep["branches"]))]
    table = _table(["branch", "round", *(_e(t) for t in types), "total"], [*rows, totals],
                   numeric=tuple(range(1, len(types) + 3)))
    return (f'<h2 id="pii">4. Desensitization: PII values masked per type</h2>'
            f'<p class="note">Values each branch replaced by typed placeholders (<code>[ID_CARD]</code>, '
            f'<code>[PHONE]</code>, ...) before tokenizing, as reported in its latest ledger line (a branch '
            f'desensitizes its whole training set every round). Rule-based detection: see the README for its '
            f'measured recall and known misses.</p>{table}{_img(plot, "PII values masked per branch")}')


def _section_verification(rep: Mapping) -> str:
    v = rep["verification"]
    if v["ok"]:
        verdict = (f'<div class="verdict ok" id="ledger-verdict" data-ok="true"><b>OK</b> — {v["entries"]} ledger '
                   f'lines, hash chain intact (head <code>{_e(v["head_hash"][:16])}</code>).</div>')
    else:
        where = f"first bad line: <b>{v['bad_line']}</b> — " if v["bad_line"] else ""
        verdict = (f'<div class="verdict fail" id="ledger-verdict" data-ok="false" data-bad-line="{_e(v["bad_line"])}">'
                   f'<b>FAIL</b> — {where}{_e(v["reason"])}.<br>The figures below line {_e(v["bad_line"] or "?")} '
                   f'of the ledger cannot be trusted.</div>')
    notes = [f"Signed lines: {v['signed_lines']} of {v['entries']}; {_e(v['keys'])}."]
    if v["unparsable_lines"]:
        notes.append(f"Lines that are not JSON and were left out of this report: {_e(v['unparsable_lines'])}.")
    notes.append("A verified chain cannot show lines cut off the end: compare the head hash with the one "
                 "recorded when the run ended.")
    mism = rep["consistency"]["metrics_vs_ledger"]
    cons = ('<div class="verdict ok">metrics.json agrees with the ledger (status and epsilon of every branch in '
            'every round).</div>') if not mism else (
        f'<div class="verdict warn"><b>{len(mism)} disagreement(s)</b> between metrics.json and the ledger '
        f'(the ledger is the record):</div>'
        + _table(["round", "branch", "what"], [[_fmt(m["round"]), _e(m["branch"]), _e(m["what"])] for m in mism]))
    return (f'<h2 id="ledger">5. Ledger verification</h2>{verdict}'
            f'<p class="note">{" ".join(notes)}</p><h3>metrics.json vs ledger</h3>{cons}')


def _section_utility(rep: Mapping, plot: str | None) -> str:
    keys = rep["utility_keys"]
    rows = [[_fmt(r["round"]), *(_fmt(r.get(k)) for k in keys)] for r in rep["rounds"]]
    table = _table(["round", *(_e(k) for k in keys)], rows, numeric=tuple(range(len(keys) + 1)), compact=True)
    return (f'<h2 id="utility">6. Model utility per round (server held-out set)</h2>'
            f'<p class="note">Round 0 is the initial model before any training.</p>'
            f'{_img(plot, "held-out utility per round")}{table}')


def _section_failures(rep: Mapping) -> str:
    rows = []
    for r in rep["rounds"]:
        rows += [[_fmt(r["round"]), "node failed", f"node {_e(f['node'])}", _e(f["reason"])] for f in r["failures"]]
        rows += [[_fmt(r["round"]), "update rejected", _e(f["branch"]), _e(_reason(f))] for f in r["rejected"]]
        rows += [[_fmt(r["round"]), "did not train", _e(f["branch"]), _e(f["status"]) + f" (ledger line {f['line']})"]
                 for f in r["not_trained"]]
    per_round = [[_fmt(r["round"]), _fmt(len(r["failures"])), _fmt(len(r["rejected"])), _fmt(len(r["not_trained"]))]
                 for r in rep["rounds"] if r["round"] > 0]
    details = ('<div class="verdict ok">No node failed, no update was rejected and every branch trained in every '
               'round it was asked to.</div>') if not rows else (
        "<h3>Details</h3>" + _table(["round", "event", "who", "reason"], rows, numeric=(0,)))
    return (f'<h2 id="failures">7. Failures, rejected updates and refusals per round</h2>'
            + _table(["round", "node failures", "updates rejected", "branches that did not train"], per_round,
                     numeric=(0, 1, 2, 3), compact=True) + details)


def _section_audit(rep: Mapping) -> str:
    a = rep.get("audit")
    if a is None:
        return ""
    if "error" in a:
        return (f'<h2 id="audit">8. Empirical privacy audit (canaries)</h2>'
                f'<div class="verdict warn">audit.json is present but unusable: {_e(a["error"])}</div>')
    if a["consistent"] is None:
        verdict = ('<div class="verdict warn">Nothing to compare: '
                   + ("the run has no formal epsilon (no DP)." if a["formal_epsilon"] is None
                      else "the audit gives no lower bound.") + "</div>")
    elif a["consistent"]:
        verdict = (f'<div class="verdict ok">Consistent: the empirical lower bound '
                   f'{_fmt(a["empirical_epsilon_lower_bound"], ".3f")} is at or below the formal epsilon '
                   f'{_fmt(a["formal_epsilon"], ".3f")}.</div>')
    else:
        verdict = (f'<div class="verdict fail"><b>VIOLATION</b> — the empirical lower bound '
                   f'{_fmt(a["empirical_epsilon_lower_bound"], ".3f")} exceeds the formal epsilon '
                   f'{_fmt(a["formal_epsilon"], ".3f")}: the DP implementation or its accounting is broken.</div>')
    spec: list[tuple[str, bool, Any]] = [
        ("canaries", True, lambda a: _fmt(a["canaries"])),
        ("branch", False, lambda a: _e(a["branch"] or "—")),
        ("membership AUC", True, lambda a: _fmt(a["auc"], ".3f")),
        ("canaries exposed", True, lambda a: _fmt(a["exposed"])),
    ]
    if a["held_out_predicted"] is not None:
        spec.append(("never-seen predicted", True, lambda a: _fmt(a["held_out_predicted"])))
    if a["confidence"] is not None:
        spec.append(("confidence", True, lambda a: _fmt(a["confidence"], "g")))
    spec += [
        ("empirical epsilon (lower bound)", True, lambda a: f'<b>{_fmt(a["empirical_epsilon_lower_bound"], ".3f")}</b>'),
        ("formal epsilon", True, lambda a: f'<b>{_fmt(a["formal_epsilon"], ".3f")}</b>'),
        ("delta", True, lambda a: _fmt(a["delta"], ".3g")),
    ]
    headers, numeric, rows = _columns(spec, [a])
    extra = ""
    if a["extra"]:
        extra = "<details><summary>other audit fields</summary>" + _table(
            ["field", "value"], [[_e(k), _e(v)] for k, v in sorted(a["extra"].items())], compact=True) + "</details>"
    return (f'<h2 id="audit">8. Empirical privacy audit (canaries)</h2>{verdict}'
            + _table(headers, rows, numeric=numeric) + extra)


def _section_protects(rep: Mapping) -> str:
    items = []
    for key in (KIND_RECORD, KIND_CLIENT, "empirical", "none"):
        p = rep["protects"][key]
        items.append(f'<div><div class="p">{_e(key)}: protects {_e(p["protects"])}</div>{_e(p["explanation"])}</div>')
    n = 9 if rep.get("audit") is not None else 8
    return (f'<h2 id="protects">{n}. What each epsilon protects</h2><div class="explain">{"".join(items)}</div>'
            f'<p class="note">Smaller epsilon = stronger protection; delta is the small probability that the '
            f'epsilon bound does not hold and should be well below 1 / (number of records).</p>')


def render_html(report: Mapping) -> str:
    """The report as one self-contained HTML page (inline CSS and base64 PNG plots)."""
    from server import report_plots as plots

    rounds = sorted({r["round"] for r in report["rounds"] if r["round"] > 0} | {r["round"] for r in report["ledger"] if r["round"] is not None})
    eps_png = plots.epsilon_plot(report["branches"], report["ledger"], rounds)
    util_png = plots.utility_plot(report["rounds"])
    pii_png = plots.pii_plot(report["branches"], report["pii_types"])
    s = report["summary"]
    title = f"fedbank privacy report — run {report['run_id']}"
    nav_items = [("summary", "Summary"), ("epsilon", "Epsilon"), ("dp", "DP parameters"), ("pii", "Desensitization"),
                 ("ledger", "Ledger"), ("utility", "Utility"), ("failures", "Failures")]
    if report.get("audit") is not None:
        nav_items.append(("audit", "Audit"))
    nav_items.append(("protects", "What epsilon protects"))
    nav = "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in nav_items)
    runs = ""
    if len(report["ledger_run_ids"]) > 1:
        runs = f" — the ledger holds lines of {len(report['ledger_run_ids'])} runs: {_e(', '.join(report['ledger_run_ids']))}"
    body = "".join([
        f"<h1>Privacy report — run <code>{_e(report['run_id'])}</code></h1>",
        f'<p class="meta">Run directory <code>{_e(report["run_dir"])}</code> · generated {_e(report["generated"])} · '
        f'{s["branches"]} branches · ledger {"OK" if s["ledger_ok"] else "FAIL"}{runs}</p>',
        f"<nav>{nav}</nav>",
        _section_summary(report),
        _section_epsilon(report, eps_png),
        _section_dp(report),
        _section_pii(report, pii_png),
        _section_verification(report),
        _section_utility(report, util_png),
        _section_failures(report),
        _section_audit(report),
        _section_protects(report),
    ])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


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
