"""Run-config overrides given on a command line as ``key=value`` (``--set``), parsed as TOML scalars would be."""

from __future__ import annotations

from common.errors import FedbankError


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``key=value`` overrides, values parsed as TOML scalars would be."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise FedbankError(f"--set '{item}' is not key=value")
        raw = raw.strip()
        value: object
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            try:
                value = int(raw)
            except ValueError:
                try:
                    value = float(raw)
                except ValueError:
                    value = raw.strip('"')
        out[key.strip()] = value
    return out
