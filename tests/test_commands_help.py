"""Every command the README shows starts: each bench script and each ``fedbank`` subcommand answers ``--help``.

The bench scripts run as the README runs them, ``python bench/NAME.py --help``
from the repository root, with no PYTHONPATH and with any editable install of
fedbank hidden, so a script that does not put the repository on ``sys.path``
itself (and would import another checkout's packages, or none) fails here.
The ``fedbank`` subcommands, nested ones included, are read from the CLI's
argparse tree, so a new subcommand is covered without touching this file.
All commands run in parallel, one process each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

from simulations.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]

# `python bench/NAME.py ARGS` exactly (sys.argv, sys.path[0] = bench/), minus an editable install of fedbank
# that would lend the script the packages it failed to find on its own.
AS_SCRIPT = """
import os, runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def bench_scripts() -> list[str]:
    """The bench modules that run as scripts (``if __name__ == "__main__":``), not the helpers they import."""
    return sorted(p.name for p in (ROOT / "bench").glob("*.py")
                  if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8"))


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``parser`` (``("deploy", "local")`` ...), parents before children."""
    found = []
    for action in parser._actions:  # argparse has no public walk of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append((*prefix, name))
                found += subcommands(child, (*prefix, name))
    return found


COMMANDS = [("bench", name) for name in bench_scripts()] + [
    ("fedbank", " ".join(path)) for path in [(), *subcommands(build_parser())]]


def _argv(kind: str, what: str) -> list[str]:
    if kind == "bench":
        return [sys.executable, "-c", AS_SCRIPT, f"bench/{what}", "--help"]
    return [sys.executable, "-m", "simulations.cli", *what.split(), "--help"]


def _run(command: tuple[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    return subprocess.run(_argv(*command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@lru_cache(maxsize=None)
def results() -> dict[tuple[str, str], subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        return dict(zip(COMMANDS, pool.map(_run, COMMANDS)))


def test_the_commands_are_found():
    names = {what for _, what in COMMANDS}
    assert "harness.py" not in names
    assert {"scale.py", "chat_throughput.py", "dp_step_overhead.py", "", "simulate", "report", "ledger verify",
            "keys init", "deploy local", "deploy superlink", "deploy branch"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{k}:{w or '(top)'}" for k, w in COMMANDS])
def test_help_exits_0_and_prints_usage(command):
    kind, what = command
    proc = results()[command]
    shown = f"python bench/{what} --help" if kind == "bench" else f"fedbank {what} --help".replace("  ", " ")
    usage = f"usage: {what}" if kind == "bench" else " ".join(["usage: fedbank", *what.split()])
    assert proc.returncode == 0, f"{shown} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.startswith(usage), f"{shown} printed no '{usage} ...':\n{proc.stdout[:500]}"
