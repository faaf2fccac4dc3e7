"""Base model from a local path; the CLI's one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.config.sections import ModelConfig
from common.errors import ModelError
from common.model.build import build_peft_model, load_tokenizer
from common.model.adapter import adapter_arrays


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
    out = subprocess.run([sys.executable, "-m", "simulations.cli.main", "simulate", "--out", str(tmp_path / "r"), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert fragment in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name, causal", [("tiny-bert", False), ("tiny-llama", True)])
def test_trailing_padding_is_cut_without_changing_any_output(name, causal):
    """Batches are cut to their longest row before the model runs: same logits, same per-token labels."""
    import torch

    from common.tasks.tokens import trim_padding

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


def _sentence_encoder_dir(tmp_path, mean_tokens=True):
    """A sentence-transformers-style directory: an encoder without a head, its tokenizer, and 1_Pooling/config.json."""
    import json

    from transformers import AutoModel

    from common.model.build import tiny_config

    tiny = ModelConfig()
    tok = load_tokenizer(tiny)
    AutoModel.from_config(tiny_config(tiny, len(tok), 2)).save_pretrained(tmp_path / "encoder")
    tok.save_pretrained(tmp_path / "encoder")
    (tmp_path / "encoder" / "1_Pooling").mkdir()
    (tmp_path / "encoder" / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 64, "pooling_mode_cls_token": not mean_tokens,
                    "pooling_mode_mean_tokens": mean_tokens}))
    return str(tmp_path / "encoder")


def test_sentence_encoder_classifies_from_the_mean_of_its_real_tokens(tmp_path):
    """model.pooling auto on a mean-pooling sentence encoder: logits = head(mean of hidden states over unpadded tokens)."""
    import torch

    from common.model.build import MeanPoolClassifier, check_base_model, resolve_pooling
    from common.model.adapter import load_saved_adapter, save_adapter, unwrap

    encoder = _sentence_encoder_dir(tmp_path)
    cfg = ModelConfig(name=encoder, lora_target_modules="query,value")
    assert resolve_pooling(cfg) == "mean" and resolve_pooling(ModelConfig(name=encoder, pooling="head")) == "head"
    (tmp_path / "cls").mkdir()
    assert resolve_pooling(ModelConfig(name=_sentence_encoder_dir(tmp_path / "cls", mean_tokens=False))) == "head"
    check_base_model(cfg)
    model = build_peft_model(cfg, 4).eval()
    inner = unwrap(model).base_model.model
    assert isinstance(inner, MeanPoolClassifier)
    assert {k.split(".")[-2] for k in adapter_arrays(model) if "classifier" in k} == {"classifier"}  # the head travels
    ids = torch.tensor([[5, 9, 11, 0, 0, 0], [7, 8, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
        shorter = model(input_ids=ids[:, :3], attention_mask=mask[:, :3]).logits  # same texts, less padding
        hidden = inner.encoder(input_ids=ids[:1, :3], attention_mask=mask[:1, :3]).last_hidden_state
        by_hand = inner.classifier(hidden.mean(dim=1))
    assert torch.allclose(logits, shorter, atol=1e-5)
    assert torch.allclose(logits[:1], by_hand, atol=1e-5)
    save_adapter(model, tmp_path / "adapter", cfg, ["a", "b", "c", "d"])
    reloaded, *_ = load_saved_adapter(tmp_path / "adapter")
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids, attention_mask=mask).logits, logits, atol=1e-5)


def test_mean_pooled_classifier_trains_under_opacus():
    """DP-SGD (Opacus per-sample gradients) through the mean-pooled head and LoRA: every adapter array moves."""
    import math

    import numpy as np

    from client.branch_data import prepare_branch
    from common.privacy.accounting import planned_noise_multiplier
    from client.training import round_plan, train_round
    from common.config.run import RunConfig, branch_settings

    cfg = RunConfig.from_flower({"num-branches": 1, "model.pooling": "mean", "model.max-length": 32,
                                 "data.records-per-branch": 32, "train.batch-size": 8, "dp.target-epsilon": 8.0})
    tok = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch_settings({"partition-id": 0, "num-partitions": 1}, cfg), tok)
    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tok))
    before = adapter_arrays(model)
    plan = round_plan(cfg, len(data.train), 0.0)
    plan.noise_multiplier = planned_noise_multiplier(8.0, cfg.dp.delta, plan.sample_rate, plan.steps, cfg.dp.accountant)
    outcome = train_round(model, data.train, cfg, plan, [], seed=1)
    assert outcome.steps == plan.steps and math.isfinite(outcome.mean_loss)
    assert set(outcome.arrays) == set(before)
    assert all(not np.array_equal(before[k], outcome.arrays[k]) for k in before if "lora_A" in k or "classifier" in k)


@pytest.mark.parametrize("physical", [0, 4])
def test_a_dp_round_reports_each_local_epoch_when_asked(physical):
    """train_round's on_epoch: one call per local epoch, steps so far (the accountant's total at the end).

    With a logical batch split into physical ones (BatchMemoryManager), a step is a logical batch,
    not a forward pass: the count the accountant keeps.
    """
    import math

    from client.branch_data import prepare_branch
    from client.training import round_plan, train_round
    from common.config.run import RunConfig, branch_settings

    cfg = RunConfig.from_flower({"num-branches": 1, "model.max-length": 32, "data.records-per-branch": 32,
                                 "train.batch-size": 16 if physical else 8, "train.physical-batch-size": physical,
                                 "train.local-epochs": 3})
    tok = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch_settings({"partition-id": 0, "num-partitions": 1}, cfg), tok)
    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tok))
    seen = []
    outcome = train_round(model, data.train, cfg, round_plan(cfg, len(data.train), 1.0), [], seed=1,
                          on_epoch=lambda epoch, steps, loss: seen.append((epoch, steps, loss)))
    assert [e for e, _, _ in seen] == [1, 2, 3]
    assert 0 < seen[0][1] < seen[1][1] < seen[2][1] == outcome.steps
    assert all(math.isfinite(loss) for _, _, loss in seen)


def test_unknown_pooling_is_a_one_line_config_error():
    from common.config.run import RunConfig
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="model.pooling.*'auto', 'head' or 'mean'"):
        RunConfig.from_flower({"model.pooling": "max"})


def test_lora_layers_restricts_the_adapter_to_the_named_layers():
    """model.lora.layers: only those layers carry LoRA (fewer parameters to noise); a missing layer is one clear line."""
    from common.config.run import RunConfig
    from common.errors import ConfigError

    def adapted(layers):
        arrays = adapter_arrays(build_peft_model(ModelConfig(lora_layers=layers), 3, vocab_size=384))
        return sorted({k.split(".layer.")[1].split(".")[0] for k in arrays if "lora_" in k})

    assert adapted("") == ["0", "1"] and adapted("1") == ["1"]
    with pytest.raises(ModelError, match="model.lora.layers '5'") as err:
        build_peft_model(ModelConfig(lora_layers="5"), 3, vocab_size=384)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="model.lora.layers"):
        RunConfig.from_flower({"model.lora.layers": "top2"})
    assert RunConfig.from_flower({"model.lora.layers": 5}).model.layers_to_transform == [5]  # `--run-config model.lora.layers=5`


def test_adapter_saved_before_model_pooling_existed_loads_with_the_head_it_was_trained_with(tmp_path):
    import json

    import torch

    from common.model.adapter import SPEC_FILE, load_saved_adapter, save_adapter

    encoder = _sentence_encoder_dir(tmp_path)  # auto would now choose mean pooling for it
    cfg = ModelConfig(name=encoder, pooling="head", lora_target_modules="query,value")
    model = build_peft_model(cfg, 3).eval()
    save_adapter(model, tmp_path / "old", cfg, ["a", "b", "c"])
    spec_path = tmp_path / "old" / SPEC_FILE
    spec = json.loads(spec_path.read_text())
    del spec["model"]["pooling"]  # the recipe an older fedbank wrote
    spec_path.write_text(json.dumps(spec))
    reloaded, _, mcfg, _ = load_saved_adapter(tmp_path / "old")
    ids = torch.tensor([[5, 9, 11, 0], [7, 8, 0, 0]])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=(ids != 0).long()).logits
        got = reloaded(input_ids=ids, attention_mask=(ids != 0).long()).logits
    assert mcfg.pooling == "head" and torch.allclose(got, expected, atol=1e-5)


def test_label_name_head_classifies_each_label_name_as_that_label_before_training():
    """model.head-init = label-names: a zero-shot head from the base model's own embedding of the label names."""
    from dataclasses import replace

    import numpy as np
    import torch

    from common.config.run import RunConfig

    labels = ["card_arrival", "lost_or_stolen_card", "exchange_rate", "top-up failed"]
    cfg = RunConfig.from_flower({"model.pooling": "mean", "model.head-init": "label-names", "model.max-length": 32})
    tok = load_tokenizer(cfg.model)
    model = build_peft_model(cfg.model, len(labels), vocab_size=len(tok), label_names=labels)
    again = build_peft_model(cfg.model, len(labels), vocab_size=len(tok), label_names=labels)
    random_head = build_peft_model(replace(cfg.model, head_init="random"), len(labels), vocab_size=len(tok),
                                   label_names=labels)
    doubled = build_peft_model(replace(cfg.model, head_init_scale=20.0), len(labels), vocab_size=len(tok),
                               label_names=labels)
    heads = [{k: v for k, v in adapter_arrays(m).items() if "classifier" in k}
             for m in (model, again, random_head, doubled)]
    assert heads[0] and all(np.array_equal(heads[0][k], heads[1][k]) for k in heads[0])  # identical on every node
    assert not any(np.array_equal(heads[0][k], heads[2][k]) for k in heads[0] if k.endswith("weight"))
    batch = tok([name.replace("_", " ").replace("-", " ") for name in labels], padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert logits.argmax(dim=1).tolist() == list(range(len(labels)))
    # every row has the same length, proportional to model.head-init-scale; the bias starts at zero
    weight, bias = (next(v for k, v in heads[0].items() if k.endswith(end)) for end in ("weight", "bias"))
    lengths = np.linalg.norm(weight, axis=1)
    assert np.allclose(lengths, lengths[0]) and not bias.any()
    assert np.allclose(next(v for k, v in heads[3].items() if k.endswith("weight")), 2 * weight, rtol=1e-5)


def test_label_name_head_needs_mean_pooling_and_says_so():
    from common.config.run import RunConfig
    from common.errors import ConfigError, ModelError

    cfg = RunConfig.from_flower({"model.pooling": "head", "model.head-init": "label-names"})
    with pytest.raises(ModelError, match="model.head-init = label-names needs model.pooling = mean"):
        build_peft_model(cfg.model, 3, vocab_size=len(load_tokenizer(cfg.model)), label_names=["a", "b", "c"])
    with pytest.raises(ConfigError, match="model.head-init.*'random' or 'label-names'"):
        RunConfig.from_flower({"model.head-init": "labels"})
    with pytest.raises(ConfigError, match="model.head-init-scale"):
        RunConfig.from_flower({"model.head-init-scale": 0})
