"""Rewrite ``[tool.flwr.app.config]`` in pyproject.toml from common.config's defaults.

Run after adding or changing a setting: ``python scripts/sync_config.py``.
A test checks the two agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.config import config_table  # noqa: E402

HEADER = "[tool.flwr.app.config]\n"


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    return repr(value)


def main() -> None:
    path = ROOT / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    head = text[: text.index(HEADER) + len(HEADER)]
    lines = [f"{key} = {toml_value(default)}" for key, default, _ in config_table()]
    path.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} settings written to {path}")


if __name__ == "__main__":
    main()
