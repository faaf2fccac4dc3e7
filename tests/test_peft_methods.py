"""The fine-tuning methods (model.peft) under DP and federated: exact per-example clipping, what travels, reload, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from common.config.run import RunConfig, branch_settings
from common.errors import ConfigError, ModelError
from common.model.adapter import adapter_arrays, load_saved_adapter, unwrap
from common.model.build import build_peft_model, load_tokenizer
from common.model.losses import TaskLoss
from common.model.metrics import evaluate, evaluate_chat
from common.tasks.tokens import trim_padding

# (method, base model, task): every method on a task it applies to; LoRA is the baseline.
CASES = [("lora", "tiny-bert", "intent"), ("ffa-lora", "tiny-bert", "intent"), ("p-tuning", "tiny-bert", "intent"),
         ("ia3", "tiny-bert", "intent"), ("freeze", "tiny-bert", "intent"), ("prefix", "tiny-gpt2", "chat"),
         ("ia3", "tiny-llama", "chat"), ("freeze", "tiny-gpt2", "chat")]
PROMPT_PARAMETERS = "prompt_encoder."


def _cfg(method: str, name: str, task: str, **extra) -> RunConfig:
    return RunConfig.from_flower({"num-branches": 1, "task": task, "model.name": name, "model.peft": method,
                                  "model.max-length": 48 if task == "chat" else 32, "data.records-per-branch": 16,
                                  "train.batch-size": 8, "dp.target-epsilon": 8.0, **extra})


def _branch(cfg: RunConfig):
    from client.branch_data import prepare_branch

    tokenizer = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch_settings({"partition-id": 0, "num-partitions": 1}, cfg), tokenizer)
    causal = cfg.task.name == "chat"
    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tokenizer), causal=causal)
    return model, data


def _without_dropout(model) -> None:
    """Dropout draws a different mask for a different batch; the check below is about the gradients alone."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    for config in {id(m.config): m.config for m in model.modules() if hasattr(m, "config")}.values():
        for key in ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop"):
            if hasattr(config, key):
                setattr(config, key, 0.0)


def _clipped_grad_samples(private, optimizer, criterion, data, rows: list[int], mode: str, clip: float):
    """Each example's clipped per-example gradient (flattened over every trainable parameter), by the training path."""
    from client.per_example import per_example_backward

    optimizer.zero_grad(set_to_none=True)
    ids, mask, labels = trim_padding(data.input_ids[rows], data.attention_mask[rows], data.labels[rows])
    if mode == "no_op":
        per_example_backward(unwrap(private), criterion, ids, mask, labels, ids.device, None)
    else:
        criterion(private(input_ids=ids, attention_mask=mask).logits, labels).backward()
    params = [(n, p) for n, p in unwrap(private).named_parameters() if p.requires_grad]
    for name, p in params:
        assert p.grad_sample is not None and p.grad_sample.shape[0] == len(rows), f"{name}: no per-example gradient"
    flat = torch.cat([p.grad_sample.reshape(len(rows), -1) for _, p in params], dim=1)
    factor = (clip / (flat.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)
    return flat * factor, {n: p.grad_sample.detach().clone() for n, p in params}


@pytest.mark.parametrize("method,name,task", CASES)
def test_dp_clips_each_example_alone_reaches_every_trainable_tensor_and_moves_it(method, name, task):
    """One example's clipped gradient is the same whatever else is in its batch; a DP round moves every trainable tensor."""
    from opacus import PrivacyEngine

    from client.training import grad_sample_mode, round_plan, train_round
    from common.privacy.accounting import planned_noise_multiplier

    cfg = _cfg(method, name, task)
    model, data = _branch(cfg)
    before = adapter_arrays(model)
    _without_dropout(model)
    criterion = TaskLoss(task == "chat")
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loader = torch.utils.data.DataLoader(data.train.as_dataset(), batch_size=4)
    mode = grad_sample_mode(cfg)
    private, optimizer, _ = PrivacyEngine().make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=0.0, max_grad_norm=0.01,
        grad_sample_mode=mode)
    private.train()
    first, samples = _clipped_grad_samples(private, optimizer, criterion, data.train, [0, 1, 2], mode, 0.01)
    second, _ = _clipped_grad_samples(private, optimizer, criterion, data.train, [0, 5, 6, 7], mode, 0.01)
    torch.testing.assert_close(first[0], second[0], atol=1e-6, rtol=1e-4)
    assert not torch.allclose(first[0], first[1])
    for key, grad in samples.items():  # every trainable tensor gets a gradient (prompt and prefix parameters too)
        if ".lora_A." in key:
            continue  # LoRA starts with B = 0, so A's first gradient is 0 by design
        assert float(grad.abs().max()) > 0, f"{method}: {key} receives no gradient"
    if method in ("prefix", "p-tuning"):
        assert any(key.startswith(PROMPT_PARAMETERS) for key in samples)

    model, _ = _branch(cfg)  # a fresh model through the real round: Opacus wraps it on its device
    plan = round_plan(cfg, len(data.train), 0.0)
    plan.noise_multiplier = planned_noise_multiplier(8.0, cfg.dp.delta, plan.sample_rate, plan.steps, cfg.dp.accountant)
    outcome = train_round(model, data.train, cfg, plan, [], seed=1)
    assert set(outcome.arrays) == set(before)
    still = [k for k in before if np.array_equal(before[k], outcome.arrays[k])]
    assert not still, f"{method}: {still[:3]} did not move after DP steps"


@pytest.mark.parametrize("method,name,task", CASES)
def test_only_the_trainable_tensors_travel(method, name, task):
    model = build_peft_model(_cfg(method, name, task).model, 3, vocab_size=384, causal=task == "chat")
    arrays = adapter_arrays(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(arrays) == len(trainable)
    assert sum(a.size for a in arrays.values()) == sum(p.numel() for p in trainable)
    assert all(a.dtype == np.float32 for a in arrays.values())
    if method == "ffa-lora":
        assert not any("lora_A" in k for k in arrays) and any("lora_B" in k for k in arrays)
        frozen_a = {n: p for n, p in model.named_parameters() if "lora_A" in n}
        again = build_peft_model(_cfg(method, name, task).model, 3, vocab_size=384, causal=task == "chat")
        assert frozen_a and all(torch.equal(p, dict(again.named_parameters())[n]) for n, p in frozen_a.items())


@pytest.mark.parametrize("extra,fragment", [
    ({"model.peft": "prefix"}, "model.peft = prefix"),
    ({"model.peft": "p-tuning", "task": "chat", "model.name": "tiny-llama"}, "use model.peft = prefix"),
    ({"model.peft": "p-tuning", "model.name": "tiny-llama"}, "needs an encoder classifier"),
    ({"model.peft": "p-tuning", "model.pooling": "mean"}, "model.pooling = head"),
    ({"model.peft": "freeze", "model.freeze.top-layers": 5}, "at most 2"),
])
def test_a_combination_that_cannot_work_is_a_one_line_error_naming_the_fix(extra, fragment):
    cfg = RunConfig.from_flower({"task": "intent", **extra})
    with pytest.raises(ModelError) as err:
        build_peft_model(cfg.model, 3, vocab_size=384, causal=cfg.task.name == "chat")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_unknown_method_and_ghost_clipping_without_hooks_are_config_errors():
    with pytest.raises(ConfigError, match="model.peft"):
        RunConfig.from_flower({"model.peft": "adapters"})
    with pytest.raises(ConfigError, match="dp.ghost-clipping = false"):
        RunConfig.from_flower({"model.peft": "ia3", "dp.ghost-clipping": True})


# End to end: one real Flower simulation per method (3 branches x 2 rounds, DP), LoRA's is tests/test_simulation_e2e.py.
E2E = {"ffa-lora": ("tiny-bert", "intent"), "p-tuning": ("tiny-bert", "intent"), "ia3": ("tiny-bert", "intent"),
       "freeze": ("tiny-bert", "intent"), "prefix": ("tiny-llama", "chat")}


def _simulate_method(method: str, out):
    from simulations.local.runner import simulate
    from tests.conftest import ROOT

    name, task = E2E[method]
    config = {"num-server-rounds": 2, "min-train-branches": 3, "task": task, "model.name": name,
              "model.peft": method, "data.records-per-branch": 16, "model.max-length": 48,
              "train.batch-size": 8, "dp.target-epsilon": 8.0, "eval.generate-examples": 2, "eval.max-new-tokens": 8}
    return simulate(ROOT, out, num_branches=3, run_config=config, timeout=900)


@pytest.fixture(scope="module")
def method_runs(tmp_path_factory):
    """The five simulations, two at a time (each is mostly start-up and waiting: two share the cores well)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {m: pool.submit(_simulate_method, m, tmp_path_factory.mktemp(f"e2e-{m}") / "run") for m in sorted(E2E)}
        return {m: f.result() for m, f in futures.items()}


@pytest.fixture(params=sorted(E2E))
def method_run(request, method_runs):
    return request.param, method_runs[request.param]


def test_each_method_trains_federated_under_dp_and_its_saved_adapter_reproduces_the_final_evaluation(method_run):
    from opacus.accountants import RDPAccountant
    from safetensors.numpy import load_file

    from server.evaluation.holdout import holdout_set

    method, run = method_run
    out = run.output_dir
    rows = [e for e in map(json.loads, (out / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    assert sorted((r["round"], r["branch"]) for r in rows) == [(r, f"branch-{b}") for r in (1, 2) for b in range(3)]
    assert all(r["status"] == "trained" and r["noise_multiplier"] > 0 for r in rows)
    for branch in {r["branch"] for r in rows}:  # epsilon recomputed from the ledger's figures alone
        mine = sorted((r for r in rows if r["branch"] == branch), key=lambda r: r["round"])
        acc = RDPAccountant()
        acc.history.extend((r["noise_multiplier"], r["sample_rate"], r["steps"]) for r in mine)
        assert mine[-1]["epsilon"] == pytest.approx(acc.get_epsilon(delta=mine[-1]["delta"]), rel=0.01)

    metrics = json.loads((out / "metrics.json").read_text())
    cfg = RunConfig.from_flower(metrics["config"])
    tokenizer = load_tokenizer(cfg.model)
    data, labels = holdout_set(cfg, tokenizer)
    chat = cfg.task.name == "chat"
    initial = adapter_arrays(build_peft_model(cfg.model, len(labels), vocab_size=len(tokenizer), causal=chat))
    travelled = load_file(str(out / "checkpoint" / "round-0002.safetensors"))  # the global arrays, as they travel
    assert set(travelled) == set(initial)
    assert max(float(np.abs(travelled[k] - initial[k]).max()) for k in initial) > 1e-6

    model, _, _, _ = load_saved_adapter(out / "adapter")  # PeftModel.from_pretrained; Freeze: the project's loader
    if method != "freeze":
        assert (out / "adapter" / "adapter_config.json").is_file()
    final = metrics["rounds"][-1]
    t = cfg.task
    again = (evaluate_chat(model, data, tokenizer, cfg.model.max_length, t.max_new_tokens, t.generate_examples)
             if chat else evaluate(model, data, task=t.name, threshold=t.threshold))
    assert again["loss"] == pytest.approx(final["loss"], rel=1e-4)
    for key in ("accuracy", "macro_f1", "rouge_l"):
        if key in final:
            assert again[key] == pytest.approx(final[key], abs=1e-6)
