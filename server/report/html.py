"""The HTML page of the compliance reviewer's report: one self-contained file.

Renders the document :func:`server.report.build.build_report` makes -- summary,
epsilon plots with budget lines, DP parameters, PII counts, ledger check,
utility, failures and rejections, the canary audit -- with inline CSS and the
plots as base64 PNG (no script, no link).  Every string taken from a file is
HTML-escaped here.
"""

from __future__ import annotations

from typing import Any, Mapping

from server.report.markup import (CSS, badge, columns, eps, esc, fmt, html_table, pct, plot_img, ranges,
                                  row_class)
from server.report.figures import unexplained
from server.report.schema import (KIND_CLIENT, KIND_RECORD, NEAR_BUDGET, STATUS_EXHAUSTED, STATUS_TRAINED,
                                  budget_used, natural_key, rejection_text)


#: A ledger status as a card's class and text (server.records.ledger_proof's statuses).
LEDGER_CARD = {"verified": ("good", "OK"), "not-verified": ("warn", "not verified"), "failed": ("bad", "FAIL")}


def _decreases(rep: Mapping) -> str:
    """A red verdict naming every claim below a branch's earlier claim (epsilon is cumulative)."""
    rows = [[esc(b["branch"]), fmt(d["line"]), eps(d["epsilon"]), fmt(d["max_line"]), eps(d["max_epsilon"])]
            for b in rep["branches"] for d in b["epsilon_decreases"]]
    if not rows:
        return ""
    return ('<div class="verdict fail" id="epsilon-decreases"><b>VIOLATION</b> — a cumulative epsilon went down: '
            'the budget state uses the largest epsilon each branch claimed.</div>'
            + html_table(["branch", "ledger line", "epsilon claimed", "after line", "which claimed"], rows,
                         numeric=(1, 2, 3, 4), row_classes=["bad"] * len(rows)))


def _section_summary(rep: Mapping) -> str:
    s, v = rep["summary"], rep["verification"]
    planned = f" of {s['rounds_planned']}" if s["rounds_planned"] is not None else ""
    flagged = len(s["branches_near_budget"]) + len(s["branches_exhausted"])
    cards = [
        ("", "branches", str(s["branches"])),
        ("", "rounds", f"{s['rounds_completed']}{planned}"),
        ("", "accountant", esc(s["accountant"] or "—")),
        ("", "delta", fmt(s["delta"], ".3g")),
        ("" if s["max_epsilon"] is not None else "warn", "largest branch epsilon", eps(s["max_epsilon"])),
        ("warn" if flagged else "good", "branches ≥ 90 % / exhausted",
         f"{len(s['branches_near_budget'])} / {len(s['branches_exhausted'])}"),
        (*LEDGER_CARD[v["status"]][:1], "ledger", LEDGER_CARD[v["status"]][1]),
        *([("bad", "branches over budget", str(len(s["branches_over_budget"])))] if s["branches_over_budget"] else []),
        ("bad" if s["failures"] + s["rejected"] else "", "failures / rejected", f"{s['failures']} / {s['rejected']}"),
    ]
    if s["client_level_epsilon"] is not None:
        cards.insert(5, ("", "client-level epsilon", eps(s["client_level_epsilon"])))
    audit = rep.get("audit") or {}
    if audit.get("empirical_epsilon_lower_bound") is not None:
        cards.insert(5, ("bad" if audit.get("consistent") is False else "", "audit: empirical epsilon ≥",
                         fmt(audit["empirical_epsilon_lower_bound"], ".3f")))
    html_cards = "".join(f'<div class="card {c}"><div class="k">{esc(k)}</div><div class="v">{val}</div></div>'
                         for c, k, val in cards)
    budget_text = "per branch (below)"
    if s["branch_budgets"]:
        budget_text = f"dp.branch-budgets = <code>{esc(s['branch_budgets'])}</code>"
    elif s["budget_epsilon"]:
        budget_text = f"dp.budget-epsilon = {fmt(s['budget_epsilon'], 'g')}"
    elif s["target_epsilon"]:
        budget_text = f"dp.target-epsilon = {fmt(s['target_epsilon'], 'g')} (no separate budget set)"
    central = esc(s["central_dp_mode"])
    if s["central_dp_mode"] != "off":
        central += f" (client-level delta {fmt(s['central_dp_delta'], '.3g')})"
    facts = (f'<p class="note">Record-level DP: {"on" if s["dp_enabled"] else "<b>off</b> (no guarantee)"}; '
             f"budget: {budget_text}; central (client-level) DP: {central}. "
             f"Rows at or above {NEAR_BUDGET:.0%} of their budget are highlighted "
             f"{badge('near-budget')}, exhausted ones {badge('exhausted')}; a branch whose epsilon is above "
             f"its budget {badge('over-budget')} means the budget gate did not hold.</p>")

    audit_by_branch = {audit.get("branch"): audit} if audit.get("branch") else {}
    rows, classes, attrs = [], [], []
    possible = any(b["possible_epsilon"] is not None for b in rep["branches"])
    for b in rep["branches"]:
        used = b["budget_used"]
        width = 0 if used is None else max(2, min(100, round(100 * used)))
        bar = f'<span class="bar {row_class(b["state"])}" style="width:{width}px"></span>' if used is not None else ""
        emp = ""
        if b["branch"] in audit_by_branch and audit_by_branch[b["branch"]].get("empirical_epsilon_lower_bound") is not None:
            emp = f'<br><span class="note">audit lower bound {fmt(audit_by_branch[b["branch"]]["empirical_epsilon_lower_bound"], ".3f")}</span>'
        rows.append([
            f"<b class=\"nw\">{esc(b['branch'])}</b>",
            eps(b["max_epsilon"]) + emp,
            *([eps(b["possible_epsilon"], "—") + (f' <span class="note">({pct(b["possible_budget_used"])})</span>'
               if b["possible_budget_used"] is not None else "")] if possible else []),
            fmt(b["budget_epsilon"], "g"),
            bar + pct(used),
            badge(b["state"]),
            esc(ranges(b["rounds_trained"]) or "none"),
            esc(ranges(b["rounds_refused"]) or "none"),
            fmt(b["examples"]),
        ])
        classes.append("bad" if b["epsilon_decreases"] else row_class(b["state"]))
        attrs.append(f'data-branch="{esc(b["branch"])}" data-state="{esc(b["state"])}" '
                     f'data-epsilon="{esc(repr(b["max_epsilon"]))}" data-budget="{esc(repr(b["budget_epsilon"]))}"')
    headers = ["branch", "epsilon claimed (record-level)", *(["epsilon possibly spent"] if possible else []),
               "budget", "budget used", "state", "rounds trained", "rounds refused", "examples"]
    table = html_table(headers, rows, numeric=(1, 2, 3, 4, 8) if possible else (1, 2, 3, 7), row_classes=classes,
                       attrs=attrs)
    note = ('<p class="note">"Possibly spent": a branch failed a round after its last signed claim and may have '
            'trained in it; the epsilon it may have reached stands until a later signed claim settles it.</p>'
            if possible else "")
    return (f'<h2 id="summary">1. Summary</h2><div class="cards">{html_cards}</div>{facts}'
            f'<h3>Privacy spent per branch (from the ledger; the largest cumulative epsilon each claimed)</h3>'
            f'<div id="branch-summary">{table}</div>{note}{_decreases(rep)}')


def _section_epsilon(rep: Mapping, plot: str | None) -> str:
    return (f'<h2 id="epsilon">2. Epsilon over the rounds</h2>'
            f'<p class="note">Each branch\'s cumulative record-level epsilon after each round, as written in the ledger; '
            f'dashed lines are the budgets (the dotted line marks {NEAR_BUDGET:.0%} of a shared budget). '
            f'A cross marks a round the branch refused to train.</p>{plot_img(plot, "epsilon per branch over rounds")}')


def _in_model(row: Mapping) -> str:
    if row["reject_reason"]:
        return f'<b>no</b>: {esc(row["reject_reason"])}'
    if row["aggregated"] is None:
        return "—"
    if row["aggregated"]:
        return "yes"
    if row["status"] != STATUS_TRAINED:
        return f"no: did not train ({esc(row['status'])})"
    return '<b class="flag">no — the ledger gives no reason</b>'


def _malformed_rows(rep: Mapping, width: int) -> list[str]:
    """The ledger lines that are not JSON objects, as red rows of the DP table (they hold no figures)."""
    return [f'<tr class="bad"><td colspan="{width}">ledger line {fmt(n)}: not a JSON object (corrupt or '
            f'truncated) — its figures are missing from this report</td></tr>'
            for n in rep["verification"]["unparsable_lines"]]


def _section_dp(rep: Mapping) -> str:
    ledger = sorted(rep["ledger"], key=lambda x: (x["round"] if x["round"] is not None else -1, natural_key(x["branch"])))
    spec: list[tuple[str, bool, Any]] = [
        ("round", True, lambda r: fmt(r["round"])),
        ("branch", False, lambda r: f'<span class="nw">{esc(r["branch"])}</span>'),
        ("status", False, lambda r: esc(r["status"])),
        ("examples", True, lambda r: fmt(r["examples"])),
        ("steps", True, lambda r: fmt(r["steps"])),
        ("sample rate q", True, lambda r: fmt(r["sample_rate"])),
        ("noise σ", True, lambda r: fmt(r["noise_multiplier"])),
        ("clip C", True, lambda r: fmt(r["max_grad_norm"])),
        ("epsilon (cum.)", True, lambda r: f'<b>{eps(r["epsilon"], "null")}</b>'),
        ("delta", True, lambda r: fmt(r["delta"], ".3g")),
        ("budget", True, lambda r: fmt(r["budget_epsilon"], "g")),
        ("used", True, lambda r: pct(budget_used(r))),
    ]
    if len({r["accountant"] for r in ledger}) > 1:
        spec.append(("accountant", False, lambda r: esc(r["accountant"] or "—")))
    if any(r["aggregated"] is not None or r["reject_reason"] for r in ledger):
        spec.append(("aggregated", False, _in_model))
    if any(r["signed"] for r in ledger):
        spec.append(("signed", False, lambda r: "yes" if r["signed"] else "no"))
    spec.append(("ledger line", True, lambda r: fmt(r["line"])))
    headers, numeric, rows = columns(spec, ledger)
    classes = ["bad" if unexplained(r) else
               row_class("exhausted" if r["status"] == STATUS_EXHAUSTED or (budget_used(r) or 0) >= 1 - 1e-9
                         else "near-budget" if (budget_used(r) or 0) >= NEAR_BUDGET else "") for r in ledger]
    table = html_table(headers, rows, numeric=numeric, row_classes=classes)
    bad_rows = _malformed_rows(rep, len(headers))
    if bad_rows:
        table = table.replace("</tbody>", "".join(bad_rows) + "</tbody>", 1)
    accountants = ", ".join(sorted({str(r["accountant"]) for r in ledger if r["accountant"]})) or "—"
    out = (f'<h2 id="dp">3. DP parameters per branch per round (record-level, DP-SGD)</h2>'
           f'<p class="note">Protects: <b>one customer record within a branch</b>. Poisson sample rate q, '
           f'noise multiplier σ and per-sample clipping norm C are what the branch trained with; '
           f'epsilon is cumulative over the run at the delta shown (accountant: {esc(accountants)}).</p>'
           f'<div class="dense">{table}</div>')
    if rep["client_level"]:
        crow = [[fmt(r["round"]), esc(r["branch"]), esc(r["status"] or "—"), fmt(r["examples"]),
                 fmt(r["noise_multiplier"]), fmt(r["clipping_norm"]), eps(r["epsilon"], "null"),
                 fmt(r["delta"], ".3g"), esc(r["accountant"] or "—"), "yes" if r["signed"] else "no",
                 fmt(r["line"])] for r in rep["client_level"]]
        out += ('<h3>Client-level (central) DP per round</h3>'
                '<p class="note">Protects: <b>a whole branch\'s contribution</b>. The server clips each branch\'s '
                'update to the clipping norm and adds Gaussian noise (σ x clipping norm) to their aggregate; '
                'epsilon is cumulative over the releases.</p>'
                + html_table(["round", "written by", "status", "branches in release", "noise σ", "clipping norm",
                          "epsilon (cum.)", "delta", "accountant", "signed", "ledger line"], crow,
                         numeric=(0, 3, 4, 5, 6, 7, 10)))
    return out


def _section_pii(rep: Mapping, plot: str | None) -> str:
    types = rep["pii_types"]
    rows = [[f"<b>{esc(b['branch'])}</b>", fmt(b["pii_round"]), *(fmt(b["pii_counts"].get(t, 0)) for t in types),
             fmt(sum(b["pii_counts"].values()))] for b in rep["branches"]]
    totals = ["<b>all branches</b>", "", *(fmt(sum(b["pii_counts"].get(t, 0) for b in rep["branches"])) for t in types),
              fmt(sum(sum(b["pii_counts"].values()) for b in rep["branches"]))]
    detector = rep.get("detector")
    recall = [_recall_cell(detector, t) for t in types]
    rows_all = [*rows, totals]
    if detector:
        rows_all.append(["<i>measured recall</i>", "", *recall, ""])
    table = html_table(["branch", "round", *(esc(t) for t in types), "total"], rows_all,
                       numeric=tuple(range(1, len(types) + 3)))
    return (f'<h2 id="pii">4. Desensitization: PII values masked per type</h2>'
            f'<p class="note">Values each branch replaced by typed placeholders (<code>[ID_CARD]</code>, '
            f'<code>[PHONE]</code>, ...) before tokenizing, as reported in its latest ledger line (a branch '
            f'desensitizes its whole training set every round). {_residual_risk(detector, types, rep)}</p>'
            f'{table}{plot_img(plot, "PII values masked per branch")}')


def _recall_cell(detector: Mapping | None, pii_type: str) -> str:
    """The measured recall of one type, or 'not measured'."""
    figure = (detector or {}).get("per_type", {}).get(pii_type) or {}
    recall = figure.get("recall")
    return f"{100 * recall:.0f} %" if isinstance(recall, (int, float)) else "not measured"


def _residual_risk(detector: Mapping | None, types: list[str], rep: Mapping) -> str:
    """One sentence a reviewer reads: what was masked, and how much the detector is measured to catch."""
    total = sum(sum(b["pii_counts"].values()) for b in rep["branches"])
    if not detector:
        return (f"Masked {fmt(total)} values. No measured recall for this detector version: "
                "treat the counts as a lower bound of what the data held.")
    figures = [detector["per_type"][t]["recall"] for t in types
               if isinstance((detector["per_type"].get(t) or {}).get("recall"), (int, float))]
    span = f"{100 * min(figures):.0f}-{100 * max(figures):.0f} % by type" if figures else "not measured for these types"
    return (f"Masked {fmt(total)} values; measured recall {span} (detector {esc(str(detector['detector_version']))}, "
            f"{fmt(detector.get('texts'))} hand-written texts the detector was not written against, "
            f"<code>{esc(str(detector.get('command', '')))}</code>); a value of a type below 100 % may have "
            "been missed and reached the model.")


def _section_verification(rep: Mapping) -> str:
    v = rep["verification"]
    proven = "".join(f"<li>{esc(p)}</li>" for p in v["proven"])
    if v["status"] == "verified":
        verdict = (f'<div class="verdict ok" id="ledger-verdict" data-ok="true" data-status="verified"><b>OK</b> — '
                   f'{v["entries"]} ledger lines verified against the server key {esc(v["anchor"])}.</div>')
    elif v["status"] == "not-verified":
        verdict = (f'<div class="verdict warn" id="ledger-verdict" data-ok="false" data-status="not-verified">'
                   f'<b>not verified</b> — {esc(v["reason"])}. Nothing in the ledger was found wrong, but less '
                   f'than the whole ledger is proven.</div>')
    else:
        where = f"first bad line: <b>{v['bad_line']}</b> — " if v["bad_line"] else ""
        verdict = (f'<div class="verdict fail" id="ledger-verdict" data-ok="false" data-status="failed" '
                   f'data-bad-line="{esc(v["bad_line"])}"><b>FAIL</b> — {where}{esc(v["reason"])}.<br>The figures '
                   f'from line {esc(v["bad_line"] or "?")} of the ledger on cannot be trusted.</div>')
    notes = [f"Lines carrying a signature: {v['signed_lines']} of {v['entries']}."]
    if v["unparsable_lines"]:
        notes.append(f"Lines that are not JSON and were left out of this report: {esc(v['unparsable_lines'])}.")
    if v["sealed_round"] is not None and rep["summary"]["rounds_completed"] > v["sealed_round"]:
        notes.append(f"<b>metrics.json records {rep['summary']['rounds_completed']} rounds, the last signed head "
                     f"round {v['sealed_round']}</b>: the ledger may have been cut short.")
    mism = rep["consistency"]["metrics_vs_ledger"]
    cons = ('<div class="verdict ok">metrics.json agrees with the ledger (status and epsilon of every branch in '
            'every round).</div>') if not mism else (
        f'<div class="verdict warn"><b>{len(mism)} disagreement(s)</b> between metrics.json and the ledger '
        f'(the ledger is the record):</div>'
        + html_table(["round", "branch", "what"], [[fmt(m["round"]), esc(m["branch"]), esc(m["what"])] for m in mism]))
    return (f'<h2 id="ledger">5. Ledger verification</h2>{verdict}<p>What was proven:</p><ul>{proven}</ul>'
            f'<p class="note">{" ".join(notes)}</p><h3>metrics.json vs ledger</h3>{cons}')


def _section_utility(rep: Mapping, plot: str | None) -> str:
    keys = rep["utility_keys"]
    rows = [[fmt(r["round"]), *(fmt(r.get(k)) for k in keys)] for r in rep["rounds"]]
    table = html_table(["round", *(esc(k) for k in keys)], rows, numeric=tuple(range(len(keys) + 1)), compact=True)
    return (f'<h2 id="utility">6. Model utility per round (server held-out set)</h2>'
            f'<p class="note">Round 0 is the initial model before any training.</p>'
            f'{plot_img(plot, "held-out utility per round")}{table}')


def _section_failures(rep: Mapping) -> str:
    rows = []
    for r in rep["rounds"]:
        rows += [[fmt(r["round"]), "node failed", f"node {esc(f['node'])}", esc(f["reason"])] for f in r["failures"]]
        rows += [[fmt(r["round"]), "update rejected", esc(f["branch"]), esc(rejection_text(f))] for f in r["rejected"]]
        rows += [[fmt(r["round"]), "did not train", esc(f["branch"]), esc(f["status"]) + f" (ledger line {f['line']})"]
                 for f in r["not_trained"]]
    per_round = [[fmt(r["round"]), fmt(len(r["failures"])), fmt(len(r["rejected"])), fmt(len(r["not_trained"]))]
                 for r in rep["rounds"] if r["round"] > 0]
    details = ('<div class="verdict ok">No node failed, no update was rejected and every branch trained in every '
               'round it was asked to.</div>') if not rows else (
        "<h3>Details</h3>" + html_table(["round", "event", "who", "reason"], rows, numeric=(0,)))
    return ('<h2 id="failures">7. Failures, rejected updates and refusals per round</h2>'
            + html_table(["round", "node failures", "updates rejected", "branches that did not train"], per_round,
                     numeric=(0, 1, 2, 3), compact=True) + details)


def _section_audit(rep: Mapping) -> str:
    a = rep.get("audit")
    if a is None:
        return ""
    if "error" in a:
        return (f'<h2 id="audit">8. Empirical privacy audit (canaries)</h2>'
                f'<div class="verdict warn">audit.json is present but unusable: {esc(a["error"])}</div>')
    if a["consistent"] is None:
        verdict = ('<div class="verdict warn">Nothing to compare: '
                   + ("the run has no formal epsilon (no DP)." if a["formal_epsilon"] is None
                      else "the audit gives no lower bound.") + "</div>")
    elif a["consistent"]:
        verdict = (f'<div class="verdict ok">Consistent: the empirical lower bound '
                   f'{fmt(a["empirical_epsilon_lower_bound"], ".3f")} is at or below the formal epsilon '
                   f'{fmt(a["formal_epsilon"], ".3f")}.</div>')
    else:
        verdict = (f'<div class="verdict fail"><b>VIOLATION</b> — the empirical lower bound '
                   f'{fmt(a["empirical_epsilon_lower_bound"], ".3f")} exceeds the formal epsilon '
                   f'{fmt(a["formal_epsilon"], ".3f")}: the DP implementation or its accounting is broken.</div>')
    spec: list[tuple[str, bool, Any]] = [
        ("canaries", True, lambda a: fmt(a["canaries"])),
        ("branch", False, lambda a: esc(a["branch"] or "—")),
        ("membership AUC", True, lambda a: fmt(a["auc"], ".3f")),
        ("canaries exposed", True, lambda a: fmt(a["exposed"])),
    ]
    if a["held_out_predicted"] is not None:
        spec.append(("never-seen predicted", True, lambda a: fmt(a["held_out_predicted"])))
    fields = a["extra"] or {}
    if "exposure.planted_mean" in fields:  # task chat: "The Secret Sharer" exposure of the reply secrets
        spec.append((f"exposure in bits (max {fmt(fields.get('exposure.max_bits'), '.1f')}): planted / never-seen mean", True,
                     lambda a: f'{fmt(fields["exposure.planted_mean"], ".2f")} / {fmt(fields.get("exposure.held_out_mean"), ".2f")}'))
    if a["confidence"] is not None:
        spec.append(("confidence", True, lambda a: fmt(a["confidence"], "g")))
    spec += [
        ("empirical epsilon (lower bound)", True, lambda a: f'<b>{fmt(a["empirical_epsilon_lower_bound"], ".3f")}</b>'),
        ("formal epsilon", True, lambda a: f'<b>{fmt(a["formal_epsilon"], ".3f")}</b>'),
        ("delta", True, lambda a: fmt(a["delta"], ".3g")),
    ]
    headers, numeric, rows = columns(spec, [a])
    extra = ""
    if a["extra"]:
        extra = "<details><summary>other audit fields</summary>" + html_table(
            ["field", "value"], [[esc(k), esc(v)] for k, v in sorted(a["extra"].items())], compact=True) + "</details>"
    return (f'<h2 id="audit">8. Empirical privacy audit (canaries)</h2>{verdict}'
            + html_table(headers, rows, numeric=numeric) + extra)


def _section_protects(rep: Mapping) -> str:
    items = []
    for key in (KIND_RECORD, KIND_CLIENT, "empirical", "none"):
        p = rep["protects"][key]
        items.append(f'<div><div class="p">{esc(key)}: protects {esc(p["protects"])}</div>{esc(p["explanation"])}</div>')
    n = 9 if rep.get("audit") is not None else 8
    return (f'<h2 id="protects">{n}. What each epsilon protects</h2><div class="explain">{"".join(items)}</div>'
            f'<p class="note">Smaller epsilon = stronger protection; delta is the small probability that the '
            f'epsilon bound does not hold and should be well below 1 / (number of records).</p>')


def render_html(report: Mapping) -> str:
    """The report as one self-contained HTML page (inline CSS and base64 PNG plots)."""
    from server.report import plots

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
    nav = "".join(f'<a href="#{k}">{esc(v)}</a>' for k, v in nav_items)
    runs = ""
    if len(report["ledger_run_ids"]) > 1:
        runs = f" — the ledger holds lines of {len(report['ledger_run_ids'])} runs: {esc(', '.join(report['ledger_run_ids']))}"
    body = "".join([
        f"<h1>Privacy report — run <code>{esc(report['run_id'])}</code></h1>",
        f'<p class="meta">Run directory <code>{esc(report["run_dir"])}</code> · generated {esc(report["generated"])} · '
        f'{s["branches"]} branches · ledger {LEDGER_CARD[s["ledger_status"]][1]}{runs}</p>',
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
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
