"""The report holds against a dishonest server or branch (server/report/): each reproduction of the issue.

Ledger OK only when everything is verified against a stated anchor; a cumulative
epsilon that goes down is a red violation; failures leave an epsilon "possibly
spent"; run-file text never runs as a formula or as mathtext; a malformed
ledger line is a red row, not a crash.
"""

from __future__ import annotations

import csv
import io
import json

from server.records.ledger import RESERVED_FIELDS, PrivacyLedger
from server.report.build import build_report, write_report
from tests.report_runs import server_fingerprint, synthetic_run


def _rewrite(run, edit, *, keep=lambda e: True) -> None:
    """Re-chain the ledger through the writer without the server's key (what a party with the files can do)."""
    rows = [json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines()]
    (run / "ledger.jsonl").unlink()
    ledger = PrivacyLedger(run / "ledger.jsonl")
    for row in rows:
        if keep(row):
            ledger.append(edit({k: v for k, v in row.items() if k not in RESERVED_FIELDS}))


def test_stripped_rehashed_ledger_is_never_green(tmp_path):
    run = synthetic_run(tmp_path, signed=True)
    _rewrite(run, lambda e: {**e, "epsilon": 0.5} if e.get("branch") == "branch-1" else e,
             keep=lambda e: e.get("kind") != "head")
    plain = build_report(run)["verification"]
    assert plain["chain_ok"] and plain["status"] == "not-verified" and "not signed" in plain["reason"]
    anchored = build_report(run, server_fingerprint=server_fingerprint(run))
    assert anchored["verification"]["status"] == "failed" and anchored["summary"]["ledger_ok"] is False
    text = write_report(run, tmp_path / "r.html", "html").read_text()
    assert "<b>not verified</b>" in text and 'data-ok="true"' not in text


def test_unsealed_tail_is_amber_with_the_reason(tmp_path):
    run = synthetic_run(tmp_path, signed=True)
    lines = (run / "ledger.jsonl").read_text().splitlines(keepends=True)
    (run / "ledger.jsonl").write_text("".join(lines[:-1]))  # the last round's head cut off
    v = build_report(run, server_fingerprint=server_fingerprint(run))["verification"]
    assert v["status"] == "not-verified" and "after the last signed head" in v["reason"] and not v["ok"]


def test_epsilon_that_goes_down_is_a_violation(tmp_path):
    run = synthetic_run(tmp_path)
    # branch-1 (budget 10 in the synthetic run): 4.0, 7.0, 9.3 -> 4.0, 12.5, 1.0
    _rewrite(run, lambda e: {**e, "epsilon": {2: 12.5, 3: 1.0}.get(e["round"], e["epsilon"])}
             if e.get("branch") == "branch-1" else e)
    report = build_report(run)
    b1 = next(b for b in report["branches"] if b["branch"] == "branch-1")
    assert b1["max_epsilon"] == 12.5 and b1["final_epsilon"] == 1.0 and b1["state"] == "over-budget"
    assert [(d["line"], d["max_line"]) for d in b1["epsilon_decreases"]] == [(10, 6)]
    assert report["summary"]["branches_epsilon_decreased"] == ["branch-1"]
    text = write_report(run, tmp_path / "r.html", "html").read_text()
    assert 'id="epsilon-decreases"' in text and "<b>VIOLATION</b> — a cumulative epsilon went down" in text


def test_failed_branch_shows_epsilon_possibly_spent_until_a_later_claim(tmp_path):
    run = synthetic_run(tmp_path, signed=True)
    from common.keys.layout import KeyLayout, load_ed25519_private

    layout = KeyLayout.from_dir(run / "keys")
    server = load_ed25519_private(layout.server_ed25519_key)
    ledger = PrivacyLedger(run / "ledger.jsonl", signing_key=server)
    ledger.append({"run_id": "777", "round": 4, "branch": "(server)", "kind": "failure", "status": "branch-failed",
                   "failed_branch": "branch-2", "possible_epsilon": 6.4, "reason": "died", "aggregated": False},
                  signer=server.sign)
    b2 = next(b for b in build_report(run)["branches"] if b["branch"] == "branch-2")
    assert b2["max_epsilon"] == 5.0 and b2["possible_epsilon"] == 6.4
    text = write_report(run, tmp_path / "r.html", "html").read_text()
    assert "epsilon possibly spent" in text and "6.400" in text
    key = load_ed25519_private(layout.branch("branch-2").ed25519_key)
    settle = {"run_id": "777", "round": 5, "branch": "branch-2", "status": "trained", "epsilon": 5.9,
              "kind": "record-level", "budget_epsilon": 10.0}
    ledger.append({**settle, "aggregated": True}, signer=key.sign)
    b2 = next(b for b in build_report(run)["branches"] if b["branch"] == "branch-2")
    assert b2["possible_epsilon"] is None and b2["max_epsilon"] == 5.9


def test_not_aggregated_without_a_reason_is_flagged(tmp_path):
    run = synthetic_run(tmp_path)
    _rewrite(run, lambda e: {**e, "aggregated": False} if e.get("branch") == "branch-0" and e["round"] == 1 else e)
    report = build_report(run)
    assert report["summary"]["lines_not_aggregated_without_reason"] == [1]
    text = write_report(run, tmp_path / "r.html", "html").read_text()
    assert "no — the ledger gives no reason" in text and "<b>no</b>: update-norm" in text


def test_formula_cells_are_neutralised_and_mathtext_never_parsed(tmp_path):
    run = synthetic_run(tmp_path)
    _rewrite(run, lambda e: {**e, "branch": "=HYPERLINK(\"http://x\")", "status": "=cmd|' /C calc'!A0",
                             "pii_counts": {"$\\frac{$": 3, "@SUM(1)": 2}} if e.get("branch") == "branch-0" else e)
    text = write_report(run, tmp_path / "r.html", "html").read_text()  # no mathtext crash
    assert "$\\frac{$" in text
    rows = list(csv.reader(io.StringIO(write_report(run, tmp_path / "r.csv", "csv").read_text())))
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
    assert "'=HYPERLINK(\"http://x\")" in cells and "'=cmd|' /C calc'!A0" in cells
    assert "pii_@SUM(1)" in rows[0]  # a header starts with pii_: never a formula


def test_malformed_ledger_line_is_a_red_row(tmp_path):
    run = synthetic_run(tmp_path)
    lines = (run / "ledger.jsonl").read_text().splitlines(keepends=True)
    lines[4] = "[1, 2]\n"
    lines[6] = "{not json\n"
    (run / "ledger.jsonl").write_text("".join(lines))
    report = build_report(run)
    assert report["verification"]["status"] == "failed" and report["verification"]["unparsable_lines"] == [5, 7]
    text = write_report(run, tmp_path / "r.html", "html").read_text()
    assert '<tr class="bad"><td colspan=' in text and "ledger line 5: not a JSON object" in text


def test_report_states_the_detectors_measured_recall_beside_the_counts(tmp_path):
    """Residual risk: the reviewer sees the detector version and its measured recall per type, not a count alone."""
    from common.privacy.measured import measured_recall

    run = synthetic_run(tmp_path)
    report = build_report(run)
    measured = measured_recall()
    assert measured is not None and report["detector"]["detector_version"] == measured["detector_version"]
    write_report(run, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "measured recall" in page and f"detector {measured['detector_version']}" in page
    masked = sum(sum(b["pii_counts"].values()) for b in report["branches"])
    assert f"Masked {masked:,}" in page or f"Masked {masked}" in page
