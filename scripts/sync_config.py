"""Rewrite ``[tool.flwr.app.config]`` in pyproject.toml and the configuration table
in README.md from the keys, defaults and help texts of common.config.sections (``config_table``).

Run after adding or changing a setting: ``python scripts/sync_config.py``.
Tests check that all three agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.config.run import config_table  # noqa: E402

HEADER = "[tool.flwr.app.config]\n"
README_START, README_END = "<!-- config-table:start -->\n", "<!-- config-table:end -->\n"


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
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += [f"| `{key}` | `{toml_value(default)}` | {help_} |" for key, default, help_ in config_table()]
    readme.write_text(text[:start] + "\n".join(rows) + "\n" + text[end:], encoding="utf-8")
    print(f"{len(lines)} settings written to {path} and {readme}")


if __name__ == "__main__":
    main()
