"""Checks every decrypted update must pass before it may be aggregated.

An update is compared with the global adapter the branch was sent: the same
tensor names, each with the same shape and dtype, every value finite, and the
L2 distance from the global adapter (the size of the branch's step) within
``aggregation.max-update-norm``.  A failure raises
:class:`~common.errors.Rejection` whose ``reason`` the server logs and
records: ``keys``, ``shape``, ``dtype``, ``non-finite`` or ``norm``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from common.errors import Rejection


def update_norm(update: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> float:
    """L2 norm of ``update - reference`` over all tensors (float64 accumulation)."""
    total = 0.0
    for name, ref in reference.items():
        diff = np.asarray(update[name], dtype=np.float64) - np.asarray(ref, dtype=np.float64)
        total += float(np.dot(diff.ravel(), diff.ravel()))
    return float(np.sqrt(total))


def validate_update(update: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Check ``update`` against the global ``reference``; return its norm or raise ``Rejection``.

    Args:
        update: The branch's adapter tensors by name.
        reference: The global adapter the branch was sent this round.
        max_norm: Largest L2 distance from ``reference`` accepted; 0 = no bound.
    """
    missing, extra = sorted(set(reference) - set(update)), sorted(set(update) - set(reference))
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + ([f"unexpected {', '.join(extra[:3])}"] if extra else [])
        raise Rejection("keys", "; ".join(parts))
    for name, ref in reference.items():
        got = update[name]
        if not isinstance(got, np.ndarray) or got.shape != ref.shape:
            raise Rejection("shape", f"{name} has shape {getattr(got, 'shape', None)}, expected {ref.shape}")
        if got.dtype != ref.dtype:
            raise Rejection("dtype", f"{name} has dtype {got.dtype}, expected {ref.dtype}")
        if not np.all(np.isfinite(got)):
            raise Rejection("non-finite", f"{name} holds NaN or infinite values")
    norm = update_norm(update, reference)
    if max_norm > 0 and norm > max_norm:
        raise Rejection("norm", f"update norm {norm:.3g} exceeds aggregation.max-update-norm {max_norm:g}")
    return norm
