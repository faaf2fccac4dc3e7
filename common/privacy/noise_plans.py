"""Remembered noise searches: Opacus's answer to "what noise spends epsilon E over this plan", kept on disk.

Opacus's search (:func:`common.privacy.accounting.planned_noise_multiplier`)
converts RDP at 150 orders a dozen times, 2-5 s of pure Python at the sample
rates of a small branch; every process that plans a run asks it again (each
ClientApp process of a deployed branch, every round; the ServerApp checking a
claim; each test).  The answer depends on the plan alone, so it is kept in one
JSON file per machine, ``$FEDBANK_CACHE_DIR/noise-plans.json`` (default
``${XDG_CACHE_HOME:-~/.cache}/fedbank``), each entry keyed by every input of
the search and the Opacus version.

The file is a hint, never trusted: a remembered noise is used only after the
accountant confirms it meets the search's own contract for that plan (its
epsilon at most the target and within the search's tolerance below it), one
epsilon conversion instead of a dozen.  An edited or stale entry can therefore
neither loosen a branch's privacy nor waste its utility; it is searched again
and replaced.  A cache that cannot be read or written (or holds what no
search returns: NaN, infinities, 1e300) is skipped silently.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import opacus

from common.atomic import write_bytes_atomic

#: Bump when the meaning of an entry changes: older files are then ignored.
_VERSION = "1"
#: Opacus's search never returns more (it gives up above opacus.accountants.utils.MAX_SIGMA = 1e6) and a
#: useful plan never less; outside this an entry is no plan (and 1e300 or 1e-300 would break the accountant).
_NOISE_RANGE = (1e-6, 1e6)
#: The file is read whole: past this size it is no cache of ours, and it is replaced.
_MAX_BYTES = 1 << 20
#: Entries kept (the newest): plans are few per machine, but nothing grows without bound.
_MAX_ENTRIES = 2000


def cache_file() -> Path | None:
    """Where the remembered noise plans of this machine live (None: no home directory to keep them in)."""
    root = os.environ.get("FEDBANK_CACHE_DIR")
    if not root:
        try:
            root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fedbank")
        except RuntimeError:  # no HOME and no passwd entry (a container under an arbitrary uid)
            return None
    return Path(root) / "noise-plans.json"


def plan_key(target_epsilon: float, delta: float, sample_rate: float, total_steps: int, accountant: str,
             tolerance: float) -> str:
    """The entry of one plan: every input of the search, floats written exactly (``repr``), and the Opacus
    version (another version's search may land elsewhere within its tolerance)."""
    return "|".join((_VERSION, f"opacus-{opacus.__version__}", accountant, repr(float(target_epsilon)),
                     repr(float(delta)), repr(float(sample_rate)), str(int(total_steps)), repr(float(tolerance))))


def _entries() -> dict:
    """The file's entries as parsed (values unchecked), or {} for a missing, damaged or foreign file."""
    path = cache_file()
    try:
        if path is None or not path.is_file() or path.stat().st_size > _MAX_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def recall(key: str) -> float | None:
    """The remembered noise of a plan (unchecked against the plan: the caller does that), or None."""
    value = _entries().get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return value if math.isfinite(value) and _NOISE_RANGE[0] <= value <= _NOISE_RANGE[1] else None


def remember(key: str, noise_multiplier: float) -> None:
    """Add one plan's noise to the file (read, merge, atomic replace; a lost race only costs a search)."""
    path = cache_file()
    if path is None:
        return
    entries = {k: v for k, v in _entries().items() if k != key}
    entries[key] = float(noise_multiplier)
    kept = dict(list(entries.items())[-_MAX_ENTRIES:])
    try:
        write_bytes_atomic(path, json.dumps(kept, indent=0).encode("utf-8"))
    except OSError:
        pass
