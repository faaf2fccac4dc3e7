"""Task ``chat``: causal-LM SFT with DP LoRA, from the loss on reply tokens to a real 3 x 2 federation.

The units check what DP-SGD for sequences relies on (one dialogue = one
loss term, labels only on the reply, ghost clipping agreeing with Opacus's
per-sample gradients); the end-to-end run is a real Flower simulation whose
ledger, metrics, adapter and audit a user would read.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import pytest
import torch

from common.privacy.accounting import epsilon_of, planned_noise_multiplier
from client.training import round_plan, train_round
from common.tasks.chat import PROMPT_TEMPLATE, rouge_l, tokenize_dialogues
from common.config.run import RunConfig
from common.errors import ModelError
from common.model.losses import IGNORE, TaskLoss, response_nll
from common.model.build import build_peft_model, load_tokenizer
from tests.conftest import ROOT

PROMPTS = ["My card was stolen, please block it.", "我的卡丢了，请帮我挂失。", "What is my balance?", "Hi"]
REPLIES = ["I have blocked the card. A new one arrives in 5 days.", "已为您挂失，新卡将在5天内寄出。", "Your balance is shown in the app.",
           "Hello! How can I help you today?"]


def _cfg(**extra) -> RunConfig:
    return RunConfig.from_flower({"task": "chat", "model.name": "tiny-llama", "model.max-length": 96, "train.batch-size": 4,
                                  **extra})


def test_labels_cover_the_reply_and_eos_only():
    tok = load_tokenizer(_cfg().model)
    data = tokenize_dialogues(PROMPTS, REPLIES, tok, 160)  # every dialogue fits: nothing cut
    for i, (prompt, reply) in enumerate(zip(PROMPTS, REPLIES)):
        n_prompt = len(tok(PROMPT_TEMPLATE.format(prompt=prompt), add_special_tokens=False)["input_ids"])
        n_reply = len(tok(reply, add_special_tokens=False)["input_ids"]) + 1  # + EOS
        labels, ids = data.labels[i], data.input_ids[i]
        assert (labels[:n_prompt] == IGNORE).all()
        assert torch.equal(labels[n_prompt:n_prompt + n_reply], ids[n_prompt:n_prompt + n_reply])
        assert labels[n_prompt + n_reply - 1] == tok.eos_token_id
        assert (labels[n_prompt + n_reply:] == IGNORE).all()  # padding
        assert int(data.attention_mask[i].sum()) == n_prompt + n_reply


def test_a_long_dialogue_keeps_the_end_of_its_prompt_and_the_start_of_its_reply():
    tok = load_tokenizer(_cfg().model)
    data = tokenize_dialogues(["x" * 300 + " please block my card"], ["Blocked. " + "y" * 300], tok, 64)
    text = tok.decode(data.input_ids[0], skip_special_tokens=True)
    assert "please block my card\nAgent: Blocked." in text
    assert int((data.labels[0] != IGNORE).sum()) >= 32


def test_the_loss_ignores_prompt_tokens_and_each_dialogue_is_one_unit():
    torch.manual_seed(0)
    tok = load_tokenizer(_cfg().model)
    data = tokenize_dialogues(PROMPTS, REPLIES, tok, 96)
    logits = torch.randn(len(PROMPTS), 96, len(tok), requires_grad=True)
    TaskLoss(generative=True)(logits, data.labels).backward()
    predicts_reply = torch.zeros_like(data.labels, dtype=torch.bool)
    predicts_reply[:, :-1] = data.labels[:, 1:] != IGNORE  # logits at t predict token t+1
    assert logits.grad[~predicts_reply].abs().max() == 0  # no gradient from any prompt or padding position
    assert logits.grad[predicts_reply].abs().sum(-1).min() > 0
    alone = torch.stack([response_nll(logits[i:i + 1], data.labels[i:i + 1])[0] for i in range(len(PROMPTS))])
    together = response_nll(logits, data.labels)
    assert torch.allclose(alone, together)  # a dialogue's loss term does not depend on the others in its batch
    assert TaskLoss(generative=True)(logits, data.labels).item() == pytest.approx(together.mean().item())


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_ghost_clipping_gives_the_same_clipped_step_as_per_sample_gradients(name):
    """Opacus ghost clipping with our per-dialogue loss = the hooks' clipped per-sample gradients (noise 0)."""
    from opacus import PrivacyEngine

    cfg = _cfg(**{"model.name": name})
    tok = load_tokenizer(cfg.model)
    data = tokenize_dialogues(PROMPTS, REPLIES, tok, 96)

    def one_step(mode: str) -> dict[str, torch.Tensor]:
        model = build_peft_model(cfg.model, 0, vocab_size=len(tok), causal=True)
        params = [p for p in model.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in params]
        loader = torch.utils.data.DataLoader(data.as_dataset(), batch_size=len(PROMPTS))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            private = PrivacyEngine().make_private(
                module=model, optimizer=torch.optim.SGD(params, lr=1.0), data_loader=loader, criterion=TaskLoss(True),
                noise_multiplier=0.0, max_grad_norm=0.01, poisson_sampling=False, grad_sample_mode=mode)
            model, optimizer, *rest = private
            criterion = rest[0] if mode == "ghost" else TaskLoss(True)
            model.train()
            ids, mask, labels = next(iter(rest[-1]))
            optimizer.zero_grad()
            torch.manual_seed(0)  # GPT-2's dropout: the same masks in both modes
            criterion(model(input_ids=ids, attention_mask=mask).logits, labels).backward()
            optimizer.step()
        return [p.detach() - b for p, b in zip(params, before)]

    hooks, ghost = one_step("hooks"), one_step("ghost")
    assert any(d.abs().max() > 0 for d in hooks)
    for a, b in zip(hooks, ghost):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-3)


@pytest.mark.parametrize("extra", [{}, {"dp.ghost-clipping": True, "train.physical-batch-size": 2},
                                   {"model.name": "tiny-gpt2", "train.physical-batch-size": 2}])
def test_dp_round_on_dialogues_accounts_like_classification(extra):
    cfg = _cfg(**extra)
    tok = load_tokenizer(cfg.model)
    data = tokenize_dialogues(PROMPTS * 6, REPLIES * 6, tok, 96)
    plan = round_plan(cfg, len(data), 0.0)
    plan.noise_multiplier = planned_noise_multiplier(8.0, cfg.dp.delta, plan.sample_rate, plan.steps * 3, "rdp")
    model = build_peft_model(cfg.model, 0, vocab_size=len(tok), causal=True)
    travels = set(model.state_dict())
    out = train_round(model, data, cfg, plan, [], seed=0)
    assert out.steps == plan.steps == 6 and out.sample_rate == pytest.approx(1 / 6)
    assert out.accountant_history == [(plan.noise_multiplier, plan.sample_rate, plan.steps)]
    assert all("lora_" in k for k in out.arrays)  # only the adapter travels: no embeddings, no LM head
    assert len(out.arrays) > 0 and len(travels) > len(out.arrays)
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = list(out.accountant_history)
    assert epsilon_of(out.accountant_history, "rdp", cfg.dp.delta) == pytest.approx(acc.get_epsilon(cfg.dp.delta))


def test_rouge_l_scores_chinese_by_character():
    assert rouge_l(["已为您挂失"], ["已为您挂失"]) == pytest.approx(1.0)
    assert 0 < rouge_l(["已为您挂失卡片"], ["已为您挂失，新卡"]) < 1
    assert rouge_l(["the card is blocked"], ["Your card is blocked."]) == pytest.approx(2 * 0.75 * 0.75 / 1.5)


def test_an_encoder_cannot_be_the_chat_model():
    with pytest.raises(ModelError, match="needs a causal LM.*tiny-llama"):
        build_peft_model(RunConfig.from_flower({"task": "chat"}).model, 0, causal=True)


# --------------------------------------------------------------------------- a real federation

@pytest.fixture(scope="module")
def chat_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("chat") / "run"
    cmd = [sys.executable, "-m", "simulations.cli.main", "simulate", "--task", "chat", "--branches", "3", "--rounds", "2",
           "--out", str(out), "--set", "data.records-per-branch=24", "--set", "model.max-length=128",
           "--set", "train.batch-size=8", "--set", "min-train-branches=3", "--set", "audit.canaries=4",
           "--set", "eval.generate-examples=8", "--set", "eval.max-new-tokens=16"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_chat_federation_trains_with_dp_and_ledgers_like_classification(chat_run):
    rows = [e for e in map(json.loads, (chat_run / "ledger.jsonl").read_text().splitlines()) if e.get("kind") != "head"]
    assert sorted((r["round"], r["branch"]) for r in rows) == [(r, f"branch-{b}") for r in (1, 2) for b in range(3)]
    from opacus.accountants import RDPAccountant

    for branch in ("branch-0", "branch-1", "branch-2"):
        mine = sorted((r for r in rows if r["branch"] == branch), key=lambda r: r["round"])
        assert all(r["status"] == "trained" and r["noise_multiplier"] > 0 and r["steps"] > 0 for r in mine)
        assert sum(mine[0]["pii_counts"].values()) > 0  # both sides of the dialogues were desensitized
        acc = RDPAccountant()
        acc.history = [(r["noise_multiplier"], r["sample_rate"], r["steps"]) for r in mine]
        assert 0 < mine[0]["epsilon"] < mine[1]["epsilon"] <= 8.0 * 1.0001
        assert mine[1]["epsilon"] == pytest.approx(acc.get_epsilon(delta=mine[1]["delta"]), rel=0.01)
    metrics = json.loads((chat_run / "metrics.json").read_text())
    for r in metrics["rounds"]:
        assert {"loss", "perplexity", "rouge_l"} <= set(r)
        assert r["perplexity"] == pytest.approx(math.exp(r["loss"]), rel=1e-6) and 0 <= r["rouge_l"] <= 1
    audit = json.loads((chat_run / "audit.json").read_text())
    assert audit["canaries"] == 4 and audit["exposure"]["max_bits"] == pytest.approx(7.0)
    assert 0 <= audit["exposure"]["held_out_mean"] <= 7.0


def test_fedbank_chat_loads_the_adapter_desensitizes_and_answers(chat_run):
    cmd = [sys.executable, "-m", "simulations.cli.main", "chat", "--adapter", str(chat_run / "adapter"), "--max-new-tokens", "8",
           "--prompt", "My phone is 13812345678, my card was stolen"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "13812345678" not in done.stdout and "[PHONE]" in done.stdout
    assert done.stdout.startswith("> My phone is [PHONE]")


def test_fedbank_chat_refuses_a_classifier_adapter(tmp_path):
    from common.model.adapter import save_adapter

    mcfg = RunConfig().model
    save_adapter(build_peft_model(mcfg, 3), tmp_path / "adapter", mcfg, ["a", "b", "c"], task="intent")
    done = subprocess.run([sys.executable, "-m", "simulations.cli.main", "chat", "--adapter", str(tmp_path / "adapter"),
                           "--prompt", "hi"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("fedbank: error: the adapter in")
    assert "trained for task 'intent'" in done.stderr


def test_a_causal_lm_saved_to_a_local_path_is_the_same_base(tmp_path):
    """model.name / fedbank chat --base: a local save_pretrained directory builds the identical causal LM."""
    from common.config.sections import ModelConfig
    from common.model.build import build_base_model, check_base_model

    tiny = _cfg().model
    tok = load_tokenizer(tiny)
    build_base_model(tiny, 0, vocab_size=len(tok), causal=True).save_pretrained(tmp_path / "llama")
    tok.save_pretrained(tmp_path / "llama")
    local = ModelConfig(name=str(tmp_path / "llama"), max_length=96)
    check_base_model(local, causal=True)
    a = build_peft_model(tiny, 0, vocab_size=len(tok), causal=True)
    b = build_peft_model(local, 0, causal=True)
    assert set(a.state_dict()) == set(b.state_dict())
    ids = tokenize_dialogues(PROMPTS[:2], REPLIES[:2], tok, 96)
    with torch.no_grad():
        assert torch.allclose(a(input_ids=ids.input_ids).logits, b(input_ids=ids.input_ids).logits, atol=1e-5)
    build_base_model(RunConfig().model, 3, vocab_size=len(tok)).save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelError, match="not a causal LM"):
        check_base_model(ModelConfig(name=str(tmp_path / "bert")), causal=True)


def test_chat_goes_through_the_one_split_file_table_and_branch_preparation(tmp_path):
    """Dialogues are a Corpus like any other: split, written as a branch's file, read back and prepared by prepare_branch."""
    import csv
    from pathlib import Path

    from client.branch_data import prepare_branch
    from common.config.run import BranchSettings
    from common.data.files import corpus_table, load_file
    from common.data.sources import partition_corpus, simulation_split
    from common.tasks.spec import task_of

    cfg = _cfg(**{"num-branches": 2, "data.records-per-branch": 6, "audit.canaries": 2, "audit.canary-branch": "b0"})
    train, test, parts, names = simulation_split(cfg)
    assert names == [] and train.responses is not None and len(test) > 0
    mine, labels = partition_corpus(cfg, task_of(cfg), 1)
    assert mine.texts == train.subset(parts[1]).texts and mine.responses == train.subset(parts[1]).responses and len(labels) == 0
    header, rows = corpus_table(cfg, mine)
    path = tmp_path / "b0.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    assert load_file(cfg, task_of(cfg), path) == mine
    branch = BranchSettings("b0", None, None, str(path), Path(tmp_path), 10.0, Path(tmp_path))
    data = prepare_branch(cfg, branch, load_tokenizer(cfg.model))
    assert data.labels == [] and data.class_weights is None and data.task.generative
    assert len(data.train) == len(mine) + 2  # the two planted reply canaries
    assert sum(data.pii_counts.values()) > 0
