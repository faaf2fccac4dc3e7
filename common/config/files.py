"""Settings whose value names a file (``data.labels``, ``data.value-map``): read, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.errors import ConfigError


def read_labels(spec: str) -> list[str] | None:
    """Parse ``data.labels``: comma list, JSON file path, or empty (None)."""
    spec = spec.strip()
    if not spec:
        return None
    path = Path(spec).expanduser()
    if spec.endswith(".json"):
        if not path.is_file():
            raise ConfigError(f"data.labels file '{spec}' does not exist: give a JSON list file or a comma-separated list")
        labels = read_json_setting("data.labels", path, "a JSON list of labels or a comma-separated list")
        if not isinstance(labels, list) or not labels:
            raise ConfigError(f"data.labels file '{spec}' must hold a non-empty JSON list of labels")
        return [str(x) for x in labels]
    return [s.strip() for s in spec.split(",") if s.strip()]


def read_json_setting(key: str, path: Path, expected: str) -> Any:
    """The JSON content of a file named by setting ``key``; a one-line ConfigError if it is not readable JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{key} file '{path}' is not readable JSON ({reason}): give {expected}") from err
