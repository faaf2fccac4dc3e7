"""Benchmark: 1,000 simulated branches vs 10 (10 trained per round), and a federated round vs central training.

Two figures, each a ratio of two arms measured in one call of this script:

**(i) Scale.**  Two real Flower simulations (``simulations.local.runner.simulate``,
one ``flower-superlink --simulation``, Ray actors of 1 CPU each) with the same
run config and the same 10 branches trained per round:

* ``small``: 10 branches, ``fraction-train`` 1.0;
* ``large``: 1,000 branches, ``fraction-train`` 0.01;

both with ``min-train-branches`` 10 (there is no federated evaluation:
the server evaluates on its own held-out set).  Goal: the time of a round and
the peak memory do not grow with the total number of branches: large / small
at most ``--tolerance`` (1.2).  Data: the synthetic generator; every branch
makes only its own records (``common.data.synthetic.streams``: its own seeded stream, about
``data.records-per-branch`` rows whatever the federation's size), and
``data.test-fraction`` 0.8 makes both held-out sets the same 2,000 rows
(``common.data.synthetic.streams.HELD_OUT_CAP``; the held-out stream depends on its size and
the seed only), so both servers evaluate the same data every round.  What
else grows with the federation is kept out of the rounds: every branch's
envelope keys are made at start-up, the server loads the public ones once,
and Flower's simulation engine, which polls every virtual SuperNode every
0.1 s, answers a poll of a node with nothing to do cheaply
(``server/flower_patches.py``).

*Time per round*: from the ServerApp's timestamped log lines, ``[ROUND k/N]``
(branches sampled, adapter sent) to ``fedbank round k/N: held-out ...``
(replies admitted, ledgered, aggregated, evaluated); the median over rounds
2..N.  Round 1 is left out: it carries each Ray actor's first ClientApp call
(imports, first model build), a one-time warm-up that is reported on its own.
The stamps have 1-second resolution, so the steady mean ``(eval_N - eval_1) /
(N - 1)`` (exact to +-1 s / (N - 1)) and the medians timed by this process
as the lines arrived (``LineClock``, sub-second) are reported beside it.

*Peak memory*: a thread samples every ``--sample-interval`` s (0.5) the RSS
of every process in this process's tree (this process, which runs the
runner; the SuperLink and its SuperExec; ``flwr run``; the simulation process
with the ServerApp, Flower's simulation engine and Ray's driver; Ray's raylet,
GCS and workers), and their PSS every 4th sample (reading it costs ~2 ms per
torch process).  Reported: the peak of the tree's total (RSS double-counts
pages shared between processes, e.g. torch's libraries in each Ray worker;
PSS splits them) and each kind of process's largest RSS.

*CPU per round*: the same samples read each process's CPU time; the CPU
seconds each kind of process used from round 2's start to the last round's
evaluation, divided by the rounds, show where a difference in round time
comes from, independently of how busy the shared machine was.

*One-time start-up*, which legitimately grows with the federation, is
reported separately: generating the envelope keys of every branch
(``simulations.local.runner.ensure_simulation_keys``) and the time from calling the
runner to the first ``[ROUND 1/`` line (SuperLink, ``flwr run``, Ray start
and node registration, the server's keys and held-out set, round 0's
evaluation).

**(ii) Framework overhead.**  One federated round of the ``small`` arm (10
branches, each ``train.local-epochs`` local epochs; steady median) divided by
the same local steps run centrally, in this process, with the project's own
training code: for each of the 10 branches, ``client.training.train_round``
on that branch's own prepared data (``client.branch_data.prepare_branch``,
untimed) with the round plan and noise a branch would use, one branch after
the other, one thread.  The simulation runs 2 Ray workers in parallel on the
2 cores (1 thread each), so a ratio of 0.5 would be a framework that costs
nothing and parallelizes perfectly.  Beside it, the central time including
each branch's per-round set-up (data desensitized and tokenized, model
built), which a branch also does every round.

DP-SGD is on (Opacus, epsilon 8 over the run) in both figures, with the
tiny random base model (hidden 64, 2 layers), 64 tokens, batch 16,
``data.records-per-branch`` 50, 1 local epoch.

    python bench/scale.py                 # 2 pairs of runs, 5 rounds each: ~12 min on 2 cores
    python bench/scale.py --quick         # 3 rounds, 200 branches for 'large': a smoke test
    python bench/scale.py --set train.local-epochs=4

Writes bench/results/scale.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    ROOT, RESULTS, LineClock, final_metrics, human_bytes, limit_threads, machine, median, round_marks, say, table, write_result,
)
from bench.process_tree import MemorySampler, steady_cpu  # noqa: E402

# The same work for both arms; only num-branches and fraction-train differ.
BASE = {
    "dp.enabled": True,
    "dp.target-epsilon": 8.0,
    "data.records-per-branch": 50,
    "data.test-fraction": 0.8,  # 10 x 50 training rows -> a 2,000-row held-out set: the cap, as for 1,000 branches
    "model.max-length": 64,
    "train.batch-size": 16,
    "train.local-epochs": 1,
}


# --------------------------------------------------------------------------- one federated run


def run_arm(name: str, branches: int, fraction: float, args, extra: dict, work: Path) -> dict:
    """One real simulation; returns its timing, memory, start-up and what the rounds did."""
    from common.config.run import RunConfig
    from simulations.local.runner import ensure_simulation_keys, simulate

    out = work / f"{name}-{branches}"
    if out.exists():
        shutil.rmtree(out)
    config = {**extra, "num-server-rounds": args.rounds, "fraction-train": fraction, "min-train-branches": args.sampled}
    cfg = RunConfig.from_flower({**RunConfig().to_flower(), **config, "output-dir": str(out), "num-branches": branches})
    t0 = time.monotonic()
    ensure_simulation_keys(cfg, branches)  # what simulate() does first; timed here as start-up
    keys_s = time.monotonic() - t0
    clock = LineClock(f"{name} ({branches} branches)")
    t1 = time.monotonic()
    with MemorySampler(args.sample_interval) as mem:
        simulate(ROOT, out, num_branches=branches, run_config=config, on_line=clock, timeout=args.timeout)
    wall = time.monotonic() - t1
    steady_cpu_s = steady_cpu(clock, mem)
    stamps = round_marks(clock.text())
    arrival = clock.round_marks()
    metrics = final_metrics(out)
    trained = {int(r): len(b) for r, b in metrics["update_norms"].items()}
    rounds = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["rounds"]
    steps = {r["round"]: sum(b.get("steps") or 0 for b in r.get("branches", {}).values()) for r in rounds if r.get("branches")}
    examples = {r["round"]: sum(b.get("examples") or 0 for b in r.get("branches", {}).values()) for r in rounds if r.get("branches")}
    first_round = clock.first_round_arrival()
    per_round = stamps["per_round_s"]
    result = {
        "arm": name, "branches": branches, "fraction_train": fraction, "config": config,
        "sampled_per_round": trained, "steps_per_round": steps, "examples_per_round": examples,
        "failures": metrics["failures"], "rejected": metrics["rejected"],
        "keys_s": keys_s, "to_first_round_s": first_round, "wall_s": wall,
        "round_s_stamps": per_round, "round_s_arrival": arrival["per_round_s"],
        "median_round_s": median(per_round[1:]) if len(per_round) > 1 else None,
        "round1_s": per_round[0] if per_round else None,
        "steady_round_s": stamps["steady_round_s"],
        "median_round_s_arrival": median(arrival["per_round_s"][1:]) if len(arrival["per_round_s"]) > 1 else None,
        "accuracy": metrics["accuracy"],
        "memory": mem.summary(),
        "steady_cpu_s": steady_cpu_s,
        "out": str(out),
    }
    say(f"{name}: {branches} branches, trained per round {sorted(set(trained.values()))}, rounds (s) {per_round}, "
        f"median 2..N {result['median_round_s']}, steady {stamps['steady_round_s']}, start-up {keys_s:.1f} s keys + "
        f"{first_round or float('nan'):.1f} s to round 1, peak RSS {human_bytes(mem.peak_rss)} (PSS {human_bytes(mem.peak_pss)}), "
        f"{mem.peak_procs} processes")
    return result


# --------------------------------------------------------------------------- central training


def central_round(extra: dict, branches: int, rounds: int, repeats: int, work: Path) -> dict:
    """The local steps of one round of ``branches`` branches, run in this process with the project's training code."""
    import torch

    from client.branch_data import prepare_branch
    from common.privacy.accounting import planned_noise_multiplier
    from client.training import round_plan, train_round
    from common.config.run import RunConfig, branch_settings
    from common.data.labels import label_names
    from common.model.build import build_peft_model, load_tokenizer
    from common.model.adapter import adapter_arrays, load_adapter_arrays

    torch.set_num_threads(1)
    config = {**RunConfig().to_flower(), **extra, "num-server-rounds": rounds, "num-branches": branches,
              "output-dir": str(work / "central")}
    cfg = RunConfig.from_flower(config)
    tokenizer = load_tokenizer(cfg.model)

    def setup(p: int):
        branch = branch_settings({"partition-id": p, "num-partitions": branches}, cfg)
        data = prepare_branch(cfg, branch, tokenizer)
        plan = round_plan(cfg, len(data.train), noise_multiplier=0.0)
        if cfg.dp.enabled:
            plan.noise_multiplier = cfg.dp.noise_multiplier or planned_noise_multiplier(
                cfg.dp.target_epsilon, cfg.dp.delta, plan.sample_rate, plan.steps * rounds, cfg.dp.accountant)
        model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tokenizer))
        load_adapter_arrays(model, initial)  # as a branch loads the global adapter (train.imbalance stays 'none')
        return data, plan, model

    labels = label_names(cfg)
    initial = adapter_arrays(build_peft_model(cfg.model, len(labels), vocab_size=len(tokenizer), label_names=labels))
    train_only, with_setup, steps, rows = [], [], 0, 0
    for rep in range(repeats + 1):  # the first pass warms up (imports, allocator) and is not counted
        t_train = t_all = 0.0
        steps = rows = 0
        for p in range(branches):
            t0 = time.perf_counter()
            data, plan, model = setup(p)
            t1 = time.perf_counter()
            outcome = train_round(model, data.train, cfg, plan, [], seed=p)
            t2 = time.perf_counter()
            t_train += t2 - t1
            t_all += t2 - t0
            steps += outcome.steps
            rows += len(data.train)
        if rep:
            train_only.append(t_train)
            with_setup.append(t_all)
            say(f"central: {branches} branches, {steps} DP-SGD steps over {rows} rows: train_round {t_train:.2f} s, "
                f"with per-branch set-up {t_all:.2f} s")
    return {"branches": branches, "steps": steps, "rows": rows, "train_round_s": train_only, "with_setup_s": with_setup,
            "train_round_median_s": median(train_only), "with_setup_median_s": median(with_setup), "threads": 1}


# --------------------------------------------------------------------------- main


def main() -> None:
    from common.config.overrides import parse_overrides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10, help="branches of the small federation (default 10)")
    parser.add_argument("--large", type=int, default=1000, help="branches of the large federation (default 1000)")
    parser.add_argument("--sampled", type=int, default=10, help="branches trained per round in both (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per run (default 5; rounds 2..N are timed)")
    parser.add_argument("--repeats", type=int, default=2, help="(small, large) pairs, run alternately (default 2)")
    parser.add_argument("--central-repeats", type=int, default=2, help="timed passes of the central round (default 2)")
    parser.add_argument("--tolerance", type=float, default=1.2, help="large/small at most this: 'does not grow' (default 1.2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenMP threads per process (default 1: two 1-CPU Ray actors on two cores)")
    parser.add_argument("--sample-interval", type=float, default=0.5,
                        help="seconds between RSS samples (default 0.5; PSS every 4th sample)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 200 branches for 'large', 1 central pass: a smoke test")
    parser.add_argument("--no-central", dest="central", action="store_false", help="skip (ii), the central comparison")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run-config override for every run")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds one run may take")
    parser.add_argument("--keep", help="keep run directories under this directory (default: temporary, removed)")
    parser.add_argument("--out", default=str(RESULTS / "scale.json"), help="JSON result file")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.large, args.central_repeats, args.repeats = 3, min(args.large, 200), 1, 1
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (round 1 is warm-up)")
    if args.threads:
        limit_threads(args.threads)
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    extra = {**BASE, **parse_overrides(args.set)}
    info = machine()
    say(f"scale: {args.small} vs {args.large} branches, {args.sampled} trained per round, {args.rounds} rounds, "
        f"load average {info['loadavg']}")
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="fedbank-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.monotonic()
    pairs = []
    central = None
    try:
        for rep in range(args.repeats):
            small = run_arm("small", args.small, 1.0 if args.small == args.sampled else args.sampled / args.small, args, extra, work)
            large = run_arm("large", args.large, args.sampled / args.large, args, extra, work)
            pairs.append({"small": small, "large": large})
            if not args.keep:  # branch state of 1,000 branches: free the disk between pairs
                shutil.rmtree(work / f"large-{args.large}", ignore_errors=True)
        if args.central:
            central = central_round(extra, args.small, args.rounds, args.central_repeats, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def ratio(key, sub=None):
        vals = []
        for p in pairs:
            a, b = (p["small"][key], p["large"][key]) if sub is None else (p["small"][key][sub], p["large"][key][sub])
            if a and b:
                vals.append(b / a)
        return median(vals) if vals else None

    def arm_median(arm, key, sub=None):
        vals = [(p[arm][key] if sub is None else p[arm][key][sub]) for p in pairs]
        vals = [v for v in vals if v is not None]
        return median(vals) if vals else None

    tol = args.tolerance
    time_ratio = ratio("median_round_s")
    steady_ratio = ratio("steady_round_s")
    arrival_ratio = ratio("median_round_s_arrival")
    for p in pairs:
        for arm in ("small", "large"):
            cpu = (p[arm]["steady_cpu_s"] or {}).get("cpu_s_per_round")
            p[arm]["cpu_s_per_round_total"] = round(sum(cpu.values()), 2) if cpu else None
    cpu_ratio = ratio("cpu_s_per_round_total")
    rss_ratio = ratio("memory", "peak_total_rss")
    pss_ratio = ratio("memory", "peak_total_pss")
    goals = [
        {"goal": f"time per round (median, rounds 2..N): large / small <= {tol:g}", "ratio": time_ratio,
         "pass": time_ratio is not None and time_ratio <= tol},
        {"goal": f"peak memory of the process tree (RSS): large / small <= {tol:g}", "ratio": rss_ratio,
         "pass": rss_ratio is not None and rss_ratio <= tol},
    ]
    overhead = None
    if central is not None:
        fed_round = arm_median("small", "median_round_s")
        fed_steady = arm_median("small", "steady_round_s")
        overhead = {
            "federated_round_s": fed_round, "federated_steady_round_s": fed_steady,
            "central_train_round_s": central["train_round_median_s"], "central_with_setup_s": central["with_setup_median_s"],
            "ratio": fed_round / central["train_round_median_s"] if fed_round else None,
            "ratio_steady": fed_steady / central["train_round_median_s"] if fed_steady else None,
            "ratio_vs_with_setup": fed_round / central["with_setup_median_s"] if fed_round else None,
            "workers": os.cpu_count(), "central": central,
            "federated_steps_per_round": sorted({v for p in pairs for v in p["small"]["steps_per_round"].values()}),
        }
    result = {
        "benchmark": "scale", **info, "small_branches": args.small, "large_branches": args.large,
        "sampled_per_round": args.sampled, "rounds": args.rounds, "repeats": args.repeats, "quick": args.quick,
        "threads": args.threads, "overrides": extra, "tolerance": tol,
        "time_ratio": time_ratio, "steady_time_ratio": steady_ratio, "arrival_time_ratio": arrival_ratio,
        "cpu_per_round_ratio": cpu_ratio, "peak_rss_ratio": rss_ratio, "peak_pss_ratio": pss_ratio, "goals": goals, "overhead": overhead,
        "pairs": pairs, "total_seconds": time.monotonic() - t_all,
    }
    write_result(args.out, result)

    rows = []
    for i, p in enumerate(pairs):
        for arm in ("small", "large"):
            r = p[arm]
            mem = r["memory"]
            largest = mem["largest_process"] or {}
            sampled = sorted(set(r["sampled_per_round"].values()))
            later = [k for k in r["examples_per_round"] if int(k) > 1]
            work = (f"{median([r['examples_per_round'][k] for k in later]):.0f} / {median([r['steps_per_round'][k] for k in later]):.0f}"
                    if later else "-")
            rows.append([
                f"{r['branches']:,}" + (f" (pair {i + 1})" if len(pairs) > 1 else ""),
                "/".join(map(str, sampled)), work,
                f"{r['median_round_s']:.1f}" if r["median_round_s"] is not None else "-",
                f"{r['steady_round_s']:.2f}" if r["steady_round_s"] is not None else "-",
                f"{r['median_round_s_arrival']:.2f}" if r["median_round_s_arrival"] is not None else "-",
                f"{r['round1_s']:.0f}" if r["round1_s"] is not None else "-",
                f"{r['keys_s']:.1f} + {r['to_first_round_s']:.1f}" if r["to_first_round_s"] is not None else f"{r['keys_s']:.1f}",
                human_bytes(mem["peak_total_rss"]), human_bytes(mem["peak_total_pss"]),
                f"{human_bytes(largest.get('max_rss', 0))} ({largest.get('role', '-')})", str(mem["peak_processes"]),
            ])
    print(table(["branches", "trained/round", "rows / DP-SGD steps per round (median 2..N)", "median round 2..N (s, stamps)", "steady mean (s)", "median (s, arrival)",
                 "round 1 (s)", "start-up: keys + to round 1 (s)", "peak RSS (tree)", "peak PSS (tree)",
                 "largest process (RSS)", "processes"], rows))
    print()
    roles = sorted({role for p in pairs for arm in ("small", "large") for role in p[arm]["memory"]["by_role"]})
    print(table(["process kind", f"max RSS, {args.small:,} branches", f"max RSS, {args.large:,} branches"],
                [[role] + [" / ".join(f"{human_bytes(p[arm]['memory']['by_role'].get(role, {}).get('max_rss', 0))} "
                                      f"(x{p[arm]['memory']['by_role'].get(role, {}).get('processes', 0)})" for p in pairs)
                           for arm in ("small", "large")] for role in roles]))
    print()
    cpu_roles = sorted({role for p in pairs for arm in ("small", "large") for role in (p[arm]["steady_cpu_s"] or {}).get("cpu_s_per_round", {})})

    def cpu_cell(arm: str, role: str) -> str:
        vals = [(p[arm]["steady_cpu_s"] or {}).get("cpu_s_per_round", {}).get(role) for p in pairs]
        return " / ".join("-" if v is None else f"{v:.1f}" for v in vals)

    print(table(["process kind", f"CPU s per round 2..N, {args.small:,} branches", f"CPU s per round 2..N, {args.large:,} branches"],
                [[role, cpu_cell("small", role), cpu_cell("large", role)] for role in cpu_roles]
                + [["**all**", " / ".join(f"{p['small']['cpu_s_per_round_total'] or 0:.1f}" for p in pairs),
                    " / ".join(f"{p['large']['cpu_s_per_round_total'] or 0:.1f}" for p in pairs)]]))
    print()
    fmt = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
    ratio_rows = [[g["goal"], fmt(g["ratio"]), "PASS" if g["pass"] else "FAIL"] for g in goals]
    ratio_rows += [["(steady mean of rounds 2..N, stamps)", fmt(steady_ratio), ""],
                   ["(median, line arrival clock)", fmt(arrival_ratio), ""],
                   ["(CPU seconds per round 2..N, every process of the tree)", fmt(cpu_ratio), ""],
                   ["(peak memory, PSS)", fmt(pss_ratio), ""]]
    print(table(["scale goal", f"{args.large:,} / {args.small:,} branches", "result"], ratio_rows))
    if overhead is not None:
        print()
        print(table(["framework overhead", "seconds", "ratio"], [
            [f"federated round, {args.small} branches (median of rounds 2..N; DP-SGD steps per round "
             f"{'/'.join(map(str, overhead['federated_steps_per_round']))})", f"{overhead['federated_round_s']:.2f}", ""],
            [f"same local steps centrally ({central['steps']} DP-SGD steps, train_round, 1 thread)",
             f"{overhead['central_train_round_s']:.2f}", fmt(overhead["ratio"])],
            ["central incl. each branch's set-up (data prepared, model built)", f"{overhead['central_with_setup_s']:.2f}",
             fmt(overhead["ratio_vs_with_setup"])],
        ]))


if __name__ == "__main__":
    main()
