"""Plot of the ablation (bench/ablation.py): each lever's federated DP curve (arm c) against the goal.

One panel per data set: held-out accuracy (Banking77) or ROC AUC (German Credit)
after each round of every lever's arm (c), the mean over the split seeds it ran
at among ``--seeds`` (the legend says which), with the references as horizontal lines: arm (a),
centralized non-private; the goal, 0.90 x (a) on Banking77 and 0.92 x (a) on
German Credit; arm (e), centralized DP-SGD at the same epsilon, of the baseline.
A lever whose curve ends below the goal line has not met it, and the gap is the
figure the README quotes.

    python bench/ablation_plot.py                  # bench/results/ablation.json -> ablation_<data set>.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

RESULTS = HERE / "results"
#: Data set -> (metric, goal as a fraction of arm (a)), from the issue's goals.
GOALS = {"banking77": ("accuracy", 0.90), "german-credit": ("roc_auc", 0.92)}


def curves(cells: dict, dataset: str, metric: str, seeds: list[int]) -> dict[str, tuple[list[float], list[int]]]:
    """Lever -> (mean metric after each round over its seeds, the seeds) for every arm-(c) cell with a curve."""
    by_lever: dict[str, dict[int, list[float]]] = {}
    for key, cell in cells.items():
        d, seed, lever, arm = key.split("|")
        curve = (cell.get("by_round") or {}).get(metric)
        if d == dataset and arm == "c" and int(seed) in seeds and curve and not cell.get("failures"):
            by_lever.setdefault(lever, {})[int(seed)] = curve
    out = {}
    for lever, per_seed in by_lever.items():
        length = min(len(c) for c in per_seed.values())
        out[lever] = ([statistics.mean(c[i] for c in per_seed.values()) for i in range(length)], sorted(per_seed))
    return out


def reference(cells: dict, dataset: str, lever: str, arm: str, metric: str, seeds: list[int]) -> float | None:
    """Mean over seeds of one lever's arm (a) or (e), or None when it was not run."""
    values = [c[metric] for s in seeds if (c := cells.get(f"{dataset}|{s}|{lever}|{arm}"))
              and c.get(metric) is not None and not c.get("failures")]
    return statistics.mean(values) if values else None


def plot(cells: dict, dataset: str, seeds: list[int], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, goal = GOALS[dataset]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for lever, (curve, seeds) in sorted(curves(cells, dataset, metric, seeds).items(), key=lambda kv: -kv[1][0][-1]):
        ax.plot(range(len(curve)), curve, marker=".", label=f"{lever} (c), seeds {', '.join(map(str, seeds))}: "
                                                             f"{curve[-1]:.3f}")
    a = reference(cells, dataset, "baseline", "a", metric, seeds)
    e = reference(cells, dataset, "baseline", "e", metric, seeds)
    if a is not None:
        ax.axhline(a, color="black", lw=1.2, label=f"(a) centralized, no DP: {a:.3f}")
        ax.axhline(goal * a, color="black", ls="--", lw=1.2, label=f"goal {goal:.2f} x mean (a): {goal * a:.3f}")
    if e is not None:
        ax.axhline(e, color="grey", ls=":", lw=1.5, label=f"(e) centralized DP-SGD, baseline: {e:.3f}")
    ax.set_xlabel("round")
    ax.set_ylabel(f"held-out {metric}")
    ax.set_title(f"{dataset}: federated DP (epsilon 8) by lever, against the goal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result", type=Path, default=RESULTS / "ablation.json", help="bench/ablation.py's JSON")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the PNGs go")
    parser.add_argument("--seeds", default="42,7", help="split seeds to average, as the table's (default 42,7)")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 42,7")
    try:
        cells = json.loads(args.result.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"--result {args.result}: not a bench/ablation.py result ({err}); run bench/ablation.py first")
    for dataset in GOALS:
        if any(k.startswith(f"{dataset}|") for k in cells):
            print(plot(cells, dataset, seeds, args.out_dir / f"ablation_{dataset}.png"))


if __name__ == "__main__":
    main()
