"""Fault injection at a branch, for testing the federation's reliability.

Driven by the ``faults.*`` settings, off by default.  Draws are seeded by the
run seed, the round and the branch id, so a test sees the same failures on
every run.  A failure raises :class:`InjectedFault`; Flower turns it into an
error reply, which the server counts as a dropout.  Poisoning rewrites the
branch's update after training (scaled x100, or its step sign-flipped), as a
compromised branch would.
"""

from __future__ import annotations

import hashlib

import numpy as np

from common.config.run import RunConfig


class InjectedFault(RuntimeError):
    """A failure injected on purpose by ``faults.*``."""


def _draw(seed: int, server_round: int, branch_id: str, stage: str) -> float:
    digest = hashlib.sha256(f"{seed}/{server_round}/{branch_id}/{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def maybe_fail(cfg: RunConfig, server_round: int, branch_id: str, stage: str) -> None:
    """Raise :class:`InjectedFault` with the configured probability for ``stage`` ('before-train' or 'after-train')."""
    p = cfg.faults.fail_before_train if stage == "before-train" else cfg.faults.fail_after_train
    if p > 0 and _draw(cfg.federation.seed, server_round, branch_id, stage) < p:
        raise InjectedFault(f"injected fault: {branch_id} fails round {server_round} {stage.replace('-', ' ')}")


def maybe_poison(cfg: RunConfig, branch_id: str, update: dict[str, np.ndarray], global_arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return the update a poisoning branch would send (unchanged for every other branch)."""
    if not cfg.faults.poison_branch or branch_id != cfg.faults.poison_branch:
        return update
    out = {}
    for name, value in update.items():
        step = value - global_arrays[name]
        factor = 100.0 if cfg.faults.poison_kind == "scale" else -1.0
        out[name] = (global_arrays[name] + factor * step).astype(value.dtype)
    return out
