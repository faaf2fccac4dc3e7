"""Canonical JSON: the one byte encoding that is hashed and signed.

The privacy ledger hashes entries and a branch signs its privacy claim; both
must produce the same bytes on every machine, so both use this encoding:
sorted keys, no whitespace, UTF-8, NaN and infinities refused.
"""

from __future__ import annotations

import json
from typing import Any

from common.errors import LedgerError


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON bytes (sorted keys, compact, UTF-8).

    Raises:
        LedgerError: If ``obj`` holds NaN, an infinity or a non-JSON value.
    """
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError) as exc:
        raise LedgerError(f"ledger entry is not canonical JSON: {exc}") from exc
    return text.encode("utf-8")
