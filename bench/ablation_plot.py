"""Plot of the ablation (bench/ablation.py): each lever's federated DP curve (arm c) against the goal.

One figure per data set: held-out accuracy (Banking77) or ROC AUC (German
Credit) after each round of every lever's arm (c), divided by arm (a) of the
same split seed (centralized, non-private), then averaged over the seeds it ran
at among ``--seeds`` (the legend says which): at round 10 that is the table's
(c) / (a).  Horizontal lines: (a) itself (1.0), the goal ((c) / (a) = 0.90 on
Banking77, 0.92 on German Credit) and arm (e), centralized DP-SGD at the same
epsilon, over (a), of the best lever that has one.  A lever whose curve ends below the goal
line has not met it, and the gap is the figure the README quotes.

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

from bench.ablation import arm_values, cell_key, mean_ratio  # noqa: E402

RESULTS = HERE / "results"
#: Data set -> (metric, goal as a fraction of arm (a)), from the issue's goals.
GOALS = {"banking77": ("accuracy", 0.90), "german-credit": ("roc_auc", 0.92)}


def curves(cells: dict, dataset: str, metric: str, seeds: list[int]) -> dict[str, tuple[list[float], list[int]]]:
    """Lever -> ((c) / (a) after each round, each seed's curve over its own (a), then the mean over seeds; the
    seeds), for every lever with an arm-(c) curve at a seed of ``seeds`` that has its (a)."""
    out = {}
    a = arm_values(cells, dataset, seeds, "baseline", "a", metric)
    for lever in {k.split("|")[2] for k in cells if k.startswith(f"{dataset}|")}:
        per_seed = {}
        for seed, final in arm_values(cells, dataset, seeds, lever, "c", metric).items():  # None: branches failed
            curve = (cells[cell_key(dataset, seed, lever, "c")].get("by_round") or {}).get(metric)
            if final is not None and curve and a.get(seed):
                per_seed[seed] = [v / a[seed] for v in curve]
        if per_seed:
            length = min(len(c) for c in per_seed.values())
            out[lever] = ([statistics.mean(c[i] for c in per_seed.values()) for i in range(length)], list(per_seed))
    return out


def reference(cells: dict, dataset: str, lever: str, arm: str, metric: str, seeds: list[int]) -> float | None:
    """One lever's arm (e) (or another arm) over (a), the mean of per-seed ratios, or None when not run."""
    return mean_ratio(arm_values(cells, dataset, seeds, lever, arm, metric),
                      arm_values(cells, dataset, seeds, "baseline", "a", metric))


def leading_e(cells: dict, dataset: str, ranked: list[str], metric: str, seeds: list[int]) -> tuple[str, float] | None:
    """The first lever of ``ranked`` (best final (c) first) with an arm (e), the baseline last: (lever, (e) / (a))."""
    for lever in [*ranked, "baseline"]:
        e = reference(cells, dataset, lever, "e", metric, seeds)
        if e is not None:
            return lever, e
    return None


def _epsilon(cells: dict, dataset: str) -> str:
    found = {c.get("config", {}).get("dp.target-epsilon") for k, c in cells.items() if k.startswith(f"{dataset}|")
             and k.endswith("|c")}
    return f"epsilon {found.pop():g}" if len(found) == 1 and None not in found else "DP"


def plot(cells: dict, dataset: str, seeds: list[int], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, goal = GOALS[dataset]
    fig, ax = plt.subplots(figsize=(11.5, 4.8))
    ranked = sorted(curves(cells, dataset, metric, seeds).items(), key=lambda kv: -kv[1][0][-1])
    colours = {}
    # the default cycle repeats after ten: tab20's ten dark shades, then its ten light ones
    palette = [plt.get_cmap("tab20").colors[k] for k in [*range(0, 20, 2), *range(1, 20, 2)]]
    for i, (lever, (curve, ran)) in enumerate(ranked):
        line, = ax.plot(range(len(curve)), curve, marker=".", color=palette[i % 20],
                        label=f"{lever} (c), seeds {', '.join(map(str, ran))}: {curve[-1]:.3f}")
        colours[lever] = line.get_color()
    ax.axhline(1.0, color="black", lw=1.2, label="(a) centralized, no DP")
    ax.axhline(goal, color="black", ls="--", lw=1.2, label=f"goal: (c) / (a) = {goal:.2f}")
    # arm (e) of the best lever that has one: the price of privacy at the settings that lead, in that lever's colour
    if (found := leading_e(cells, dataset, [lever for lever, _ in ranked], metric, seeds)) is not None:
        lever, e = found
        ax.axhline(e, color=colours.get(lever, "grey"), ls=":", lw=1.5, label=f"(e) centralized DP-SGD, {lever}: {e:.3f}")
    ax.set_xlabel("round")
    ax.set_ylabel(f"held-out {metric}, over (a)'s")
    ax.set_title(f"{dataset}: federated {_epsilon(cells, dataset)} by lever, (c) / (a) against the goal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the curves, not over them
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
    if not seeds:
        parser.error("--seeds is empty: give comma-separated integers, e.g. 42,7")
    try:
        cells = json.loads(args.result.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError) as err:
        raise SystemExit(f"--result {args.result}: not a bench/ablation.py result ({err}); run bench/ablation.py first")
    except (KeyError, TypeError):
        raise SystemExit(f"--result {args.result}: not a bench/ablation.py result (no 'cells'); "
                         "run bench/ablation.py first") from None
    for dataset in GOALS:
        if any(k.startswith(f"{dataset}|") for k in cells):
            print(plot(cells, dataset, seeds, args.out_dir / f"ablation_{dataset}.png"))


if __name__ == "__main__":
    main()
