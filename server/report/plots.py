"""The figures of the compliance report, as base64 PNG strings for inline ``<img>``.

Drawn with matplotlib's object API on the Agg canvas (``Figure`` +
``FigureCanvasAgg``): no pyplot, no global backend switch, no display needed,
so rendering a report never disturbs another user of matplotlib in the same
process.  Labels (branch names, PII types) come from run files and are drawn
as plain text, never parsed as mathtext.  Every function takes plain figures (the report document of
:mod:`server.report.build`) and returns ``None`` when there is nothing to draw.
"""

from __future__ import annotations

import base64
import functools
import io
from typing import Any, Callable, Mapping, Sequence

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
DPI = 100


#: Labels come from run files: never parse them as mathtext or TeX (a ``$\\frac{$`` must not crash the report).
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def plain_text(draw: Callable[..., str | None]) -> Callable[..., str | None]:
    """Run a plot function with every label taken as plain text."""
    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> str | None:
        with matplotlib.rc_context(PLAIN_TEXT):
            return draw(*args, **kwargs)
    return wrapper


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


MAX_LEGEND_BRANCHES = 12  # above this, lines are coloured by budget state, not one legend entry per branch
STATE_COLORS = {"ok": "#9aa5b1", "near-budget": "#d9a400", "exhausted": "#e0393e", "over-budget": "#7a0010",
                "no-dp": "#9aa5b1"}
STATE_LABELS = {"ok": "within budget", "near-budget": ">= 90 % of budget", "exhausted": "budget exhausted",
                "over-budget": "OVER budget"}
MARKERS = ("o", "s", "^", "D", "v", "P", "<", ">", "h", "*")


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _marker(i: int) -> str:
    return MARKERS[(i // len(PALETTE) + i) % len(MARKERS)]


@plain_text
def epsilon_plot(branches: Sequence[Mapping], ledger: Sequence[Mapping], rounds: Sequence[int]) -> str | None:
    """Cumulative record-level epsilon of each branch over the rounds, with its budget line.

    Args:
        branches: The report's per-branch summaries (``branch``, ``budget_epsilon``).
        ledger: The report's record-level ledger rows (``round``, ``branch``, ``epsilon``, ``status``).
        rounds: The rounds on the x axis.
    """
    series = {b["branch"]: [(r["round"], r["epsilon"], r["status"]) for r in ledger
                            if r["branch"] == b["branch"] and isinstance(r.get("epsilon"), (int, float))
                            and isinstance(r.get("round"), int)]
              for b in branches}
    if not any(series.values()):
        return None
    fig = Figure(figsize=(10, 4.6))
    ax = fig.add_subplot()
    budgets = {b["branch"]: b.get("budget_epsilon") for b in branches}
    shared_budget = len({v for v in budgets.values()}) == 1
    many = len(branches) > MAX_LEGEND_BRANCHES
    for i, b in enumerate(branches):
        pts = sorted(series[b["branch"]])
        if not pts:
            continue
        if many:  # one colour per budget state instead of one legend entry per branch
            state = b.get("state", "ok")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=STATE_COLORS.get(state, "#9aa5b1"),
                    linewidth=1.0 if state in ("ok", "no-dp") else 1.6, alpha=0.8, zorder=3 if state != "ok" else 2)
            refused = [p for p in pts if p[2] != "trained"]
            if refused:
                ax.scatter([p[0] for p in refused], [p[1] for p in refused], marker="X", s=60,
                           color=STATE_COLORS.get(state, "#9aa5b1"), edgecolors="black", zorder=5)
            continue
        color = _color(i)
        # dodge each branch a little along x and vary its marker, so branches with identical figures stay visible
        dx = (i - (len(branches) - 1) / 2) * min(0.05, 0.4 / max(len(branches), 1))
        ax.plot([p[0] + dx for p in pts], [p[1] for p in pts], marker=_marker(i), color=color, label=b["branch"],
                linewidth=2, markersize=7, alpha=0.9)
        refused = [p for p in pts if p[2] != "trained"]
        if refused:
            ax.scatter([p[0] + dx for p in refused], [p[1] for p in refused], marker="X", s=110, color=color,
                       edgecolors="black", zorder=5)
    if many:
        counts: dict[str, int] = {}
        for b in branches:
            counts[b.get("state", "ok")] = counts.get(b.get("state", "ok"), 0) + 1
        for state, label in STATE_LABELS.items():
            if counts.get(state):
                ax.plot([], [], color=STATE_COLORS[state], linewidth=2, label=f"{label} ({counts[state]} branches)")
    if not shared_budget:  # one dashed line per distinct budget, in the branch's colour when it is one branch's
        by_value: dict[float, list[int]] = {}
        for i, b in enumerate(branches):
            if isinstance(budgets[b["branch"]], (int, float)):
                by_value.setdefault(float(budgets[b["branch"]]), []).append(i)
        for value, idx in sorted(by_value.items()):
            names = [branches[i]["branch"] for i in idx]
            who = names[0] if len(names) == 1 else (", ".join(names) if len(names) <= 3 else f"{len(names)} branches")
            ax.axhline(value, color=_color(idx[0]) if len(idx) == 1 else "#444444", linestyle="--", linewidth=1.3,
                       label=f"budget {value:g}: {who}")
    shared = next(iter(budgets.values()), None)
    if shared_budget and isinstance(shared, (int, float)):
        ax.axhline(shared, color="black", linestyle="--", linewidth=1.3, label=f"budget (every branch) = {shared:g}")
        ax.axhline(0.9 * shared, color="#b8860b", linestyle=":", linewidth=1.1, label=f"90 % of budget = {0.9 * shared:g}")
    if any(p[2] != "trained" for pts in series.values() for p in pts):
        ax.scatter([], [], marker="X", s=90, color="white", edgecolors="black", label="did not train (e.g. budget exhausted)")
    ax.set_xticks(list(rounds))
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative epsilon (record-level)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title("Privacy spent per branch, over the rounds")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return _png(fig)


#: Held-out scores in [0, 1] the utility plot shows when a run has them (classification or chat).
SCORES = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"),
          ("rouge_l", "ROUGE-L"))


@plain_text
def utility_plot(rounds: Sequence[Mapping]) -> str | None:
    """Held-out loss (left) and the task's scores in [0, 1] (right) per round."""
    def pts(key: str) -> list[tuple[int, float]]:
        return [(r["round"], r[key]) for r in rounds if isinstance(r.get(key), (int, float))]

    loss = pts("loss")
    scores = [(title, pts(key)) for key, title in SCORES if pts(key)]
    if not (loss or scores):
        return None
    fig = Figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    if loss:
        ax1.plot(*zip(*loss), marker="o", color=_color(3), linewidth=2)
    ax1.set_title("held-out loss")
    ax1.set_ylabel("loss")
    for i, (title, data) in enumerate(scores):
        ax2.plot(*zip(*data), marker="o", color=_color(i), linewidth=2, label=title)
    ax2.set_title("held-out " + " / ".join(title for title, _ in scores) if scores else "held-out scores")
    ax2.set_ylim(0, 1)
    if scores:
        ax2.legend(fontsize=9)
    ticks = sorted({r["round"] for r in rounds if isinstance(r.get("round"), int)})
    for ax in (ax1, ax2):
        ax.set_xlabel("round (0 = initial model)")
        ax.set_xticks(ticks)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


@plain_text
def pii_plot(branches: Sequence[Mapping], pii_types: Sequence[str]) -> str | None:
    """Desensitized values per PII type (grouped bars, one bar per branch)."""
    counts = [[int(b.get("pii_counts", {}).get(t, 0) or 0) for t in pii_types] for b in branches]
    if not pii_types or not any(any(c) for c in counts):
        return None
    fig = Figure(figsize=(10, 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(len(branches), 1)
    for i, (b, row) in enumerate(zip(branches, counts)):
        xs = [j + (i - (len(branches) - 1) / 2) * width for j in range(len(pii_types))]
        ax.bar(xs, row, width=width, color=_color(i), label=b["branch"])
    ax.set_xticks(range(len(pii_types)))
    ax.set_xticklabels(list(pii_types))
    ax.set_ylabel("values masked")
    ax.set_title("Desensitization: PII values replaced by placeholders, per branch (latest round)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return _png(fig)
