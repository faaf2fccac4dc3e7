"""The files of the app bundle (FAB) that a run submits, collected without walking ignored directories.

Flower 1.39 builds a FAB from an app directory by visiting *every* file under
it (``flwr.cli.build.collect_files``) and filtering afterwards by the app's
``.gitignore`` and its own patterns.  A virtual environment inside the
checkout (``.venv``: about 55,000 files) then costs every ``flwr run`` some 8
CPU seconds before it submits anything.

:func:`app_files` is the same collection, except that it does not descend
into a directory whose every file those rules leave out (a ``.gitignore``
directory pattern, or a built-in ``dir/**`` exclude), so the FAB it leads to
is byte-identical (``tests/test_app_bundle.py`` checks it on this repository).
Only the rules Flower applies first (the ``.gitignore`` and its publish
excludes ``.venv/**``, ``.flwr/**``, ``**/__pycache__/**``) prune: its FAB-only
excludes (``build/**``, ``lib/**``, ...) act after its depth and pattern checks,
so a directory they drop is still walked, and those checks still fail alike.
:func:`build_fab` builds the bundle from it in-process (the signed run);
:func:`stage_app` copies the files into a directory of their own for the
``flwr run`` CLI, which only accepts a directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

def _pruned(root: Path):  # noqa: ANN202 -- a predicate on a directory's relative POSIX path
    """Whether a directory (relative POSIX path) holds only files Flower's first filter drops."""
    from flwr.cli.utils import APP_PUBLISH_EXCLUDE_PATTERNS, build_pathspec, load_gitignore_patterns

    ignore_file = root / ".gitignore"
    # Flower skips a symlinked .gitignore like any symlink: then it applies no ignore pattern, nor does this
    gitignore = [] if ignore_file.is_symlink() else load_gitignore_patterns(ignore_file)
    # a negation could take a file back out of an ignored directory: then walk everything, as Flower does
    by_gitignore = None if any(p.startswith("!") for p in gitignore) else build_pathspec(gitignore)
    # "dir/**" matches every path below dir, whatever its name
    whole_trees = build_pathspec(p for p in APP_PUBLISH_EXCLUDE_PATTERNS if p.endswith("/**"))

    def pruned(rel_dir: str) -> bool:
        if by_gitignore is not None and by_gitignore.match_file(f"{rel_dir}/"):
            return True
        return whole_trees.match_file(f"{rel_dir}/any-file")

    return pruned


def app_files(app_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Relative POSIX path -> file, as ``flwr.cli.build.collect_files`` maps them, ignored directories left unwalked.

    Like Flower: symlinks (files and directories) are skipped, and so is a
    path that resolves outside the app directory.
    """
    root = Path(app_dir).expanduser().resolve()
    pruned = _pruned(root)
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_here = here.relative_to(root).as_posix()
        prefix = "" if rel_here == "." else f"{rel_here}/"
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink() and not pruned(prefix + d)]
        for name in filenames:
            path = here / name
            if path.is_symlink() or not path.resolve().is_relative_to(root):
                continue
            files[prefix + name] = path
    return files


def build_fab(app_dir: str | os.PathLike[str]) -> bytes:
    """The app's FAB, the bytes ``flwr run APP_DIR`` would build."""
    from flwr.cli.build import build_fab_from_files

    return build_fab_from_files(app_files(app_dir))[0]


def stage_app(app_dir: str | os.PathLike[str], stage: Path) -> Path:
    """Copy the app's files into ``stage`` (emptied first); ``flwr run stage`` builds the same FAB at once."""
    stage = Path(stage)
    if stage.exists():
        shutil.rmtree(stage)
    for rel, src in app_files(app_dir).items():
        dst = stage / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return stage
