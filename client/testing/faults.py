"""Fault injection at a branch, for testing the federation's reliability.

Enabled only by the branch's own policy (``[testing]`` in
``branch-policy.toml``: ``fault-injection = true`` plus the faults), never by
HQ's run config: a test fixture writes such a policy; a real branch never has
one.  Draws are seeded by the run seed, the round and the branch id, so a
test sees the same failures on every run.  A failure raises
:class:`InjectedFault`; Flower turns it into an error reply, which the server
counts as a dropout.  Poisoning rewrites the branch's update after training
(scaled x100, or its step sign-flipped), as a compromised branch would.
"""

from __future__ import annotations

import hashlib

import numpy as np

from common.config.policy import BranchPolicy
from common.errors import FedbankError


class InjectedFault(FedbankError):
    """A failure injected on purpose by the branch policy's ``[testing]`` section (its text holds no data)."""


def _draw(seed: int, server_round: int, branch_id: str, stage: str) -> float:
    digest = hashlib.sha256(f"{seed}/{server_round}/{branch_id}/{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def maybe_fail(policy: BranchPolicy, seed: int, server_round: int, branch_id: str, stage: str) -> None:
    """Raise :class:`InjectedFault` with the policy's probability for ``stage`` ('before-train' or 'after-train')."""
    if not policy.fault_injection:
        return
    p = policy.fail_before_train if stage == "before-train" else policy.fail_after_train
    if p > 0 and _draw(seed, server_round, branch_id, stage) < p:
        message = f"injected fault: {branch_id} fails round {server_round} {stage.replace('-', ' ')}"
        raise InjectedFault(message, public=message)


def maybe_poison(policy: BranchPolicy, branch_id: str, update: dict[str, np.ndarray],
                 global_arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return the update a poisoning branch would send (unchanged unless the policy poisons this branch)."""
    if not policy.fault_injection or branch_id not in policy.poison_branches:
        return update
    factor = 100.0 if policy.poison_kind == "scale" else -1.0
    return {name: (global_arrays[name] + factor * (value - global_arrays[name])).astype(value.dtype)
            for name, value in update.items()}
