"""Reading a run directory for the report: its files, parsed and checked.

``metrics.json`` and ``ledger.jsonl`` (required) and ``audit.json``
(optional).  The ledger is read line by line into plain rows (one per ledger
line) and verified with :func:`server.records.ledger_proof.prove_ledger`
against the trust anchor the reviewer states (never a key folder found in the
run directory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from common.errors import DataError, LedgerError
from server.records.ledger import SERVER_BRANCH
from server.records.ledger_proof import prove_ledger
from server.report.schema import KIND_CLIENT, KIND_RECORD, PROTECTS, ReportError, finite


def read_json(path: Path, what: str) -> Any:
    """``path`` parsed as JSON, or a one-line :class:`DataError` naming ``what`` it is."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} {path}: {exc.__class__.__name__}: {exc}") from exc
    except ValueError as exc:
        raise DataError(f"{what} {path} is not valid JSON ({exc}); was the run interrupted while writing it?") from exc


def read_run(run_dir: Path) -> tuple[Mapping, Path]:
    """``metrics.json`` (parsed) and the ledger's path, or a one-line error naming what is missing."""
    if not run_dir.is_dir():
        raise ReportError(f"run directory {run_dir} does not exist (give the --out of a fedbank run)")
    metrics_path, ledger_path = run_dir / "metrics.json", run_dir / "ledger.jsonl"
    for path in (metrics_path, ledger_path):
        if not path.is_file():
            raise ReportError(f"{run_dir} has no {path.name}: not a fedbank run directory "
                              f"(a run writes metrics.json and ledger.jsonl to its output-dir)")
    metrics = read_json(metrics_path, "metrics file")
    if not isinstance(metrics, Mapping):
        raise DataError(f"metrics file {metrics_path} is not a JSON object: not a fedbank metrics file")
    return metrics, ledger_path


def round_entries(metrics: Mapping) -> list[dict]:
    """The per-round entries of ``metrics.json`` (those with an integer round)."""
    rounds = metrics.get("rounds")
    if not isinstance(rounds, list):
        raise DataError("metrics.json has no 'rounds' list: not a fedbank metrics file")
    return [r for r in rounds if isinstance(r, Mapping) and isinstance(r.get("round"), int)]


def read_ledger_lines(path: Path) -> tuple[list[tuple[int, dict]], list[int]]:
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


def verify(ledger_path: Path, server_fingerprint: str | None = None, server_key_file: str | None = None) -> dict:
    """What the ledger proves against the anchor the reviewer stated (:func:`prove_ledger`), as report figures."""
    proof = prove_ledger(ledger_path, server_fingerprint=server_fingerprint, server_key_file=server_key_file)
    r = proof.result
    return {
        "ok": proof.verified,
        "status": proof.status,
        "chain_ok": bool(r.ok),
        "entries": r.entries,
        "bad_line": r.bad_line,
        "reason": proof.reason or "OK",
        "head_hash": r.head_hash,
        "anchor": proof.anchor,
        "proven": list(proof.statements),
        "sealed_round": r.sealed_round,
        "signed_lines": r.signed_lines,
    }


def ledger_row(n: int, entry: Mapping) -> dict:
    """Ledger line ``n`` as a report row: every field typed, missing ones None, kind and protects filled in."""
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
        "sample_rate": finite(entry.get("sample_rate")),
        "noise_multiplier": finite(entry.get("noise_multiplier")),
        "max_grad_norm": finite(entry.get("max_grad_norm")),
        "clipping_norm": finite(entry.get("clipping_norm")) if entry.get("clipping_norm") is not None
        else (finite(entry.get("max_grad_norm")) if kind == KIND_CLIENT else None),
        "epsilon": finite(entry.get("epsilon")),
        "delta": finite(entry.get("delta")),
        "budget_epsilon": finite(entry.get("budget_epsilon")) or None,
        "pii_counts": {str(k): int(v) for k, v in pii.items() if finite(v) is not None} if isinstance(pii, Mapping) else {},
        "time": None if entry.get("time") is None else str(entry.get("time")),
        "aggregated": entry.get("aggregated") if isinstance(entry.get("aggregated"), bool) else None,
        "reject_reason": None if entry.get("reject_reason") in (None, "") else str(entry.get("reject_reason")),
        "signed": entry.get("signature") is not None,
        "server_signed": entry.get("server_signature") is not None,
    }


def read_audit(run_dir: Path) -> Any:
    """``audit.json`` parsed, or None without one (a :class:`DataError` if it is unreadable)."""
    audit_path = run_dir / "audit.json"
    return read_json(audit_path, "audit file") if audit_path.is_file() else None


def failure_row(n: int, entry: Mapping) -> dict:
    """A server failure line (``kind: failure``): which branch failed, and the epsilon it may have reached."""
    return {"line": n, "round": entry.get("round") if isinstance(entry.get("round"), int) else None,
            "branch": str(entry.get("failed_branch") or ""), "reason": str(entry.get("reason") or ""),
            "possible_epsilon": finite(entry.get("possible_epsilon"))}
