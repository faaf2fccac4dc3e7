"""Benchmark: one poisoned branch of ten, plain FedAvg vs Flower's robust aggregators.

Every run is a real Flower simulation (``simulations.local.runner.simulate``) of 10
branches without DP (so the model learns something measurable), with the same
data, seed and training settings; they differ only in the aggregator and the
attack.  The poisoning branch (``--poison-branch``, default branch-3; its own policy's
``testing.poison-branches``) sends a poisoned update
every round: ``scale`` (its step from the global adapter x100) or
``sign-flip`` (its step negated).  ``aggregation.max-update-norm=0`` switches
the server's norm bound off, so it cannot hide the attack, except in the one
run that shows that bound (FedAvg, x100, the default bound of 50; skip it with
``--no-norm-check``) rejecting the poisoned update on its own.  Data: the
synthetic generator (8 intents, chance 12.5 %); held-out set as the server's.

Runs (``--aggregators``, ``--kinds``, ``--clean``): the clean run of each
aggregator named in ``--clean``; each aggregator under each attack; the
norm-bound run.  Reported per run: final held-out accuracy and macro-F1 from
``metrics.json``, and the updates the server rejected.

Goals checked:

* robust: each robust aggregator under attack keeps accuracy within
  ``--tolerance`` (2 points) of the clean FedAvg run (at or above clean - 2);
* hurt: plain FedAvg under the same attack loses more than ``--tolerance``;
* norm bound: with the default bound the x100 update is rejected (reason
  ``norm``) every round and accuracy stays within the tolerance.

Defaults (override with --set): data.partition=iid, model.max-length=64,
data.records-per-branch=120, data.test-fraction=0.3, train.batch-size=8.

    python bench/poisoning.py                       # clean + x100 on 5 aggregators + norm bound
    python bench/poisoning.py --kinds sign-flip --clean fedavg --out bench/results/poisoning_sign_flip.json

min-train-branches keeps its default (2): the round with a rejected update
still aggregates the other nine (with min-train-branches = 10 one rejection
would leave the global adapter unchanged every round).

Writes bench/results/poisoning.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import ROOT, RESULTS, LineClock, final_metrics, limit_threads, machine, say, table, write_result  # noqa: E402

ROBUST = ("median", "trimmed-mean", "krum", "multikrum")
DEFAULT_NORM = 50.0
# Small and quick enough for 7 runs in ~15 min on 2 cores, and the clean model clearly above chance:
# IID branches (the attack's effect is not mixed with non-IID drift, which costs Krum accuracy on its own),
# 64 bytes per example (the intent is in the first sentence), batch 8 for more local steps per round.
BASE = {"data.partition": "iid", "model.max-length": 64, "data.records-per-branch": 120,
        "data.test-fraction": 0.3, "train.batch-size": 8}


def plan(args) -> list[dict]:
    """The runs, in order: clean first, then attacks, then the norm-bound check."""
    runs = [{"name": f"clean {agg}", "aggregation.method": agg, "kind": None, "max_norm": 0.0}
            for agg in _split(args.clean)]
    for kind in _split(args.kinds):
        for agg in _split(args.aggregators):
            runs.append({"name": f"{kind} {agg}", "aggregation.method": agg, "kind": kind, "max_norm": 0.0})
    if args.norm_check and "scale" in _split(args.kinds):
        runs.append({"name": f"scale fedavg, max-update-norm {DEFAULT_NORM:g}", "aggregation.method": "fedavg",
                     "kind": "scale", "max_norm": DEFAULT_NORM})
    return runs


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run_config(args, run: dict, extra: dict) -> dict:
    cfg = {
        "num-server-rounds": args.rounds,
        "dp.enabled": False,
        "train.local-epochs": args.epochs,
        "train.learning-rate": args.lr,
        "aggregation.method": run["aggregation.method"],
        "aggregation.max-update-norm": run["max_norm"],
        **extra,
    }
    return cfg


def branch_policy(args, run: dict, path: Path) -> Path:
    """The simulated branches' own policy: no DP (this benchmark measures robustness), and the poisoning branch."""
    from common.config.policy import BranchPolicy

    policy = BranchPolicy(dp_required=False, fault_injection=bool(run["kind"]),
                          poison_branches=(args.poison_branch,) if run["kind"] else (),
                          poison_kind=run["kind"] or "scale")
    path.write_text(policy.to_toml(), encoding="utf-8")
    return path


def main() -> None:
    from common.config.overrides import parse_overrides
    from simulations.local.runner import simulate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--branches", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8, help="train.local-epochs (default 8)")
    parser.add_argument("--lr", type=float, default=0.01, help="train.learning-rate (default 0.01)")
    parser.add_argument("--poison-branch", default="branch-3")
    parser.add_argument("--kinds", default="scale", help="attacks, of scale,sign-flip (default scale; run sign-flip as a second "
                        "call to stay within ~15 min a call)")
    parser.add_argument("--aggregators", default="fedavg," + ",".join(ROBUST), help="aggregators run under each attack")
    parser.add_argument("--clean", default="fedavg," + ",".join(ROBUST),
                        help="aggregators also run without attack (default: all five; the goals compare with clean fedavg)")
    parser.add_argument("--no-norm-check", dest="norm_check", action="store_false",
                        help="skip the run with the default norm bound (run only when 'scale' is among --kinds)")
    parser.add_argument("--tolerance", type=float, default=2.0, help="accuracy points (default 2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenMP threads per process (default 1: two 1-CPU Ray actors on two cores "
                             "without oversubscription; 0 = leave the environment alone)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run-config override for every run")
    parser.add_argument("--only", help="comma-separated run names to run (from the plan), e.g. 'clean fedavg'")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds one run may take")
    parser.add_argument("--keep", help="keep run directories under this directory (default: temporary, removed)")
    parser.add_argument("--out", default=str(RESULTS / "poisoning.json"), help="JSON result file")
    args = parser.parse_args()
    if args.threads:
        limit_threads(args.threads)
    extra = {**BASE, **parse_overrides(args.set)}
    runs = plan(args)
    if args.only:
        wanted = set(_split(args.only))
        runs = [r for r in runs if r["name"] in wanted]
    info = machine()
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="fedbank-bench-poison-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    t_all = time.monotonic()
    try:
        for i, run in enumerate(runs):
            out = work / run["name"].replace(" ", "_").replace(",", "")
            if out.exists():
                shutil.rmtree(out)
            config = run_config(args, run, extra)
            say(f"run {i + 1}/{len(runs)}: {run['name']}")
            t0 = time.monotonic()
            policy = branch_policy(args, run, work / f"{out.name}.policy.toml")
            simulate(ROOT, out, num_branches=args.branches, run_config=config, on_line=LineClock(run["name"]),
                     timeout=args.timeout, branch_policy=policy)
            m = final_metrics(out)
            poisoned_norms = [n.get(args.poison_branch) for n in m["update_norms"].values()]
            other = [v for n in m["update_norms"].values() for b, v in n.items() if b != args.poison_branch and v is not None]
            rejected = list(m["rejected"])
            results.append({
                **run, "config": config, "seconds": time.monotonic() - t0,
                "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "loss": m["loss"],
                "accuracy_by_round": m["accuracy_by_round"], "macro_f1_by_round": m["macro_f1_by_round"],
                "rejected": rejected, "failures": m["failures"],
                "poisoned_update_norms": poisoned_norms,
                "honest_update_norm_max": max(other) if other else None,
            })
            say(f"run {i + 1}/{len(runs)}: {run['name']}: accuracy {m['accuracy']:.3f} macro-F1 {m['macro_f1']:.3f} "
                f"({time.monotonic() - t0:.0f} s; rejected {len(rejected)})")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    by_name = {r["name"]: r for r in results}
    clean = by_name.get("clean fedavg")
    tol = args.tolerance / 100
    goals = []
    if clean:
        base = clean["accuracy"]
        for r in results:
            if r["kind"] is None or r["max_norm"]:
                continue
            drop = base - r["accuracy"]
            if r["aggregation.method"] == "fedavg":
                goals.append({"goal": f"{r['kind']}: plain FedAvg is hurt (drop > {args.tolerance:g} points)",
                              "run": r["name"], "drop_points": 100 * drop, "pass": drop > tol})
            else:
                own = by_name.get(f"clean {r['aggregation.method']}")
                goals.append({"goal": f"{r['kind']}: {r['aggregation.method']} within {args.tolerance:g} points of clean FedAvg",
                              "run": r["name"], "drop_points": 100 * drop, "pass": drop <= tol,
                              "drop_vs_own_clean_points": 100 * (own["accuracy"] - r["accuracy"]) if own else None})
        for r in results:
            if r["max_norm"]:
                reasons = [x for x in r["rejected"] if x["branch"] == args.poison_branch and x["reason"] == "norm"]
                drop = base - r["accuracy"]
                goals.append({"goal": f"norm bound {r['max_norm']:g} rejects the x100 update every round, accuracy within "
                                      f"{args.tolerance:g} points", "run": r["name"], "drop_points": 100 * drop,
                              "rejected_rounds": len(reasons), "pass": len(reasons) == args.rounds and drop <= tol})
    result = {
        "benchmark": "poisoning", **info, "branches": args.branches, "rounds": args.rounds, "local_epochs": args.epochs,
        "learning_rate": args.lr, "poison_branch": args.poison_branch, "overrides": extra, "threads": args.threads,
        "tolerance_points": args.tolerance, "chance_accuracy": None, "runs": results, "goals": goals,
        "total_seconds": time.monotonic() - t_all,
    }
    try:
        from common.config.run import RunConfig
        from common.data.sources import simulation_split

        cfg = RunConfig.from_flower({**RunConfig().to_flower(), **extra, "num-branches": args.branches})
        result["chance_accuracy"] = 1 / len(simulation_split(cfg)[3])
    except Exception:  # noqa: BLE001 - informative only
        pass
    write_result(args.out, result)

    rows = []
    for r in results:
        rej = sorted({f"{x['branch']}:{x['reason']}" for x in r["rejected"]})
        rows.append([r["name"], f"{100 * r['accuracy']:.1f} %", f"{100 * r['macro_f1']:.1f} %",
                     " / ".join(f"{100 * a:.1f}" for a in r["accuracy_by_round"]),
                     (f"{len(r['rejected'])} ({', '.join(rej)})" if rej else "0")])
    print(table(["run", "accuracy", "macro-F1", "accuracy by round (0..N)", "rejected updates"], rows))
    if goals:
        print()
        own = lambda g: "" if g.get("drop_vs_own_clean_points") is None else f"{g['drop_vs_own_clean_points']:+.1f} points"  # noqa: E731
        print(table(["goal", "run", "accuracy drop vs clean FedAvg", "drop vs the same aggregator, clean", "result"],
                    [[g["goal"], g["run"], f"{g['drop_points']:+.1f} points", own(g), "PASS" if g["pass"] else "FAIL"]
                     for g in goals]))


if __name__ == "__main__":
    main()
