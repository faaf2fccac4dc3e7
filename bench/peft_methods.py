"""Benchmark: the fine-tuning methods (``model.peft``) on Banking77 with the pretrained base, DP at epsilon 8.

Every method runs with the settings of ``bench/real_data.py --base all-MiniLM-L6-v2 --preset minilm-dp-lora``
on Banking77 (10 branches, Dirichlet 0.5, seed 42, DP-SGD at epsilon 8, batch 128, SGD momentum 0.9,
lr 2, 10 rounds x 1 epoch), ``model.peft`` switched (``lora`` is the preset itself: LoRA r8 alpha 2 on
query,value of the top layer + head).  Per method:

1. trainable parameters (and the arrays that travel: raw bytes);
2. bytes a branch sends per round: the real ClientApp's sealed reply (``bench/envelope.py``'s
   ``real_exchange``: one DP round of branch 0 on its Banking77 rows, deflated into the objects
   Flower pushes);
3. DP step ÷ non-DP step: one round of the project's ``train_round`` on the same rows (the first
   ``--steps`` x 128 of branch 0's desensitized, tokenized Banking77 messages), a fresh model per
   round, both arms of every method interleaved in one process (order rotated each repeat), median
   of ``--repeats``; process CPU time (the machine is shared: other jobs disturb it far less than wall
   time), per step and per example (DP's Poisson batches vary in size);
4. peak memory growth of a DP round (and of a non-DP round) at a branch: the process's RSS over the
   round start, sampled every 5 ms (``bench/chat_measure.PeakMemory``), median round;
5. held-out accuracy and macro-F1 of arm (c), the federated DP run (a real Flower simulation through
   ``bench/real_data.py``'s ``federated``; ~15 min or more per method on 2 cores).  ``lora``'s (c) is taken
   from ``--real-data`` when that file ran the same settings.  ``--skip-accuracy`` leaves part 5 out,
   ``--accuracy-only`` runs only part 5; ``--reuse FILE`` keeps an earlier result's figures for the parts
   and methods not run now.

Method settings beyond the preset: ``p-tuning`` needs ``model.pooling = head`` (virtual tokens must not be
mean-pooled); ``ia3`` rescales PEFT's BERT default (key, value, output.dense of every layer); ``freeze``
trains the top layer (``model.freeze.top-layers = 1``, the layer LoRA adapts) and the head.  ``prefix`` is
refused for classification by design: its entry is the refusal's one-line error.

    python bench/peft_methods.py                       # the whole table (parts 1-5, an hour or more)
    python bench/peft_methods.py --skip-accuracy       # parts 1-4 (~10 min on a busy 2-core box)
    python bench/peft_methods.py --accuracy-only --methods ffa-lora --reuse bench/results/peft_methods.json

Writes bench/results/peft_methods.json (with the machine and its load average) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import real_data  # noqa: E402
from bench.chat_measure import PeakMemory, TokenCounter, counted_set  # noqa: E402
from bench.envelope import real_exchange  # noqa: E402
from bench.levers import REFERENCE_PRESET  # noqa: E402
from bench.harness import RESULTS, human_bytes, limit_threads, machine, median, say, table, write_result  # noqa: E402

#: model.peft -> the run-config keys it sets over the minilm-dp-lora preset.
METHODS: dict[str, dict] = {
    "lora": {},
    "ffa-lora": {"model.peft": "ffa-lora"},
    "prefix": {"model.peft": "prefix"},
    "p-tuning": {"model.peft": "p-tuning", "model.pooling": "head"},
    "ia3": {"model.peft": "ia3"},
    "freeze": {"model.peft": "freeze"},
}
REFUSED = "n/a: refused, see README"
DATASET = "banking77"


def flat_config(method: str, args) -> dict:
    """The federated run config of ``method``: real_data.py's minilm-dp-lora Banking77 config, model.peft switched."""
    sets = [f"{k}={v}" for k, v in {**METHODS[method], **args.overrides}.items()]
    argv = ["--base", real_data.MINILM, "--preset", REFERENCE_PRESET, "--datasets", DATASET, "--data-dir", str(args.data_dir)]
    return real_data.base_config(DATASET, real_data.parse_args(argv + [x for s in sets for x in ("--set", s)]))


# --------------------------------------------------------------------------- parts 1 and 2


def static_figures(method: str, flat: dict, labels: list[str], work: Path) -> dict:
    """Trainable parameters, travelling arrays and the real sealed reply of one branch's DP round."""
    from common.errors import FedbankError
    from common.model.adapter import adapter_arrays
    from common.model.build import build_peft_model, load_tokenizer

    cfg = real_data.run_config({**flat, "output-dir": str(work / f"{method}-reply")})
    tok = load_tokenizer(cfg.model)
    try:
        model = build_peft_model(cfg.model, len(labels), vocab_size=len(tok))
    except FedbankError as err:
        return {"refused": REFUSED, "error": str(err)}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    arrays = adapter_arrays(model)
    raw = sum(a.nbytes for a in arrays.values())
    full = sum(p.numel() * p.element_size() for p in model.parameters())
    del model
    t0 = time.monotonic()
    sealed = real_exchange(cfg, len(labels), envelope=True)
    say(f"{method}: {trainable:,} trainable of {total:,}; {len(arrays)} arrays, {human_bytes(raw)} raw; sealed reply "
        f"{sealed['reply_wire_bytes']:,} B (ClientApp round {time.monotonic() - t0:.0f} s)")
    return {"trainable_params": trainable, "total_params": total, "trainable_share": trainable / total,
            "travelling_arrays": len(arrays), "travelling_raw_bytes": raw, "full_model_bytes": full,
            "reply_wire_bytes": sealed["reply_wire_bytes"], "envelope_bytes": sealed["envelope_bytes"],
            "train_message_wire_bytes": sealed["train_message_wire_bytes"],
            "reply_over_raw": sealed["reply_wire_bytes"] / raw}


# --------------------------------------------------------------------------- parts 3 and 4


def one_round(cfg, tokens, num_labels: int, vocab: int, noise: float, counter: TokenCounter) -> dict:
    """A fresh model (untimed), one ``train_round`` (timed: CPU and wall; RSS sampled)."""
    from client.training import round_plan, train_round
    from common.model.build import build_peft_model

    model = build_peft_model(cfg.model, num_labels, vocab_size=vocab)
    data = counted_set(tokens, counter)
    plan = round_plan(cfg, len(data), noise_multiplier=noise if cfg.dp.enabled else 0.0)
    counter.reset()
    with PeakMemory("cpu") as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = train_round(model, data, cfg, plan, [], seed=1)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    del model, outcome
    return {"steps": plan.steps, "examples": counter.examples, "cpu_s": cpu, "wall_s": wall,
            "cpu_step_ms": 1e3 * cpu / plan.steps, "cpu_example_ms": 1e3 * cpu / max(counter.examples, 1),
            "wall_step_ms": 1e3 * wall / plan.steps, "mem_growth_bytes": mem.growth}


def step_costs(flats: dict[str, dict], args) -> tuple[dict, dict]:
    """Parts 3 and 4 for every (buildable) method, arms interleaved; and the data they ran on."""
    from client.branch_data import prepare_branch
    from client.training import round_plan
    from common.config.run import branch_settings
    from common.model.build import load_tokenizer
    from common.privacy.accounting import planned_noise_multiplier
    from common.tasks.tokens import TokenizedSet

    cfg0 = real_data.run_config(next(iter(flats.values())))
    tok = load_tokenizer(cfg0.model)
    branch = branch_settings({"partition-id": 0, "num-partitions": cfg0.federation.num_branches}, cfg0)
    data = prepare_branch(cfg0, branch, tok)
    # The noise branch 0 adds in the federation: its plan over the whole run (as client.app derives it).
    plan = round_plan(cfg0, len(data.train), 0.0)
    noise = planned_noise_multiplier(cfg0.dp.target_epsilon, cfg0.dp.delta, plan.sample_rate,
                                     plan.steps * cfg0.federation.num_rounds, cfg0.dp.accountant)
    n = min(len(data.train), args.steps * cfg0.train.batch_size)
    tokens = TokenizedSet(data.train.input_ids[:n], data.train.attention_mask[:n], data.train.labels[:n])
    m = min(n, cfg0.train.batch_size)
    warm = TokenizedSet(tokens.input_ids[:m], tokens.attention_mask[:m], tokens.labels[:m])
    info = {"branch_rows": len(data.train), "rows": n, "batch": cfg0.train.batch_size, "noise_multiplier": noise,
            "mean_tokens": float(tokens.attention_mask.sum(1).float().mean()), "labels": len(data.labels)}
    say(f"timing on branch-0's first {n} of {len(data.train)} rows ({info['mean_tokens']:.1f} tokens each), batch "
        f"{cfg0.train.batch_size}, noise multiplier {noise:.3f}; {args.warmup} warm-up + {args.repeats} rounds per arm")
    arms = [(m_, dp) for m_ in flats for dp in (False, True)]
    cfgs = {(m_, dp): real_data.run_config({**flats[m_], "dp.enabled": dp, "num-server-rounds": 1,
                                            "train.local-epochs": 1}) for m_, dp in arms}
    rounds: dict = {arm: [] for arm in arms}
    counter = TokenCounter()
    for rep in range(args.warmup + args.repeats):
        k = rep % len(arms)
        for arm in arms[k:] + arms[:k]:
            r = one_round(cfgs[arm], tokens if rep >= args.warmup else warm, len(data.labels), len(tok), noise, counter)
            tag = f"round {rep - args.warmup + 1}/{args.repeats}" if rep >= args.warmup else "warm-up"
            say(f"{tag} {arm[0]:<8} {'DP' if arm[1] else 'non-DP':<6} {r['steps']} steps, {r['examples']} examples: "
                f"{r['cpu_step_ms']:.0f} CPU-ms/step ({r['wall_step_ms']:.0f} wall), RSS +{human_bytes(r['mem_growth_bytes'])}")
            if rep >= args.warmup:
                rounds[arm].append(r)
    out = {}
    for method in flats:
        nd, dp = rounds[(method, False)], rounds[(method, True)]
        s = {f"{key}_{tag}": median([x[key] for x in xs]) for tag, xs in (("nondp", nd), ("dp", dp))
             for key in ("cpu_step_ms", "cpu_example_ms", "wall_step_ms", "mem_growth_bytes")}
        s["dp_over_nondp_cpu_step"] = s["cpu_step_ms_dp"] / s["cpu_step_ms_nondp"]
        s["dp_over_nondp_cpu_example"] = s["cpu_example_ms_dp"] / s["cpu_example_ms_nondp"]
        s["dp_over_nondp_wall_step"] = s["wall_step_ms_dp"] / s["wall_step_ms_nondp"]
        s["rounds"] = {"nondp": nd, "dp": dp}
        out[method] = s
    return out, info


# --------------------------------------------------------------------------- part 5


def accuracy(method: str, flat: dict, args, work: Path) -> dict:
    """Arm (c): the real federated DP run of ``method`` (or lora's from ``--real-data`` when it ran these settings)."""
    if method == "lora" and args.real_data and args.real_data.is_file():
        try:
            arms = real_data.reused_arms([args.real_data], DATASET, flat)
        except SystemExit as why:
            say(f"lora: {why}; running (c)")
        else:
            if "c" in arms:
                return {k: arms["c"][k] for k in ("accuracy", "macro_f1", "by_round", "epsilon_max", "seconds",
                                                  "failures", "reused_from") if k in arms["c"]}
    say(f"{method}: arm (c), federated DP, {flat['num-branches']} branches x {flat['num-server-rounds']} rounds")
    r = real_data.federated(flat, dp=True, out=work / f"{method}-c", label=f"{method} (c)", timeout=args.timeout)
    say(f"{method} (c): accuracy {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f} ({r['seconds'] / 60:.1f} min)")
    return {k: r[k] for k in ("accuracy", "macro_f1", "by_round", "epsilon_max", "noise_multiplier", "rejected",
                              "failures", "seconds") if k in r}


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    from common.config.overrides import parse_overrides

    doc = __doc__.splitlines()
    parser = argparse.ArgumentParser(description=doc[0], epilog="\n".join(doc[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)} (default all)")
    parser.add_argument("--skip-accuracy", action="store_true", help="parts 1-4 only (no federated runs)")
    parser.add_argument("--accuracy-only", action="store_true", help="part 5 only (the federated DP runs)")
    parser.add_argument("--steps", type=int, default=3, help="steps of batch 128 per timed round (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per method and arm (default 3; median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed one-step rounds per arm first (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process and of each simulated "
                        "branch (default 1: on a busy 2-core box more threads spin against other jobs)")
    parser.add_argument("--data-dir", type=Path, default=real_data.ROOT.parent / "shared" / "data",
                        help="folder holding banking77/ (default <repo>/../shared/data)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run-config override, every method")
    parser.add_argument("--real-data", type=Path, default=RESULTS / "real_data_minilm_banking77.json",
                        help="a bench/real_data.py minilm-dp-lora result whose arm (c) is lora's accuracy (same settings only)")
    parser.add_argument("--reuse", action="append", default=[], type=Path, metavar="FILE",
                        help="an earlier result of this script: its figures stay for what is not run now (repeatable, "
                             "later files win)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one federated run may take")
    parser.add_argument("--out", type=Path, default=RESULTS / "peft_methods.json", help="JSON result file")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if unknown := [m for m in args.methods if m not in METHODS]:
        parser.error(f"--methods: unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if args.skip_accuracy and args.accuracy_only:
        parser.error("--skip-accuracy and --accuracy-only exclude each other: give one")
    if not (args.data_dir / "banking77" / "train.csv").is_file():
        parser.error(f"{args.data_dir / 'banking77' / 'train.csv'} not found: set --data-dir")
    args.overrides = parse_overrides(args.set)
    return args


def main(argv=None) -> None:
    import json

    import torch
    from transformers.utils import logging as hf_logging

    args = parse_args(argv)
    limit_threads(args.threads)
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # a weight-loading bar on every model build
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    info = machine()
    earlier: dict = {"methods": {}, "runs": []}
    for path in args.reuse:
        try:
            prior = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SystemExit(f"--reuse {path}: cannot read it ({err}): give a JSON this script wrote") from None
        for m, figures in prior.get("methods", {}).items():
            earlier["methods"].setdefault(m, {}).update(figures)
        earlier["timing"] = prior.get("timing") or earlier.get("timing")
        # The earlier runs' commands and load, so reused figures keep what they were measured under.
        earlier["runs"] += prior.get("earlier_runs", []) + [
            {k: prior.get(k) for k in ("command", "loadavg", "loadavg_end", "machine", "cpus", "torch_threads")}]
    results: dict = {m: dict(earlier["methods"].get(m, {})) for m in METHODS if m in earlier["methods"] or m in args.methods}
    flats = {m: flat_config(m, args) for m in args.methods}
    work = Path(tempfile.mkdtemp(prefix="fedbank-bench-peft-"))
    timing_info = None
    try:
        if not args.accuracy_only:
            labels = _labels(flats[args.methods[0]])
            for m in args.methods:
                results[m].update(config=flats[m], overrides=METHODS[m], **static_figures(m, flats[m], labels, work))
            buildable = {m: flats[m] for m in args.methods if "refused" not in results[m]}
            if buildable:
                costs, timing_info = step_costs(buildable, args)
                for m, s in costs.items():
                    results[m].update(s)
        if not args.skip_accuracy:
            for m in args.methods:
                if "refused" in results[m]:
                    continue
                results[m]["c"] = accuracy(m, flats[m], args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result(args.out, {"benchmark": "peft_methods", **info, "dataset": DATASET, "preset": REFERENCE_PRESET,
                            "timing": timing_info or earlier.get("timing"), "steps": args.steps, "repeats": args.repeats,
                            "command": " ".join(["python", "bench/peft_methods.py", *(argv if argv is not None else sys.argv[1:])]),
                            "earlier_runs": earlier["runs"], "methods": results})
    print(render(results))


def _labels(flat: dict) -> list[str]:
    from common.model.build import load_tokenizer
    from server.evaluation.holdout import holdout_set

    cfg = real_data.run_config(flat)
    return holdout_set(cfg, load_tokenizer(cfg.model))[1]


def render(results: dict) -> str:
    rows = []
    for m, r in results.items():
        if "refused" in r:
            rows.append([f"`{m}`", r["refused"], "", "", "", ""])
            continue
        c = r.get("c")
        acc = f"{100 * c['accuracy']:.1f} % ({100 * c['macro_f1']:.1f})" if c else "not measured yet"
        if c and c.get("failures"):
            acc = f"INVALID: {len(c['failures'])} branch rounds failed (last round {acc})"
        rows.append([
            f"`{m}`", f"{r['trainable_params']:,} ({100 * r['trainable_share']:.2f} %)" if "trainable_params" in r else "",
            f"{r['reply_wire_bytes']:,} B ({human_bytes(r['reply_wire_bytes'])})" if "reply_wire_bytes" in r else "",
            f"**{r['dp_over_nondp_cpu_step']:.2f}x** ({r['cpu_step_ms_dp']:.0f} / {r['cpu_step_ms_nondp']:.0f} ms; "
            f"per example {r['dp_over_nondp_cpu_example']:.2f}x)" if "dp_over_nondp_cpu_step" in r else "",
            f"+{human_bytes(r['mem_growth_bytes_dp'])} (non-DP +{human_bytes(r['mem_growth_bytes_nondp'])})"
            if "mem_growth_bytes_dp" in r else "", acc])
    return table(["method", "trainable parameters", "bytes sent per round (sealed reply)", "DP ÷ non-DP CPU step",
                  "peak RSS growth, DP round", "accuracy (macro-F1), arm (c)"], rows)


if __name__ == "__main__":
    main()
