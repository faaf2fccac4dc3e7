"""The compliance reviewer's report of one run (``fedbank report RUN_DIR``).

:func:`build_report` reads a run directory -- ``metrics.json`` and
``ledger.jsonl`` (required), ``audit.json`` (optional) -- into
one plain document of figures; the renderers (:mod:`server.report.html`,
:mod:`server.report.formats`) print that *same* document three ways, so the
three formats can never disagree; :func:`write_report` does both and writes
the file.

Sources of truth:

* per branch per round privacy figures (status, epsilon, delta, noise,
  clipping, sample rate, steps, budget, PII counts) come from the
  **ledger** -- the tamper-evident record -- and what it proves against the
  trust anchor the reviewer states (:func:`server.records.ledger_proof.prove_ledger`;
  "ledger OK" only when everything is verified, "not verified" in amber with
  the reason otherwise) is part of the report;
* held-out utility, failures and rejected updates per round come from
  ``metrics.json``, which is also cross-checked against the ledger;
* the canary audit (empirical epsilon lower bound) from ``audit.json``.

Every string taken from a file is HTML-escaped; the HTML page is one
self-contained file (inline CSS, plots as base64 PNG, no script, no link).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from common.atomic import write_bytes_atomic
from common.errors import DataError
from common.privacy.measured import measured_recall
from server.records.ledger import FAILURE, HEAD, SERVER_BRANCH
from server.report import figures
from server.report.formats import render_csv, render_json
from server.report.html import render_html
from server.report.run_files import (failure_row, ledger_row, read_audit, read_ledger_lines, read_run,
                                     round_entries, verify)
from server.report.schema import (FORMATS, KIND_CLIENT, PII_ORDER, PROTECTS, REPORT_FORMAT, REPORT_VERSION,
                                  ReportError, scalar)

RENDERERS = {"html": render_html, "json": render_json, "csv": render_csv}


def build_report(run_dir: str | Path, *, server_fingerprint: str | None = None,
                 server_key_file: str | None = None) -> dict:
    """Read a run directory into the report document (plain JSON-ready figures).

    Args:
        run_dir: The run's output directory.
        server_fingerprint, server_key_file: The trust anchor the reviewer
            states (:mod:`server.records.ledger_proof`); without one the
            ledger is shown "not verified".

    Raises:
        ReportError: If ``run_dir`` is not a directory or lacks metrics.json / ledger.jsonl.
        DataError: If metrics.json (or a present audit.json) is not valid JSON of the right shape.
        LedgerError: If the ledger cannot be read at all.
        ConfigError, KeyFileError: A malformed fingerprint or an unreadable key file.
    """
    run_dir = Path(run_dir)
    metrics, ledger_path = read_run(run_dir)
    config = metrics.get("config") if isinstance(metrics.get("config"), Mapping) else {}
    entries_by_round = round_entries(metrics)

    entries, unparsable = read_ledger_lines(ledger_path)
    verification = verify(ledger_path, server_fingerprint, server_key_file)
    verification["unparsable_lines"] = unparsable
    # Failure lines (kind 'failure') are the server's record of dropouts; metrics.json lists them per round.
    failures = [failure_row(n, e) for n, e in entries if e.get("kind") == FAILURE]
    rows = [ledger_row(n, e) for n, e in entries if e.get("kind") not in (FAILURE, HEAD)]
    is_client = [r["kind"] == KIND_CLIENT or r["branch"] == SERVER_BRANCH for r in rows]
    record_rows = [r for r, c in zip(rows, is_client) if not c]
    client_rows = [r for r, c in zip(rows, is_client) if c]

    round_list = figures.rounds(entries_by_round, rows, record_rows)
    branches = figures.branches(entries_by_round, record_rows, config, failures)
    run_ids = sorted({r["run_id"] for r in rows if r["run_id"]})
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
        "run_id": str(metrics.get("run_id", run_ids[0] if run_ids else "")),
        "ledger_run_ids": run_ids,
        "summary": figures.summary(metrics, config, branches, round_list, record_rows, client_rows, verification),
        "branches": branches,
        "pii_types": _pii_types(branches),
        "detector": measured_recall(),
        "rounds": round_list,
        "utility_keys": _utility_keys(round_list),
        "ledger": record_rows,
        "client_level": client_rows,
        "failure_lines": failures,
        "verification": verification,
        "consistency": {"metrics_vs_ledger": figures.mismatches(entries_by_round, record_rows)},
        "audit": _audit(run_dir, branches),
        "protects": {k: {"protects": v[0], "explanation": v[1]} for k, v in PROTECTS.items()},
        "config": {str(k): scalar(v) for k, v in config.items() if isinstance(v, (str, int, float, bool)) or v is None},
    }


def _utility_keys(round_list: Sequence[Mapping]) -> list[str]:
    """loss, accuracy and macro-F1 first (those present), then any other per-round figure in name order."""
    keys = [k for k in ("loss", "accuracy", "macro_f1") if any(k in r for r in round_list)]
    keys += sorted({k for r in round_list for k in r
                    if k not in keys and k not in ("round", "failures", "rejected", "not_trained")})
    return keys


def _pii_types(branches: Sequence[Mapping]) -> list[str]:
    """The PII types any branch counted: the detector's order first, then any other in name order."""
    types = [t for t in PII_ORDER if any(t in b["pii_counts"] for b in branches)]
    types += sorted({t for b in branches for t in b["pii_counts"]} - set(types))
    return types


def _audit(run_dir: Path, branches: Sequence[Mapping]) -> dict | None:
    """The canary audit (None without audit.json; an ``error`` entry if it is unreadable)."""
    try:
        raw = read_audit(run_dir)
    except DataError as exc:
        return {"error": str(exc)}
    return None if raw is None else figures.audit(raw, branches)


def infer_format(out: str | Path, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format ``out``'s suffix names (``.json``, ``.csv``), else ``html``."""
    if fmt:
        return str(fmt).lower()
    suffix = Path(out).suffix.lstrip(".").lower()
    return suffix if suffix in RENDERERS else "html"


def write_report(run_dir: Path, out: Path, fmt: str = "html", *, server_fingerprint: str | None = None,
                 server_key_file: str | None = None) -> Path:
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
    report = build_report(Path(run_dir), server_fingerprint=server_fingerprint, server_key_file=server_key_file)
    text = RENDERERS[fmt](report)
    try:
        write_bytes_atomic(out, text.encode("utf-8"))
        os.chmod(out, 0o644)  # a report is meant to be handed on (mkstemp made it 0600)
    except OSError as exc:
        raise ReportError(f"cannot write report {out}: {exc.strerror or exc}") from exc
    return out
