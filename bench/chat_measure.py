"""Measuring one chat training round of one benchmark arm (bench/chat_throughput.py).

:func:`train_once` builds a fresh model (untimed) and times one round of the
project's own ``train_round`` on a dataset that counts every example, non-pad
token and reply token the loader delivers (:func:`counted_set`), while
:class:`PeakMemory` records the round's peak memory: the CUDA allocator's peak
on a GPU, the sampled RSS growth of this process on a CPU.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from dataclasses import dataclass, field


# --------------------------------------------------------------------------- data that counts what it delivers
@dataclass
class TokenCounter:
    examples: int = 0
    nonpad: int = 0
    labelled: int = 0

    def reset(self) -> None:
        self.examples = self.nonpad = self.labelled = 0


def counted_set(tokens, counter: TokenCounter):
    """``tokens`` (a ``TokenizedSet``) whose dataset adds every example the loader fetches to ``counter``."""
    import torch.utils.data

    from common.tasks.tokens import TokenizedSet
    from common.model.losses import IGNORE

    nonpad = tokens.attention_mask.sum(dim=1).tolist()
    # Token labels (chat) count per token; a classifier's one label per example counts once.
    labelled = (tokens.labels.reshape(len(tokens.labels), -1) != IGNORE).sum(dim=1).tolist()

    class CountingDataset(torch.utils.data.TensorDataset):
        def __getitem__(self, index):
            counter.examples += 1
            counter.nonpad += nonpad[index]
            counter.labelled += labelled[index]
            return super().__getitem__(index)

        def __getitems__(self, indices):  # the batched fetch path of torch's DataLoader
            return [self[i] for i in indices]

    @dataclass
    class CountedSet(TokenizedSet):
        def as_dataset(self):
            return CountingDataset(self.input_ids, self.attention_mask, self.labels)

    return CountedSet(tokens.input_ids, tokens.attention_mask, tokens.labels)


# --------------------------------------------------------------------------- memory
class PeakMemory:
    """Peak memory of one round: CUDA allocator peak, or sampled RSS growth of this process on CPU."""

    def __init__(self, device: str, interval: float = 0.005) -> None:
        self.device = device
        self.interval = interval
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakMemory":
        import torch

        gc.collect()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            _malloc_trim()
            import psutil

            proc = psutil.Process()
            self.start = self.peak = proc.memory_info().rss

            def sample() -> None:
                while not self._stop.is_set():
                    self.peak = max(self.peak, proc.memory_info().rss)
                    self._stop.wait(self.interval)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.start)


def _malloc_trim() -> None:
    """Give glibc's free heap pages back to the OS, so the next round's RSS growth is its own."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS growth is then a lower bound
        pass


# --------------------------------------------------------------------------- one round of one arm
@dataclass
class Arm:
    name: str
    cfg: object  # RunConfig
    physical: int
    rounds: list[dict] = field(default_factory=list)


def train_once(arm: Arm, tokens, counter: TokenCounter, vocab: int, device: str, seed: int, noise: float) -> dict:
    """Build a fresh model (untimed), train one round with ``train_round`` (timed); figures of the round."""
    import torch

    from client.training import round_plan, train_round
    from common.model.build import build_peft_model

    cfg = arm.cfg
    t0 = time.perf_counter()
    model = build_peft_model(cfg.model, 0, vocab_size=vocab, device=device, causal=True)
    build_s = time.perf_counter() - t0
    data = counted_set(tokens, counter)
    plan = round_plan(cfg, len(data), noise_multiplier=noise if cfg.dp.enabled else 0.0)
    first_forward: list[float] = []
    hook = model.register_forward_pre_hook(lambda *_: first_forward.append(time.perf_counter()) if not first_forward else None)
    counter.reset()
    with PeakMemory(device) as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = train_round(model, data, cfg, plan, [], seed=seed)
        if device == "cuda":
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    hook.remove()
    steps = outcome.steps
    result = {
        "wall_s": wall, "steps": steps, "step_ms": 1000 * wall / steps,
        "cpu_s": cpu, "cpu_step_ms": 1000 * cpu / steps,
        "setup_ms": 1000 * (first_forward[0] - t0) if first_forward else None,
        "build_model_s": build_s,
        "examples": counter.examples, "nonpad_tokens": counter.nonpad, "reply_tokens": counter.labelled,
        "padded_tokens": counter.examples * cfg.model.max_length,
        "examples_per_step": counter.examples / steps,
        "nonpad_tok_s": counter.nonpad / wall, "reply_tok_s": counter.labelled / wall,
        "us_per_nonpad_token": 1e6 * wall / max(counter.nonpad, 1),
        "mem_start_bytes": mem.start, "mem_peak_bytes": mem.peak, "mem_growth_bytes": mem.growth,
        "mean_loss": outcome.mean_loss, "noise_multiplier": outcome.noise_multiplier,
    }
    del model, outcome, data  # freed (gc, empty_cache) when the next round's PeakMemory starts
    return result
