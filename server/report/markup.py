"""The building blocks of the report's HTML page: its style sheet, escaping, numbers, tables, badges.

Every string taken from a file passes :func:`esc`; the cells a table takes are
already-escaped HTML.  The page's sections are in :mod:`server.report.html`.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Mapping, Sequence


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
tr.bad td{background:#f9c9c9}
.flag{color:#a30010}
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


def esc(x: Any) -> str:
    """``x`` as HTML text (None as empty), quotes escaped too."""
    return html.escape("" if x is None else str(x), quote=True)


def fmt(x: Any, spec: str = ".4g", none: str = "—") -> str:
    """A figure as HTML: floats by ``spec``, booleans as yes/no, None as ``none``, text escaped."""
    if x is None:
        return none
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return format(x, spec)
    return esc(x)


def eps(x: float | None, none: str = "none (no DP)") -> str:
    """An epsilon to three decimals, or ``none`` without one."""
    return none if x is None else f"{x:.3f}"


def pct(x: float | None) -> str:
    """A share as a percentage to one decimal."""
    return "—" if x is None else f"{100 * x:.1f} %"


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (),
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


def plot_img(b64: str | None, alt: str) -> str:
    """A base64 PNG as an inline image, or a note that there was nothing to plot."""
    if not b64:
        return f'<p class="note">({esc(alt)}: nothing to plot)</p>'
    return f'<div class="plot"><img alt="{esc(alt)}" src="data:image/png;base64,{b64}"></div>'


STATE_BADGE = {
    "ok": ("b-ok", "within budget"),
    "near-budget": ("b-near", "≥ 90 % of budget"),
    "exhausted": ("b-exhausted", "budget exhausted"),
    "over-budget": ("b-over", "OVER BUDGET"),
    "no-dp": ("b-none", "no DP: no guarantee"),
    "no-ledger": ("b-none", "no ledger line"),
}


def ranges(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 5, 7, 8]`` -> ``"1–3, 5, 7–8"``."""
    out: list[list[int]] = []
    for n in sorted(set(numbers)):
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in out)


def badge(state: str) -> str:
    """A branch's budget state as a coloured badge."""
    cls, text = STATE_BADGE.get(state, ("b-none", state))
    return f'<span class="badge {cls}">{esc(text)}</span>'


def row_class(state: str) -> str:
    """The table-row class that highlights a budget state (empty for none)."""
    return {"near-budget": "near", "exhausted": "exhausted", "over-budget": "exhausted"}.get(state, "")


def columns(spec: Sequence[tuple[str, bool, Any]], rows: Sequence[Mapping]) -> tuple[list[str], tuple[int, ...], list[list[str]]]:
    """Headers, numeric column indices and cells of a table from (header, numeric, cell(row)) columns."""
    headers = [h for h, _, _ in spec]
    numeric = tuple(i for i, (_, num, _) in enumerate(spec) if num)
    return headers, numeric, [[cell(r) for _, _, cell in spec] for r in rows]
