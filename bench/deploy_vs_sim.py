"""Benchmark: deployment round time / simulation round time, for the same work.

The same run config (default: 3 branches x 3 rounds of DP LoRA training on
the synthetic data, 100 records per branch) is run

* as a **simulation**: ``simulations.local.runner.simulate`` (Flower's simulation
  engine: one ``flower-superlink --simulation``, Ray actors with 1 CPU each),
* as a **local deployment**: ``simulations.deploy.orchestration.deploy_local`` (one
  SuperLink with TLS and SuperNode authentication, one ``flower-supernode``
  per branch, ``--isolation subprocess``; the branches' data written to CSV
  files from the same seeded partition),

alternately, ``--repeats`` times each, so machine load affects both alike.

What is timed: the ServerApp logs ``[ROUND k/N]`` when it samples branches and
sends the global adapter, and ``fedbank round k/N: held-out ...`` when every
reply has been received, admitted, ledgered, aggregated and evaluated.  Both
arms stream those lines to this process through ``flwr run --stream``; the
time between the arrival of round 1's start and round N's evaluation line,
divided by N, is the **mean round time** (monotonic clock; the stream's
delivery delay mostly cancels in the difference).  Start-up (SuperLink,
SuperNodes, Ray, round-0 evaluation) and shutdown are outside it; the **total
wall time** of each call (start-up included) is reported beside it.  Two
cross-checks, both at 1-second resolution: the ledger (every line of a round
carries the second the server aggregated it: (t_N - t_1) / (N - 1)) and, for
the simulation only, the timestamps Flower writes on its log lines (the
deployment's stream carries none).  Round 1 of the simulation includes the
warm-up of its Ray actors (their first ClientApp call imports torch and builds
the model), while the deployment starts a fresh ``flwr-clientapp`` process per
branch every round; so the steady-state rounds 2..N (evaluation to
evaluation) are reported too.  The figures are medians over repeats of the
per-pair ratios.

    python bench/deploy_vs_sim.py [--repeats 3] [--rounds 3] [--branches 3] [--set KEY=VALUE ...]

Writes bench/results/deploy_vs_sim.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    ROOT, RESULTS, LineClock, final_metrics, ledger_marks, machine, median, round_marks, say, table, write_result,
)

BASE = {"data.records-per-branch": 100}


def run_sim(out: Path, branches: int, config: dict, timeout: float) -> dict:
    from simulations.local.runner import simulate

    clock = LineClock("simulation")
    t0 = time.monotonic()
    simulate(ROOT, out, num_branches=branches, run_config=config, on_line=clock, timeout=timeout)
    wall = time.monotonic() - t0
    stamped = round_marks((out / "flower.log").read_text(encoding="utf-8", errors="replace"))
    return _summary("simulation", out, wall, clock, stamped)


def run_deploy(out: Path, branches: int, config: dict, timeout: float) -> dict:
    from simulations.deploy.orchestration import deploy_local

    clock = LineClock("deployment")
    t0 = time.monotonic()
    deploy_local(out, branches, config, on_line=clock, on_event=lambda m: say(f"deployment: {m}"), timeout=timeout)
    wall = time.monotonic() - t0
    return _summary("deployment", out, wall, clock, None)


def _summary(kind: str, out: Path, wall: float, clock: LineClock, stamped: dict | None) -> dict:
    marks = clock.round_marks()
    if marks["mean_round_s"] is None:
        raise SystemExit(f"{kind}: no round lines arrived on the stream of the run in {out}")
    metrics = final_metrics(out)
    ledger = ledger_marks(out)
    result = {
        "kind": kind, "wall_s": wall, **marks,
        "ledger_mean_round_s": ledger["mean_round_s"],
        "log_stamp_mean_round_s": stamped["mean_round_s"] if stamped else None,
        "startup_s": clock.first_round_arrival(),
        "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
        "wire_bytes_round1": metrics["wire_bytes"].get(1),
    }
    checks = f"ledger {ledger['mean_round_s']:.1f} s" if ledger["mean_round_s"] is not None else "ledger -"
    if stamped and stamped["mean_round_s"] is not None:
        checks += f", log stamps {stamped['mean_round_s']:.1f} s"
    say(f"{kind}: {marks['rounds']} rounds in {marks['span_s']:.1f} s = {marks['mean_round_s']:.1f} s/round, rounds 2..N "
        f"{marks['steady_round_s']:.1f} s/round (cross-checks: {checks}); wall {wall:.0f} s; accuracy {metrics['accuracy']:.3f}")
    return result


def main() -> None:
    from common.config.overrides import parse_overrides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--branches", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind, alternating (default 3)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run-config override (repeatable)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one run may take")
    parser.add_argument("--keep", help="keep the run directories under this directory (default: a temporary one, removed)")
    parser.add_argument("--out", default=str(RESULTS / "deploy_vs_sim.json"), help="JSON result file")
    args = parser.parse_args()
    config = {**BASE, "num-server-rounds": args.rounds, "min-train-branches": args.branches, **parse_overrides(args.set)}
    info = machine()
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="fedbank-bench-dvs-"))
    work.mkdir(parents=True, exist_ok=True)
    pairs = []
    try:
        for i in range(args.repeats):
            order = ("simulation", "deployment") if i % 2 == 0 else ("deployment", "simulation")
            pair = {}
            for kind in order:
                say(f"repeat {i + 1}/{args.repeats}: {kind} of {args.branches} branches x {args.rounds} rounds")
                out = work / f"{kind}-{i}"
                fn = run_sim if kind == "simulation" else run_deploy
                pair[kind] = fn(out, args.branches, config, args.timeout)
            pair["round_ratio"] = pair["deployment"]["mean_round_s"] / pair["simulation"]["mean_round_s"]
            pair["wall_ratio"] = pair["deployment"]["wall_s"] / pair["simulation"]["wall_s"]
            say(f"repeat {i + 1}: deployment/simulation round time {pair['round_ratio']:.2f}x, wall {pair['wall_ratio']:.2f}x")
            pairs.append(pair)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sim_round = median([p["simulation"]["mean_round_s"] for p in pairs])
    dep_round = median([p["deployment"]["mean_round_s"] for p in pairs])
    result = {
        "benchmark": "deploy_vs_sim", **info, "branches": args.branches, "rounds": args.rounds, "repeats": args.repeats,
        "run_config": config, "pairs": pairs,
        "simulation_mean_round_s": sim_round, "deployment_mean_round_s": dep_round,
        "round_ratio_median": median([p["round_ratio"] for p in pairs]),
        "wall_ratio_median": median([p["wall_ratio"] for p in pairs]),
        "steady_ratio_median": median([p["deployment"]["steady_round_s"] / p["simulation"]["steady_round_s"] for p in pairs]),
        "ledger_ratio_median": median([p["deployment"]["ledger_mean_round_s"] / p["simulation"]["ledger_mean_round_s"] for p in pairs]),
        "simulation_wall_s": median([p["simulation"]["wall_s"] for p in pairs]),
        "deployment_wall_s": median([p["deployment"]["wall_s"] for p in pairs]),
    }
    write_result(args.out, result)
    ratios = ", ".join(f"{p['round_ratio']:.2f}" for p in pairs)
    print(table(["measure", "simulation", "deployment (TLS, node auth, subprocess isolation)", "deployment / simulation"], [
        [f"mean round time, {args.branches} branches x {args.rounds} rounds (median of {args.repeats})",
         f"{sim_round:.1f} s", f"{dep_round:.1f} s", f"**{result['round_ratio_median']:.2f}x** (per repeat: {ratios})"],
        ["rounds 2..N only (round 1 pays the simulation's Ray-actor warm-up)",
         f"{median([p['simulation']['steady_round_s'] for p in pairs]):.1f} s",
         f"{median([p['deployment']['steady_round_s'] for p in pairs]):.1f} s",
         f"**{result['steady_ratio_median']:.2f}x**"],
        ["cross-check of rounds 2..N: the ledger's per-round seconds",
         f"{median([p['simulation']['ledger_mean_round_s'] for p in pairs]):.1f} s",
         f"{median([p['deployment']['ledger_mean_round_s'] for p in pairs]):.1f} s",
         f"{result['ledger_ratio_median']:.2f}x"],
        ["start-up to round 1 (incl. round-0 evaluation)", f"{median([p['simulation']['startup_s'] for p in pairs]):.0f} s",
         f"{median([p['deployment']['startup_s'] for p in pairs]):.0f} s", ""],
        ["total wall time of the call (start-up included)", f"{result['simulation_wall_s']:.0f} s",
         f"{result['deployment_wall_s']:.0f} s", f"{result['wall_ratio_median']:.2f}x"],
    ]))


if __name__ == "__main__":
    main()
