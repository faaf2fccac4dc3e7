"""The app bundle a run submits: the FAB Flower would build, without walking ignored directories."""

from __future__ import annotations

from pathlib import Path

from flwr.cli.build import build_fab_from_disk

from simulations.app_bundle import app_files, build_fab, stage_app
from tests.conftest import ROOT


def test_this_repository_bundles_byte_identically_to_flowers_own_build(tmp_path):
    # here and in CI the checkout holds a virtual environment (.venv, .venv-ci) that Flower walks and drops
    flowers = build_fab_from_disk(ROOT)
    assert build_fab(ROOT) == flowers
    assert build_fab_from_disk(stage_app(ROOT, tmp_path / "staged")) == flowers
    assert not [p for p in app_files(ROOT) if p.startswith((".venv", "bench/results/"))]


def _app(root: Path, gitignore: str) -> Path:
    files = {
        "pyproject.toml": (ROOT / "pyproject.toml").read_text(),
        ".gitignore": gitignore,
        "client/app.py": "x = 1\n",
        "data/keep.json": "{}\n",
        "ignored/deep/mod.py": "y = 2\n",
        "pkg/.venv/nested.py": "z = 3\n",   # not the top-level .venv: Flower keeps it
        ".venv/lib/site.py": "w = 4\n",      # Flower's built-in exclude
        "build/gen.py": "v = 5\n",           # dropped by a FAB-only exclude, after Flower's checks: walked
        "notes.txt": "not a bundle file type\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_ignored_directories_are_left_unwalked_and_the_bundle_is_unchanged(tmp_path):
    app = _app(tmp_path / "app", "ignored/\n*.log\n")
    files = app_files(app)
    assert not [p for p in files if p.startswith(("ignored/", ".venv/"))]
    assert {"pkg/.venv/nested.py", "data/keep.json", "build/gen.py"} <= set(files)
    assert build_fab(app) == build_fab_from_disk(app)


def test_a_negated_gitignore_pattern_makes_the_walk_complete(tmp_path):
    # "!ignored/deep/mod.py" cannot take a file out of an ignored directory in git, but the walk must not guess
    app = _app(tmp_path / "app", "ignored/*\n!ignored/deep/\n")
    assert "ignored/deep/mod.py" in app_files(app)
    assert build_fab(app) == build_fab_from_disk(app)


def test_a_symlinked_gitignore_is_skipped_as_flower_skips_it(tmp_path):
    app = _app(tmp_path / "app", "")
    (app / ".gitignore").unlink()
    (tmp_path / "elsewhere.gitignore").write_text("ignored/\n")
    (app / ".gitignore").symlink_to(tmp_path / "elsewhere.gitignore")
    assert "ignored/deep/mod.py" in app_files(app)
    assert build_fab(app) == build_fab_from_disk(app)
