"""Remembered noise searches: Opacus's answer to "what noise spends epsilon E over this plan", kept on disk.

Opacus's search (:func:`common.privacy.accounting.planned_noise_multiplier`)
converts RDP at 150 orders a dozen times, 2-5 s of pure Python at the sample
rates of a small branch; every process that plans a run asks it again (each
ClientApp process of a deployed branch, every round; the ServerApp checking a
claim; each test).  The answer depends on the plan alone, so it is kept in one
JSON file per machine, ``$FEDBANK_CACHE_DIR/noise-plans.json`` (default
``${XDG_CACHE_HOME:-~/.cache}/fedbank``).

The file is a hint, never trusted: a remembered noise is used only after the
accountant confirms it meets the search's own contract for that plan (its
epsilon at most the target and within the search's tolerance below it), one
epsilon conversion instead of a dozen.  An edited or stale entry can therefore
neither loosen a branch's privacy nor waste its utility; it is searched again
and replaced.  A cache that cannot be read or written is skipped silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from common.atomic import write_bytes_atomic

#: Bump when the meaning of an entry changes: older files are then ignored.
_VERSION = "1"


def cache_file() -> Path:
    """Where the remembered noise plans of this machine live."""
    root = os.environ.get("FEDBANK_CACHE_DIR")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fedbank")
    return Path(root) / "noise-plans.json"


def plan_key(target_epsilon: float, delta: float, sample_rate: float, total_steps: int, accountant: str,
             tolerance: float) -> str:
    """The entry of one plan: every input of the search, floats written exactly (``repr``)."""
    return "|".join((_VERSION, accountant, repr(float(target_epsilon)), repr(float(delta)), repr(float(sample_rate)),
                     str(int(total_steps)), repr(float(tolerance))))


def _entries() -> dict[str, float]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(k, str) and isinstance(v, (int, float))} \
        if isinstance(data, dict) else {}


def recall(key: str) -> float | None:
    """The remembered noise of a plan (unchecked: the caller verifies it), or None."""
    value = _entries().get(key)
    return value if value is not None and value > 0 else None


def remember(key: str, noise_multiplier: float) -> None:
    """Add one plan's noise to the file (read, merge, atomic replace; a lost race only costs a search)."""
    entries = _entries()
    entries[key] = float(noise_multiplier)
    try:
        write_bytes_atomic(cache_file(), json.dumps(entries, sort_keys=True, indent=0).encode("utf-8"))
    except OSError:
        pass
