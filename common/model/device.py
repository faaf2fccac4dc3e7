"""Where a model runs and in which precision: ``train.device`` and ``train.mixed-precision``.

``auto`` picks CUDA when PyTorch sees a GPU, else the CPU; asking for
``cuda`` on a machine without one is a one-line error, not a silent fallback.
Autocast ``auto`` means bf16 on a CUDA device that supports it and full
precision otherwise (CPU autocast is slower than fp32 for these small
models).  fp16 needs loss scaling, which would scale the per-example
gradients DP-SGD clips, so it is refused with DP.
"""

from __future__ import annotations

import contextlib

import torch

from common.config.run import RunConfig
from common.errors import ConfigError


def resolve_device(cfg: RunConfig) -> str:
    """``cuda`` or ``cpu`` for ``train.device``.

    Raises:
        ConfigError: ``cuda`` was asked for and PyTorch sees no GPU.
    """
    wanted = cfg.train.device
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but PyTorch sees no CUDA GPU on this node: "
                          "set train.device=auto (or cpu), or install a CUDA build of torch")
    return wanted


def autocast_dtype(cfg: RunConfig, device: str) -> torch.dtype | None:
    """The autocast dtype for ``train.mixed-precision`` on ``device`` (None = full precision).

    Raises:
        ConfigError: a precision the device cannot run, or fp16 with DP-SGD.
    """
    mode = cfg.train.mixed_precision
    if mode == "off" or (mode == "auto" and device != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if mode == "fp16":
        if device != "cuda":
            raise ConfigError("train.mixed-precision 'fp16' needs a CUDA device: set train.mixed-precision=auto or off")
        if cfg.dp.enabled:
            raise ConfigError("train.mixed-precision 'fp16' needs loss scaling, which would scale the per-example gradients "
                              "DP-SGD clips: use train.mixed-precision=bf16 (or auto) with dp.enabled=true")
        return torch.float16
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.mixed-precision 'bf16' but this GPU has no bf16 support: set train.mixed-precision=auto")
    return torch.bfloat16


def autocast(device: str, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype``, or a no-op context for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=dtype)
