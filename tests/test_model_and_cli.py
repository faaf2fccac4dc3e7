"""Base model from a local path; the CLI's one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.config import ModelConfig
from common.errors import ModelError
from common.model import adapter_arrays, build_peft_model, load_tokenizer


def test_base_model_loads_from_a_local_path(tmp_path):
    tiny = ModelConfig()
    tok = load_tokenizer(tiny)
    base = build_peft_model(tiny, 5, vocab_size=len(tok)).base_model.model
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    local = ModelConfig(name=str(tmp_path / "base"), lora_target_modules="query,value")
    model = build_peft_model(local, 5)
    assert len(load_tokenizer(local)) == len(tok)
    assert set(adapter_arrays(model)) == set(adapter_arrays(build_peft_model(tiny, 5, vocab_size=len(tok))))
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n and "modules_to_save" not in n)


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        build_peft_model(ModelConfig(name=str(tmp_path / "missing")), 3)


def test_identical_base_on_every_node():
    import torch

    a = build_peft_model(ModelConfig(), 4).state_dict()
    b = build_peft_model(ModelConfig(), 4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("args, fragment", [
    (["--set", "model.lora.rnk=4"], "did you mean 'model.lora.rank'"),
    (["--set", "dp.target-epsilon=-1"], "dp.target-epsilon"),
    (["--data", "/nonexistent/file.csv"], "does not exist"),
])
def test_simulate_rejects_bad_input_with_one_line(tmp_path, args, fragment):
    out = subprocess.run([sys.executable, "-m", "simulations.cli", "simulate", "--out", str(tmp_path / "r"), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert fragment in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name, causal", [("tiny-bert", False), ("tiny-llama", True)])
def test_trailing_padding_is_cut_without_changing_any_output(name, causal):
    """Batches are cut to their longest row before the model runs: same logits, same per-token labels."""
    import torch

    from common.data import trim_padding

    cfg = ModelConfig(name=name)
    model = build_peft_model(cfg, 3, vocab_size=len(load_tokenizer(cfg)), causal=causal).eval()
    lengths = [5, 9, 2]
    ids = torch.zeros(3, 32, dtype=torch.long)
    mask = torch.zeros(3, 32, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(3, 200, (n,))
        mask[row, :n] = 1
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100)) if causal else torch.tensor([0, 1, 2])
    cut_ids, cut_mask, cut_labels = trim_padding(ids, mask, labels)
    assert cut_ids.shape == cut_mask.shape == (3, max(lengths))
    assert int(cut_mask.sum()) == sum(lengths)  # no real token dropped
    assert cut_labels.shape == ((3, max(lengths)) if causal else (3,))
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits
        cut = model(input_ids=cut_ids, attention_mask=cut_mask).logits
    if causal:
        for row, n in enumerate(lengths):
            assert torch.allclose(full[row, :n], cut[row, :n], atol=1e-5)
    else:
        assert torch.allclose(full, cut, atol=1e-5)
    # A batch padded on the left (or not at all) is left alone: cutting its leading columns would shift positions.
    left = torch.flip(mask, dims=[1])
    assert trim_padding(ids, left, labels)[0].shape == ids.shape
