"""The HTML page of the compliance reviewer's report: one self-contained file.

Renders the document :func:`server.report.build.build_report` makes -- summary,
epsilon plots with budget lines, DP parameters, PII counts, ledger check,
utility, failures and rejections, the canary audit -- with inline CSS and the
plots as base64 PNG (no script, no link).  Every string taken from a file is
HTML-escaped here.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Mapping, Sequence

from server.report.build import KIND_CLIENT, KIND_RECORD, NEAR_BUDGET, STATUS_EXHAUSTED, _natural_key, _reason


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
    return ('<h2 id="failures">7. Failures, rejected updates and refusals per round</h2>'
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
    fields = a["extra"] or {}
    if "exposure.planted_mean" in fields:  # task chat: "The Secret Sharer" exposure of the reply secrets
        spec.append((f"exposure in bits (max {_fmt(fields.get('exposure.max_bits'), '.1f')}): planted / never-seen mean", True,
                     lambda a: f'{_fmt(fields["exposure.planted_mean"], ".2f")} / {_fmt(fields.get("exposure.held_out_mean"), ".2f")}'))
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
