"""The detector's measured recall: what ``bench/pii_eval.py`` wrote for this detector version.

The compliance report shows it beside the counts a branch masked, so a reviewer
reads the residual risk ("masked 1,610 values; measured recall 92-100 % by type")
rather than a count alone.  The figures come from the independent evaluation set
(``tests/data/pii_eval``), measured with the same detector code this installation runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.privacy.pii import DETECTOR_VERSION

MEASURED_FILE = Path(__file__).with_name("measured_recall.json")


def measured_recall(path: Path = MEASURED_FILE) -> dict[str, Any] | None:
    """The measurement for this detector version, or None when there is none (or it is of another version)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("detector_version") != DETECTOR_VERSION:
        return None
    per_type = data.get("per_type")
    if not isinstance(per_type, dict):
        return None
    return data
