"""server/ and client/ depend on common/ only, never on each other."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT


def imported_packages(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("server", {"client", "simulations"}),
    ("client", {"server", "simulations"}),
    ("common", {"server", "client", "simulations"}),
])
def test_layers_do_not_cross(package, forbidden):
    assert not imported_packages(package) & forbidden
