"""The content of the messages between server and branches.

One place defines the record names, the statuses a branch can answer with,
and the privacy figures a training reply carries, so the ClientApp that
writes them and the strategy that reads them cannot drift apart.

A training reply's ``RecordDict`` holds:

* ``arrays`` (ArrayRecord): the adapter, absent when the branch did not train;
* ``metrics`` (MetricRecord): ``num-examples`` (FedAvg's weight), the train
  loss and the round's DP figures (``epsilon`` is cumulative over the run);
* ``branch`` (ConfigRecord): the branch id, the accountant and the status.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord

from common.config import RunConfig
from common.pii import PII_TYPES

STATUS_TRAINED = "trained"
STATUS_EXHAUSTED = "budget-exhausted"

PRIVACY_KEYS = ("examples", "steps", "sample-rate", "noise-multiplier", "max-grad-norm", "epsilon", "delta", "budget-epsilon")


def arrays_to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Adapter arrays to an ArrayRecord (numpy ``.npy`` bytes, never pickle)."""
    return ArrayRecord(array_dict={k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def record_to_arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    """An ArrayRecord back to named numpy arrays."""
    return {k: v.numpy() for k, v in record.items()}


def privacy_metrics(cfg: RunConfig, *, examples: int, steps: int, sample_rate: float, noise: float,
                    epsilon: float, loss: float, pii_counts: Mapping[str, int]) -> MetricRecord:
    """The MetricRecord of a training reply."""
    metrics = {
        "num-examples": int(examples),
        "train-loss": float(loss) if np.isfinite(loss) else 0.0,
        "examples": int(examples),
        "steps": int(steps),
        "sample-rate": float(sample_rate),
        "noise-multiplier": float(noise),
        "max-grad-norm": float(cfg.dp.max_grad_norm) if cfg.dp.enabled else 0.0,
        "epsilon": float(epsilon),
        "delta": float(cfg.dp.delta) if cfg.dp.enabled else 0.0,
        "budget-epsilon": float(cfg.dp.budget) if cfg.dp.enabled else 0.0,
    }
    for pii_type in PII_TYPES:
        metrics[f"pii.{pii_type}"] = int(pii_counts.get(pii_type, 0))
    return MetricRecord(metrics)


def branch_record(branch_id: str, cfg: RunConfig, status: str) -> ConfigRecord:
    """The ConfigRecord naming the branch, its accountant and its status."""
    return ConfigRecord({
        "branch-id": branch_id,
        "accountant": cfg.dp.accountant if cfg.dp.enabled else "none",
        "status": status,
    })


def read_privacy(metrics: MetricRecord) -> dict:
    """The ledger's view of a reply's MetricRecord."""
    return {
        "examples": int(metrics["examples"]),
        "steps": int(metrics["steps"]),
        "sample_rate": float(metrics["sample-rate"]),
        "noise_multiplier": float(metrics["noise-multiplier"]),
        "max_grad_norm": float(metrics["max-grad-norm"]),
        "epsilon": float(metrics["epsilon"]),
        "delta": float(metrics["delta"]),
        "budget_epsilon": float(metrics["budget-epsilon"]),
        "pii_counts": {t: int(metrics.get(f"pii.{t}", 0)) for t in PII_TYPES},
    }
