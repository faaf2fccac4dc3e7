"""Benchmark: the DP-utility levers of issue 20, each measured on top of ``bench/real_data.py --preset minilm-dp-lora``.

One row per lever, one column group per data set (Banking77, German Credit), arms (c) federated DP and
(e) centralized DP-SGD, each at every ``--seeds`` split seed (the seed sets the train / held-out split,
the branches' partition and the initialization, as in ``bench/real_data.py --set seed=N``).  Every cell is
one real run through ``bench/real_data.py``'s own arms (``federated`` for (c): a Flower simulation;
``train_alone`` for (e)), at epsilon 8, delta 1e-5, the pretrained all-MiniLM-L6-v2 base.

Levers: ``bench/levers.py`` (``LEVERS``: each names the run-config keys it sets over the preset, per data set,
and says what it is and where its settings came from).

``server-adam`` acts on the server's aggregate, which the centralized arm does not have: its (e) cells say
"n/a".  ``lp-ft`` and ``lr-decay`` act across rounds: their (e) cells train round by round (``real_data.train_alone``:
R calls of E epochs, the adapter and the accountant carried from call to call).

Results are kept per cell in ``--out`` (default ``bench/results/ablation.json``): a second call runs only the
cells still missing (``--rerun`` forces them), so the table fills in over several sessions.  ``--import FILE``
takes the baseline's arms from earlier ``bench/real_data.py`` results of the same settings (checked key by
key; and arm (c) of ``lora`` and ``ffa-lora`` from a ``bench/peft_methods.py`` result, the same runs), and (a)
centralized non-private, for the ratio (c) / (a), comes only from such files.

    python bench/ablation.py --datasets german-credit --seeds 42,7 --arms c          # ~6-10 min per cell
    python bench/ablation.py --datasets banking77 --seeds 42,7 --levers baseline,lp-ft --arms c   # ~15-30 min per cell
    python bench/ablation.py --table-only        # print the Markdown table of what has been measured

Prints a Markdown table: per lever and data set, the mean over seeds of (c) (each seed's figure beside it),
(c) / (a) and (e), and (c) / (e) where both were measured.  A run in which a branch failed (a crash, a
worker killed for memory) measured nothing: it is marked "x" and left out of every mean.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import real_data  # noqa: E402
from bench.levers import LEVERS, REFERENCE_PRESET  # noqa: E402
from bench.harness import RESULTS, machine, say, table, write_result  # noqa: E402
from bench.real_data_tables import reused_arms  # noqa: E402

ARMS = ("c", "e")


def cell_key(dataset: str, seed: int, lever: str, arm: str) -> str:
    return f"{dataset}|{seed}|{lever}|{arm}"


def flat_config(dataset: str, seed: int, lever: str, args) -> dict:
    """The run config of one cell: real_data.py's reference (minilm-dp-lora) config of ``dataset`` at ``seed``, the lever's keys over it."""
    return dict(_flat_config(dataset, seed, lever, args.base, tuple(args.set), str(args.data_dir)))


@functools.lru_cache(maxsize=None)
def _flat_config(dataset: str, seed: int, lever: str, base: str, sets: tuple, data_dir: str) -> tuple:
    """flat_config, once per cell: real_data.parse_args checks the base's files (SHA-256 of ~90 MB) each call."""
    argv = ["--preset", REFERENCE_PRESET, "--datasets", dataset, "--data-dir", data_dir]
    argv += ["--base", base] if base != "tiny" else []
    for k, v in {"seed": seed, **LEVERS[lever][dataset]}.items():
        argv += ["--set", f"{k}={v}"]
    return tuple(real_data.base_config(dataset, real_data.parse_args(argv + [x for s in sets for x in ("--set", s)])).items())


def run_cell(dataset: str, seed: int, lever: str, arm: str, args, work: Path) -> dict:
    """One run: arm (c) as a Flower simulation, arm (e) in this process; its held-out metrics and spend."""
    flat = flat_config(dataset, seed, lever, args)
    label = f"{dataset} seed {seed} {lever} ({arm})"
    if arm == "c":
        r = real_data.federated(flat, dp=True, out=work / label.replace(" ", "-"), label=label, timeout=args.timeout)
    else:
        holdout = real_data.holdout_for(flat)
        r = real_data.train_alone({**flat, "num-branches": 1}, 0, holdout, dp=True, label=label)
    return {**r, "config": flat, "overrides": LEVERS[lever][dataset], "loadavg": list(os.getloadavg()),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def measured(cells: dict, dataset: str, seed: int, lever: str, arm: str, args) -> bool:
    """Whether ``cells`` holds this cell run with the config it would run with now (else it runs again)."""
    cell = cells.get(cell_key(dataset, seed, lever, arm))
    return cell is not None and cell.get("config") == flat_config(dataset, seed, lever, args)


def imported_cells(files: list[Path], datasets: list[str], seeds: list[int], args) -> dict[str, dict]:
    """Baseline cells (and arm (a)) from earlier bench/real_data.py results whose config is the cell's."""
    out: dict[str, dict] = {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("benchmark") == "peft_methods":
                out.update(method_cells(path, data, seeds, args))
                continue
            sets = data["datasets"]
        except (OSError, ValueError, KeyError, AttributeError) as err:
            raise SystemExit(f"--import {path}: not a bench/real_data.py or bench/peft_methods.py result ({err}): "
                             "give a JSON one of them wrote")
        for dataset in datasets:
            seed = sets.get(dataset, {}).get("config", {}).get("seed")
            if seed not in seeds:
                continue
            flat = flat_config(dataset, seed, "baseline", args)
            for arm, figures in reused_arms([path], dataset, flat).items():
                if arm in ("a", "c", "e"):
                    out[cell_key(dataset, seed, "baseline", arm)] = {**figures, "config": flat}
    return out


def method_cells(path: Path, data: dict, seeds: list[int], args) -> dict[str, dict]:
    """Arm (c) of ``lora`` (the baseline) and ``ffa-lora`` from a bench/peft_methods.py result (Banking77),
    where its run config is the cell's key for key."""
    out = {}
    for method, lever in (("lora", "baseline"), ("ffa-lora", "ffa-lora")):
        figures = data["methods"].get(method, {})
        seed = figures.get("config", {}).get("seed")
        if "c" not in figures or seed not in seeds:
            continue
        flat = flat_config(data["dataset"], seed, lever, args)
        differ = sorted(k for k in set(flat) | set(figures["config"]) if flat.get(k) != figures["config"].get(k))
        if differ:
            raise SystemExit(f"--import {path}: its {method} run had {differ[0]}={figures['config'].get(differ[0])!r}, "
                             f"the {lever} cell {flat.get(differ[0])!r}: import only a result of the same settings")
        out[cell_key(data["dataset"], seed, lever, "c")] = {**figures["c"], "config": flat, "reused_from": str(path)}
    return out


def arm_values(cells: dict, dataset: str, seeds: list[int], lever: str, arm: str, metric: str) -> dict[int, float | None]:
    """Seed -> one arm's final ``metric``, for the seeds of ``seeds`` it ran at; None where a branch failed (a run in
    which branches failed measures nothing: left out of every mean, marked "x")."""
    return {s: cells[k][metric] if not cells[k].get("failures") else None
            for s in seeds if (k := cell_key(dataset, s, lever, arm)) in cells}


def mean_ratio(over: dict[int, float | None], under: dict[int, float | None]) -> float | None:
    """The mean over seeds of each seed's ratio ``over / under`` (each seed against its own split), or None."""
    both = [s for s in over if over[s] is not None and under.get(s)]
    return statistics.mean(over[s] / under[s] for s in both) if both else None


def summary_rows(cells: dict, datasets: list[str], seeds: list[int], levers: list[str]) -> list[list[str]]:
    """Per lever: for each data set, mean (c) [per seed], (c) / (a), mean (e), (c) / (e)."""
    rows = []
    for lever in levers:
        row = [lever]
        for dataset in datasets:
            metric = real_data.DATASETS[dataset]["metrics"][0]
            c, e, a = (arm_values(cells, dataset, seeds, lev, arm, metric)
                       for lev, arm in ((lever, "c"), (lever, "e"), ("baseline", "a")))
            row.append(_mean_cell(c, seeds))
            row.append(_ratio_cell(mean_ratio(c, a)))
            row.append("n/a" if LEVERS[lever].get("arms", "ce").find("e") < 0 else _mean_cell(e, seeds))
            row.append(_ratio_cell(mean_ratio(c, e)))
        rows.append(row)
    return rows


def _ratio_cell(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3f}"


def _mean_cell(values: dict[int, float | None], seeds: list[int]) -> str:
    """Mean over the valid seeds, then each seed: its figure, "-" not run, "x" invalid (branches failed)."""
    valid = [v for v in values.values() if v is not None]
    each = ", ".join("-" if s not in values else "x" if values[s] is None else f"{values[s]:.3f}" for s in seeds)
    return "not run" if not values else f"{statistics.mean(valid):.3f} ({each})" if valid else f"invalid ({each})"


def print_table(cells: dict, datasets: list[str], seeds: list[int], levers: list[str]) -> None:
    headers = ["lever"]
    for dataset in datasets:
        metric = real_data.DATASETS[dataset]["metrics"][0]
        headers += [f"{dataset} (c) {metric} (seeds {', '.join(map(str, seeds))})", "(c) / (a)", "(e)", "(c) / (e)"]
    print(table(headers, summary_rows(cells, datasets, seeds, levers)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="banking77,german-credit", help="comma-separated data sets")
    parser.add_argument("--seeds", default="42,7", help="comma-separated split seeds (default 42,7)")
    parser.add_argument("--levers", default=",".join(LEVERS), help=f"comma-separated, of {', '.join(LEVERS)}")
    parser.add_argument("--arms", default="ce", help="arms to run, of c and e (default ce)")
    parser.add_argument("--data-dir", type=Path, default=real_data.ROOT.parent / "shared" / "data",
                        help="folder holding banking77/ and german_credit/ (default <repo>/../shared/data)")
    parser.add_argument("--base", default=real_data.MINILM,
                        help=f"the base model (default {real_data.MINILM}; 'tiny': the random tiny-bert of the tests)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="run-config override for every cell, after the lever's keys")
    parser.add_argument("--import", dest="imports", action="append", default=[], type=Path, metavar="FILE",
                        help="baseline arms (a), (c), (e) from an earlier bench/real_data.py result of the same settings")
    parser.add_argument("--rerun", action="store_true", help="run cells again even where --out holds them")
    parser.add_argument("--table-only", action="store_true", help="run nothing: print the table of --out")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per simulated branch (default 1)")
    parser.add_argument("--local-threads", type=int, default=2, help="torch threads of this process for (e) (default 2)")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds one federated run may take")
    parser.add_argument("--out", type=Path, default=RESULTS / "ablation.json", help="JSON result file (read, then updated)")
    args = parser.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.levers = [x.strip() for x in args.levers.split(",") if x.strip()]
    if set(args.arms) - set(ARMS) - {","} or not set(args.arms) & set(ARMS):
        parser.error(f"--arms {args.arms!r}: give arms of {' and '.join(ARMS)}, e.g. ce or c,e")
    args.arms = [a for a in ARMS if a in args.arms]
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 42,7")
    for name, known, what in ((args.datasets, real_data.DATASETS, "data set"), (args.levers, LEVERS, "lever")):
        bad = [x for x in name if x not in known]
        if bad:
            parser.error(f"unknown {what} {bad[0]!r}: choose from {', '.join(known)}")
    args.data_dir = args.data_dir.resolve()
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    real_data.prepare_process(args.threads, args.local_threads)
    stored = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    cells: dict = stored.get("cells", {})
    cells.update(imported_cells(args.imports, args.datasets, args.seeds, args))
    todo = [] if args.table_only else [
        (d, s, lev, arm) for d in args.datasets for s in args.seeds for lev in args.levers for arm in args.arms
        if arm in LEVERS[lev].get("arms", "ce") and (args.rerun or not measured(cells, d, s, lev, arm, args))]
    with tempfile.TemporaryDirectory(prefix="fedbank-bench-ablation-") as tmp:
        for i, (d, s, lev, arm) in enumerate(todo, 1):
            say(f"cell {i}/{len(todo)}: {d} seed {s} {lev} ({arm})")
            cells[cell_key(d, s, lev, arm)] = r = run_cell(d, s, lev, arm, args, Path(tmp))
            write_result(args.out, {"benchmark": "ablation", **machine(), "levers": LEVERS, "cells": cells})
            metric = real_data.DATASETS[d]["metrics"][0]
            say(f"cell {i}/{len(todo)}: {metric} {r[metric]:.3f} in {r['seconds'] / 60:.1f} min")
    if not todo:
        write_result(args.out, {"benchmark": "ablation", **machine(), "levers": LEVERS, "cells": cells})
    print_table(cells, args.datasets, args.seeds, list(LEVERS))


if __name__ == "__main__":
    main()
