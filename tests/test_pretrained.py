"""A pretrained base named in the run config is the upstream model, checked on every node before it loads.

``model.name = "all-MiniLM-L6-v2"`` resolves to the pinned package's model directory only after the
SHA-256 of its weight file (and config and vocabulary) matched upstream's; a copy whose weights were
changed is refused with one line naming the file and both hashes, although transformers itself would
load it without complaint.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from common.config.run import RunConfig
from common.errors import ModelError
from common.model.build import build_base_model, check_base_model, load_tokenizer, resolve_pooling
from common.model.pretrained import KNOWN, model_source, sha256_of

NAME = "all-MiniLM-L6-v2"


def installed_dir() -> Path:
    spec = importlib.util.find_spec(KNOWN[NAME].module)
    assert spec is not None, f"{KNOWN[NAME].requirement} is a dependency of fedbank: bash scripts/bootstrap.sh installs it"
    return Path(spec.origin).resolve().parent / KNOWN[NAME].subdir


def test_the_installed_base_is_upstreams_and_builds_by_name():
    directory = installed_dir()
    assert sha256_of(directory / "model.safetensors") == KNOWN[NAME].sha256["model.safetensors"]
    assert Path(model_source(NAME)) == directory
    mcfg = RunConfig.from_flower({"model.name": NAME, "model.max-length": 32}).model
    check_base_model(mcfg)  # what fedbank simulate's preflight runs
    assert resolve_pooling(mcfg) == "mean"  # its sentence-transformers pooling config, read from the package
    model = build_base_model(mcfg, num_labels=3)
    tok = load_tokenizer(mcfg)
    batch = tok(["my card was stolen"], return_tensors="pt")
    assert model(**batch).logits.shape == (1, 3)
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6


def tampered_package(root: Path) -> Path:
    """A copy of the package on ``root`` whose weight file differs from upstream's in one byte."""
    source = installed_dir()
    package = root / KNOWN[NAME].module
    shutil.copytree(source.parent, package, ignore=shutil.ignore_patterns("model.safetensors", "__pycache__"))
    weights = package / KNOWN[NAME].subdir / "model.safetensors"
    data = bytearray((source / "model.safetensors").read_bytes())
    data[-100] ^= 0x01  # inside the last tensor's values: still a valid safetensors file
    weights.write_bytes(bytes(data))
    return weights


def test_a_tampered_copy_is_refused_with_both_hashes(tmp_path, monkeypatch):
    from transformers import AutoModel

    weights = tampered_package(tmp_path)
    AutoModel.from_pretrained(str(weights.parent))  # transformers alone loads it: the check is what refuses it
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert Path(importlib.util.find_spec(KNOWN[NAME].module).origin).parent == tmp_path / KNOWN[NAME].module
    mcfg = RunConfig.from_flower({"model.name": NAME}).model
    expected, actual = KNOWN[NAME].sha256["model.safetensors"], sha256_of(weights)
    for build in (lambda: build_base_model(mcfg, 2), lambda: load_tokenizer(mcfg), lambda: check_base_model(mcfg)):
        with pytest.raises(ModelError) as err:
            build()
        message = str(err.value)
        assert "\n" not in message
        assert str(weights) in message and expected in message and actual in message and "refusing" in message
