"""Benchmark: chat (causal-LM LoRA SFT) training throughput per branch, with and without DP-SGD.

Issue 7's "larger config": tokens per second a branch trains, with and
without DP, peak memory, and the DP / non-DP step-time ratio.  Everything
runs through the project's own code path: dialogues from the seeded
generator (``common.data.synthetic.dialogues.generate_dialogues``), desensitized on
both sides (``common.privacy.render.Renderer``), tokenized with the
loss on the reply only (``common.tasks.chat.tokenize_dialogues``), a fresh LoRA
causal LM per round (``common.model.build.build_peft_model(..., causal=True)``)
trained by ``client.training.train_round`` for one round of a fixed number
of steps (``round_plan``: ``steps x batch`` dialogues, one local epoch; with DP
the noise from ``common.privacy.accounting.planned_noise_multiplier``, Poisson sampling at
q = 1 / steps).

Arms (``--arms``), measured alternately in one process, one round of each per
repeat, the order rotated every repeat so that load drift hits all alike:

  nondp        dp.enabled = false
  dp           DP-SGD, Opacus per-sample gradients (grad_sample_mode "hooks")
  ghost        DP-SGD, dp.ghost-clipping = true (per-sample norms, no per-sample gradients)
  dp-split     "dp" with train.physical-batch-size < train.batch-size (Opacus BatchMemoryManager)
  ghost-split  "ghost" with the same split
  nondp-split  "nondp" with the same split (gradient accumulation)

Per arm (medians over repeats): step time (round wall time / steps, the
round's set-up -- make_private, loader, adapter extraction -- included;
on CPU also the process's CPU time per step, which other jobs on a shared
machine disturb far less than wall time),
examples per step (Poisson with DP), non-pad tokens/s and reply tokens/s
(tokens the data loader actually delivered: attention-mask ones, and labels
other than -100, i.e. the reply and its end-of-sequence, which carry the
loss), the DP / non-DP ratio of the step time and of the time per non-pad
token (the latter corrects for Poisson batch sizes), and peak memory:

  CUDA  torch.cuda.max_memory_allocated() over the round (reset before it),
        absolute (base model weights included) and growth over the round start;
  CPU   growth of the process's resident set (RSS) over the round start,
        sampled every 5 ms by a thread (psutil) after gc + malloc_trim, so it
        is what the round adds on top of the loaded model; the table shows
        the median round (approximate: allocator caching and the sampling
        interval; the JSON also has the largest).

Configurations (``--config``; ``auto`` = ``gpu`` with CUDA, else ``small``):

  tiny   tiny-llama hidden 64, 2 layers, 2 heads; length 128, batch 16, split 4
  small  tiny-llama hidden 256, 4 layers, 4 heads; length 256, batch 16, split 4
  gpu    tiny-llama hidden 768, 12 layers, 12 heads; length 512, batch 32, split 8,
         bf16 autocast (train.mixed-precision = auto)

``--model PATH`` trains a real local causal LM instead of the tiny one (with
the chosen config's length, batch and split).  ``--quick`` is a smoke run
(tiny, 3 steps, 2 repeats).  ``--set KEY=VALUE`` overrides any run-config key.

    python bench/chat_throughput.py [--config auto|tiny|small|gpu] [--device auto|cpu|cuda]
        [--steps N] [--repeats N] [--arms nondp,dp,ghost,dp-split] [--model PATH] [--threads N] [--quick]

Progress on stderr, a Markdown table (and README rows) on stdout; JSON in
bench/results/chat_throughput.json (``small``), chat_throughput_CONFIG.json
otherwise, with the machine, its load average and the device.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.chat_measure import Arm, TokenCounter, train_once  # noqa: E402
from bench.harness import RESULTS, human_bytes, machine, median, say, table, write_result  # noqa: E402

CONFIGS: dict[str, dict] = {
    "tiny": dict(hidden=64, layers=2, heads=2, max_length=128, batch=16, split=4, steps=10, repeats=7),
    "small": dict(hidden=256, layers=4, heads=4, max_length=256, batch=16, split=4, steps=8, repeats=3),
    "gpu": dict(hidden=768, layers=12, heads=12, max_length=512, batch=32, split=8, steps=20, repeats=5),
}
#: arm -> (dp.enabled, dp.ghost-clipping, split into physical batches)
ARMS: dict[str, tuple[bool, bool, bool]] = {
    "nondp": (False, False, False),
    "dp": (True, False, False),
    "ghost": (True, True, False),
    "dp-split": (True, False, True),
    "ghost-split": (True, True, True),
    "nondp-split": (False, False, True),
}
DEFAULT_ARMS = "nondp,dp,ghost,dp-split"
DIALOGUE_SEED = 7


# --------------------------------------------------------------------------- the arms' run configs
def run_config(args, preset: dict, arm: str, device: str):
    from common.config.overrides import parse_overrides

    from common.config.run import RunConfig

    dp, ghost, split = ARMS[arm]
    flat = {
        **RunConfig().to_flower(),
        "task": "chat",
        "model.name": args.model or "tiny-llama",
        "model.max-length": preset["max_length"],
        "model.tiny.hidden-size": preset["hidden"],
        "model.tiny.layers": preset["layers"],
        "model.tiny.heads": preset["heads"],
        "train.batch-size": preset["batch"],
        "train.physical-batch-size": preset["split"] if split else args.physical,
        "train.local-epochs": 1,
        "train.device": device,
        "train.mixed-precision": args.precision,
        "dp.enabled": dp,
        "dp.ghost-clipping": ghost,
        "num-server-rounds": 1,
        **parse_overrides(args.set),
    }
    return RunConfig.from_flower(flat)


# --------------------------------------------------------------------------- summary
def summarize(arms: list[Arm], device: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    base = next((a for a in arms if a.name == "nondp"), None)
    for arm in arms:
        r = arm.rounds
        s = {
            "dp": arm.cfg.dp.enabled, "ghost_clipping": arm.cfg.dp.ghost_clipping,
            "batch": arm.cfg.train.batch_size, "physical_batch": arm.physical,
            "rounds": len(r), "steps_per_round": median([x["steps"] for x in r]),
            "step_ms": median([x["step_ms"] for x in r]),
            "step_ms_all": [x["step_ms"] for x in r],
            "cpu_step_ms": median([x["cpu_step_ms"] for x in r]),
            "cpu_step_ms_all": [x["cpu_step_ms"] for x in r],
            "round_s": median([x["wall_s"] for x in r]),
            "setup_ms": median([x["setup_ms"] for x in r if x["setup_ms"] is not None] or [float("nan")]),
            "examples_per_step": median([x["examples_per_step"] for x in r]),
            "nonpad_tok_s": median([x["nonpad_tok_s"] for x in r]),
            "reply_tok_s": median([x["reply_tok_s"] for x in r]),
            "nonpad_tok_per_cpu_s": median([x["nonpad_tokens"] / x["cpu_s"] for x in r]),
            "reply_tok_per_cpu_s": median([x["reply_tokens"] / x["cpu_s"] for x in r]),
            "padded_tok_s": median([x["padded_tokens"] / x["wall_s"] for x in r]),
            "us_per_nonpad_token": median([x["us_per_nonpad_token"] for x in r]),
            "mem_peak_bytes": max(x["mem_peak_bytes"] for x in r),
            "mem_growth_bytes": max(x["mem_growth_bytes"] for x in r),
            "mem_growth_median_bytes": median([x["mem_growth_bytes"] for x in r]),
            "mean_loss": median([x["mean_loss"] for x in r]),
            "noise_multiplier": r[0]["noise_multiplier"],
        }
        if base is not None and arm is not base:
            b = base.rounds
            s["step_ratio"] = s["step_ms"] / median([x["step_ms"] for x in b])
            s["token_time_ratio"] = s["us_per_nonpad_token"] / median([x["us_per_nonpad_token"] for x in b])
            # Paired within a repeat (same load): median of the per-repeat ratios.
            s["step_ratio_paired"] = median([x["step_ms"] / y["step_ms"] for x, y in zip(r, b)])
            # CPU time of the process (all its threads): what the step cost, however much of the cores other jobs took.
            s["cpu_step_ratio"] = s["cpu_step_ms"] / median([x["cpu_step_ms"] for x in b])
        out[arm.name] = s
    return out


def memory_cell(s: dict, device: str) -> str:
    if device == "cuda":  # deterministic: the largest round's peak
        return f"{human_bytes(s['mem_peak_bytes'])} (+{human_bytes(s['mem_growth_bytes'])})"
    return f"+{human_bytes(s['mem_growth_median_bytes'])}"  # sampled RSS: the median round


def main() -> None:
    doc = __doc__.splitlines()
    parser = argparse.ArgumentParser(description=doc[0], epilog="\n".join(doc[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["auto", *CONFIGS], default="auto",
                        help="model/batch preset (default auto: gpu with CUDA, else small)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="train.device (default auto)")
    parser.add_argument("--model", help="local path (or hub id) of a causal LM to benchmark instead of tiny-llama")
    parser.add_argument("--arms", default=DEFAULT_ARMS, help=f"comma-separated, of {', '.join(ARMS)} (default {DEFAULT_ARMS})")
    parser.add_argument("--steps", type=int, help="DP-SGD steps per round (default: the config's)")
    parser.add_argument("--repeats", type=int, help="timed rounds per arm (default: the config's)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed 2-step rounds per arm first (default 1)")
    parser.add_argument("--batch", type=int, help="train.batch-size (default: the config's)")
    parser.add_argument("--max-length", type=int, help="model.max-length (default: the config's)")
    parser.add_argument("--split", type=int, help="train.physical-batch-size of the *-split arms (default: the config's)")
    parser.add_argument("--physical", type=int, default=0, help="train.physical-batch-size of the other arms (default 0: no split)")
    parser.add_argument("--precision", choices=["auto", "off", "bf16"], default="auto",
                        help="train.mixed-precision (default auto: bf16 on a CUDA GPU that has it, else fp32)")
    parser.add_argument("--threads", type=int, default=-1,
                        help="torch CPU threads; 0 = torch's default; default -1 (auto): 1 on a CPU whose load average "
                             "is already at its core count (OpenMP threads would spin on cores other jobs hold: "
                             "3-9x slower steps measured on a busy 2-core machine), else torch's default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run-config override (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny config, 3 steps, 2 repeats")
    parser.add_argument("--out", help="JSON result file (default bench/results/chat_throughput[_CONFIG].json)")
    args = parser.parse_args()

    import torch

    from common.errors import FedbankError

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but PyTorch sees no CUDA GPU here: use --device auto or cpu")
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    threads_why, args.threads_arg = "--threads", args.threads
    if args.threads < 0:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        busy = device == "cpu" and load >= cores - 0.5
        args.threads = 1 if busy else 0
        threads_why = f"auto: load average {load:.1f} on {cores} cores" + (", busy" if busy else "")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    args.threads_why = threads_why
    config = ("tiny" if args.quick else ("gpu" if device == "cuda" else "small")) if args.config == "auto" else args.config
    preset = dict(CONFIGS[config])
    if args.quick:
        preset.update(steps=3, repeats=2)
    for key, value in (("steps", args.steps), ("repeats", args.repeats), ("batch", args.batch),
                       ("max_length", args.max_length), ("split", args.split)):
        if value is not None:
            preset[key] = value
    names = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in names if a not in ARMS]
    if unknown or not names:
        raise SystemExit(f"--arms: unknown arm(s) {unknown}; choose from {', '.join(ARMS)}")
    if any(ARMS[a][2] for a in names) and not 0 < preset["split"] < preset["batch"]:
        raise SystemExit(f"the *-split arms need 0 < --split ({preset['split']}) < --batch ({preset['batch']})")
    label = f"model-{Path(args.model).name}" if args.model else config
    out = Path(args.out) if args.out else RESULTS / (
        "chat_throughput" + ("" if label == "small" and not args.quick else f"_{label}") + ("_quick" if args.quick else "") + ".json")

    try:
        result = run(args, preset, names, device, config, label)
    except FedbankError as err:
        raise SystemExit(f"error: {err}") from None
    write_result(out, result)


def run(args, preset: dict, names: list[str], device: str, config: str, label: str) -> dict:
    import torch

    from common.privacy.accounting import planned_noise_multiplier
    from client.training import round_plan
    from common.tasks.chat import tokenize_dialogues
    from common.privacy.render import Renderer
    from common.model.device import autocast_dtype
    from common.data.synthetic.dialogues import generate_dialogues
    from common.model.build import load_tokenizer

    info = machine()
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_bytes=props.total_memory, cuda=torch.version.cuda)
    arms = []
    for name in names:
        cfg = run_config(args, preset, name, device)
        arms.append(Arm(name, cfg, cfg.train.physical_batch_size if 0 < cfg.train.physical_batch_size < cfg.train.batch_size else cfg.train.batch_size))
    cfg0 = arms[0].cfg
    dtype = autocast_dtype(cfg0, device)
    say(f"device {device}{' (' + info['gpu'] + ')' if device == 'cuda' else ''}, config {label}: model {cfg0.model.name}"
        + ("" if args.model else f" hidden {cfg0.model.hidden_size} x {cfg0.model.layers} layers x {cfg0.model.heads} heads")
        + f", length {cfg0.model.max_length}, batch {cfg0.train.batch_size}, autocast {dtype or 'off'}; "
        f"{preset['steps']} steps/round, {args.warmup} warm-up + {preset['repeats']} timed rounds per arm; "
        f"load average {info['loadavg'][0]:.2f} on {info['cpus']} CPUs, {info['torch_threads']} torch threads ({args.threads_why})")

    # Data: the branch's path -- generated dialogues, desensitized both sides, tokenized (loss on the reply).
    t0 = time.perf_counter()
    n = preset["steps"] * cfg0.train.batch_size
    dialogues = generate_dialogues(n, seed=DIALOGUE_SEED, zh_fraction=cfg0.data.zh_fraction)
    rendered = Renderer().render([d.prompt for d in dialogues], responses=[d.response for d in dialogues])
    prompts, replies, pii = rendered.texts, rendered.responses, rendered.counts
    tokenizer = load_tokenizer(cfg0.model)
    tokens = tokenize_dialogues(prompts, replies, tokenizer, cfg0.model.max_length)
    from common.model.losses import IGNORE

    data_info = {
        "dialogues": n, "seed": DIALOGUE_SEED, "pii_masked": pii,
        "mean_nonpad_tokens": float(tokens.attention_mask.sum(1).float().mean()),
        "mean_reply_tokens": float((tokens.labels != IGNORE).sum(1).float().mean()),
        "truncated_share": float((tokens.attention_mask.sum(1) == cfg0.model.max_length).float().mean()),
        "prepare_s": time.perf_counter() - t0,
    }
    say(f"{n} dialogues generated, desensitized ({sum(pii.values())} PII masked) and tokenized in {data_info['prepare_s']:.1f} s: "
        f"{data_info['mean_nonpad_tokens']:.0f} non-pad / {data_info['mean_reply_tokens']:.0f} reply tokens per dialogue "
        f"of {cfg0.model.max_length}, {100 * data_info['truncated_share']:.0f} % cut to length")

    dp_cfg = next((a.cfg for a in arms if a.cfg.dp.enabled), None)
    noise = 0.0
    if dp_cfg is not None:
        plan = round_plan(dp_cfg, n, 0.0)
        noise = dp_cfg.dp.noise_multiplier or planned_noise_multiplier(
            dp_cfg.dp.target_epsilon, dp_cfg.dp.delta, plan.sample_rate, plan.steps * dp_cfg.federation.num_rounds,
            dp_cfg.dp.accountant)
        say(f"DP: sample rate {plan.sample_rate:.4f}, {plan.steps} steps, noise multiplier {noise:.3f} "
            f"(epsilon {dp_cfg.dp.target_epsilon} at delta {dp_cfg.dp.delta})")

    counter = TokenCounter()
    vocab = len(tokenizer)
    # Warm-up rounds (first calls: lazy imports, Opacus set-up, allocator) train 2 steps on the first 2 batches.
    from common.tasks.tokens import TokenizedSet

    m = min(n, 2 * cfg0.train.batch_size)
    warm_tokens = TokenizedSet(tokens.input_ids[:m], tokens.attention_mask[:m], tokens.labels[:m])
    total = args.warmup + preset["repeats"]
    for rep in range(total):
        timed = rep >= args.warmup
        k = rep % len(arms)
        for arm in arms[k:] + arms[:k]:  # rotated order: no arm always first after a model build
            r = train_once(arm, tokens if timed else warm_tokens, counter, vocab, device, seed=1000 + rep, noise=noise)
            tag = f"round {rep - args.warmup + 1}/{preset['repeats']}" if timed else f"warm-up {rep + 1}/{args.warmup}"
            say(f"{tag} {arm.name:<11} {r['steps']} steps in {r['wall_s']:.2f} s = {r['step_ms']:.0f} ms/step, "
                f"{r['examples_per_step']:.1f} ex/step, {r['nonpad_tok_s']:.0f} tok/s ({r['reply_tok_s']:.0f} reply), "
                f"mem +{human_bytes(r['mem_growth_bytes'])}, loss {r['mean_loss']:.3f}")
            if timed:
                arm.rounds.append(r)
    info["loadavg_end"] = list(os.getloadavg())
    summary = summarize(arms, device)

    mem_what = ("peak torch.cuda.max_memory_allocated over the round, weights included (+ growth over the round start)"
                if device == "cuda" else "peak RSS growth of the process over the round start, median round (psutil, sampled every 5 ms)")
    cpu = device == "cpu"
    rows = []
    for arm in arms:
        s = summary[arm.name]
        row = [arm.name, "yes" if s["dp"] else "no", f"{s['batch']}/{s['physical_batch']}", f"{s['step_ms']:.0f}"]
        row += [f"{s['cpu_step_ms']:.0f}"] if cpu else []
        row += [f"{s['examples_per_step']:.1f}", f"{s['nonpad_tok_s']:,.0f}", f"{s['reply_tok_s']:,.0f}", memory_cell(s, device),
                f"{s['step_ratio']:.2f}x" if "step_ratio" in s else "1",
                f"{s['token_time_ratio']:.2f}x" if "token_time_ratio" in s else "1"]
        row += [f"{s['cpu_step_ratio']:.2f}x" if "cpu_step_ratio" in s else "1"] if cpu else []
        rows.append(row)
    where = info.get("gpu") if device == "cuda" else (
        f"{info['cpus']}-core CPU, {info['torch_threads']} torch thread{'s' if info['torch_threads'] != 1 else ''}, "
        f"load {info['loadavg'][0]:.1f}")
    model_desc = (cfg0.model.name if args.model else
                  f"tiny-llama hidden {cfg0.model.hidden_size}, {cfg0.model.layers} layers")
    if dtype is not None:
        model_desc += f", {str(dtype).replace('torch.', '')} autocast"
    print(f"\nchat training throughput, {model_desc}, length {cfg0.model.max_length}, {preset['steps']} steps/round, "
          f"median of {preset['repeats']} rounds per arm ({device}: {where}; memory = {mem_what})\n")
    print(table(["arm", "DP", "batch/physical", "step ms", *(["CPU ms/step"] if cpu else []), "examples/step",
                 "non-pad tok/s", "reply tok/s", "peak memory", "step ÷ non-DP", "time/token ÷ non-DP",
                 *(["CPU step ÷ non-DP"] if cpu else [])], rows))
    readme = readme_rows(args, summary, cfg0, preset, device, where, model_desc)
    if readme:
        print("\nREADME rows:\n")
        print("\n".join(readme))
    return {
        "benchmark": "chat_throughput", "config": config, "label": label, "device": device,
        "autocast": str(dtype) if dtype else None, "model": model_desc,
        "model_config": {k: getattr(cfg0.model, k) for k in cfg0.model.__dataclass_fields__},
        "batch": cfg0.train.batch_size, "max_length": cfg0.model.max_length, "steps_per_round": preset["steps"],
        "repeats": preset["repeats"], "warmup": args.warmup, "memory_measure": mem_what, "threads_choice": args.threads_why,
        "data": data_info, "noise_multiplier": noise, "arms": summary,
        "rounds": {a.name: a.rounds for a in arms}, **info,
    }


def readme_rows(args, summary: dict, cfg0, preset: dict, device: str, where: str, model_desc: str) -> list[str]:
    """``| measure | result | command |`` rows for README's Benchmarks table."""
    base = summary.get("nondp")
    argv, skip = [], False
    for a in sys.argv[1:]:  # the command as run, less --out
        if skip or a == "--out" or a.startswith("--out="):
            skip = a == "--out"
            continue
        argv.append(shlex.quote(a))
    cmd = "`" + " ".join(["python bench/chat_throughput.py", *argv]) + "`"
    dev = "GPU " + where if device == "cuda" else "CPU"
    what = f"{model_desc}, length {cfg0.model.max_length}, batch {cfg0.train.batch_size}"
    rows = []
    tok = "; ".join(f"{name} {s['nonpad_tok_s']:,.0f} ({s['reply_tok_s']:,.0f} reply"
                    + (f"; {s['nonpad_tok_per_cpu_s']:,.0f} per CPU-second" if device == "cpu" else "") + ")"
                    for name, s in summary.items())
    rows.append(f"| chat training tokens/s per branch ({dev}), {what} | {tok} | {cmd} |")
    if base is not None:
        # On a CPU other jobs share, the process's CPU time is the steadier ratio: it is in bold there.
        if device == "cpu":
            ratios = "; ".join(f"{name} **{s['cpu_step_ratio']:.2f}x** CPU time ({s['cpu_step_ms']:.0f} ms; wall {s['step_ratio']:.2f}x, "
                               f"wall per token {s['token_time_ratio']:.2f}x)" for name, s in summary.items() if "step_ratio" in s)
            first = f"non-DP {base['cpu_step_ms']:.0f} ms CPU ({base['step_ms']:.0f} ms wall)"
        else:
            ratios = "; ".join(f"{name} {s['step_ms']:.0f} ms = **{s['step_ratio']:.2f}x** (per token {s['token_time_ratio']:.2f}x)"
                               for name, s in summary.items() if "step_ratio" in s)
            first = f"non-DP {base['step_ms']:.0f} ms"
        rows.append(f"| chat DP step / non-DP step ({dev}), same | {first}; {ratios} | same |")
    mem = "; ".join(f"{name} {memory_cell(s, device)}" for name, s in summary.items())
    rows.append(f"| chat peak {'GPU memory' if device == 'cuda' else 'RSS growth per round'} ({dev}), same | {mem} | same |")
    return rows


if __name__ == "__main__":
    main()
