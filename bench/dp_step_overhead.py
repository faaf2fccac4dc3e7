"""Benchmark: time per DP-SGD step / time per non-private step, same model and batch.

Both arms train the same LoRA-adapted model (fresh copy per arm) on the same
fixed batch with AdamW: the non-private arm does forward, backward, step; the
DP arm wraps model, optimizer and loader with Opacus (per-sample gradients,
clipping, noise). Steps alternate between arms in one process so that machine
load affects both alike; the figure is the ratio of medians.

    python bench/dp_step_overhead.py [--batch 32] [--steps 30] [--config tiny|small]

Writes bench/results/dp_step_overhead.json and prints a Markdown table row.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py`: the repo's packages first

from common.config.sections import ModelConfig  # noqa: E402
from common.model.build import build_peft_model, load_tokenizer  # noqa: E402

CONFIGS = {
    "tiny": dict(hidden_size=64, layers=2, heads=2),
    "small": dict(hidden_size=256, layers=4, heads=4),
}


def make_arm(mcfg: ModelConfig, batch: tuple, dp: bool, num_labels: int, vocab: int):
    """A training step closure for one arm."""
    model = build_peft_model(mcfg, num_labels, vocab_size=vocab)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    if dp:
        from opacus import PrivacyEngine

        ds = torch.utils.data.TensorDataset(*batch)
        loader = torch.utils.data.DataLoader(ds, batch_size=len(batch[0]))
        engine = PrivacyEngine(accountant="rdp")
        model, opt, _ = engine.make_private(module=model, optimizer=opt, data_loader=loader,
                                            noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=False)
    model.train()
    ids, mask, labels = batch

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        opt.step()
        return time.perf_counter() - t0

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "dp_step_overhead.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    mcfg = ModelConfig(max_length=args.max_length, **CONFIGS[args.config])
    vocab = len(load_tokenizer(mcfg))
    ids = torch.randint(3, vocab, (args.batch, args.max_length))
    batch = (ids, torch.ones_like(ids), torch.randint(0, 8, (args.batch,)))
    plain = make_arm(mcfg, batch, dp=False, num_labels=8, vocab=vocab)
    private = make_arm(mcfg, batch, dp=True, num_labels=8, vocab=vocab)
    for _ in range(3):  # warm-up
        plain(), private()
    t_plain, t_dp = [], []
    for _ in range(args.steps):
        t_plain.append(plain())
        t_dp.append(private())
    result = {
        "config": args.config, "batch": args.batch, "max_length": args.max_length, "steps": args.steps,
        "non_private_step_ms": 1000 * statistics.median(t_plain),
        "dp_step_ms": 1000 * statistics.median(t_dp),
        "ratio": statistics.median(t_dp) / statistics.median(t_plain),
        "threads": torch.get_num_threads(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"| DP-SGD step / non-private step ({args.config}, batch {args.batch}, len {args.max_length}) "
          f"| {result['dp_step_ms']:.1f} ms / {result['non_private_step_ms']:.1f} ms | **{result['ratio']:.2f}x** |")


if __name__ == "__main__":
    main()
