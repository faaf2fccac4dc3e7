"""Tasks (intent | credit | fraud): column mapping, record desensitization, metrics, generators, DP training.

Fast: no Flower run.  Each task trains a few DP-SGD steps through the
project's own path (``prepare_branch`` -> ``train_round`` with real Opacus ->
the server's ``holdout_set`` + ``evaluate``).
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from client.branch_data import prepare_branch
from client.budget import PrivacyState
from common.privacy.accounting import planned_noise_multiplier
from client.training import round_plan, train_round
from common.config.run import RunConfig, branch_settings
from common.data.files import corpus_table, load_file
from common.data.labels import LabelSet, resolve_labels
from common.data.sources import renderer_for, simulation_split
from common.data.synthetic.streams import synthetic_branch_rows, synthetic_held_out_rows
from common.errors import ConfigError, DataError
from common.model.metrics import binary_metrics, evaluate
from common.model.build import build_peft_model, load_tokenizer
from common.model.adapter import adapter_arrays
from common.privacy.pii import luhn_valid
from common.privacy.records import RecordPipeline, generalize
from common.data.synthetic.records import generate_transactions
from common.model.losses import TaskLoss, classification_nll
from common.tasks.spec import class_weights, task_of
from server.evaluation.holdout import holdout_set
from tests.conftest import SHARED_DATA

GERMAN = SHARED_DATA / "german_credit" / "german.csv"
GERMAN_RUN = {"task": "credit", "data.source": str(GERMAN), "data.label-column": "Class", "data.positive-label": 2}
needs_german = pytest.mark.skipif(not GERMAN.exists(), reason="shared data not present")


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------- column mapping errors

CREDIT_CSV = "id,full_name,Age,Income,Class\n1,Ann Lee,34,100,bad\n2,Bo Chan,51,200,good\n3,Cy Dorn,29,300,good\n"


def _render(corpus, cfg: RunConfig) -> tuple[list[str], dict[str, int]]:
    """The model texts and PII counts of ``corpus``, rendered as a branch renders them."""
    rendered = renderer_for(cfg, task_of(cfg)).render(corpus.texts, corpus.records)
    return rendered.texts, rendered.counts


@pytest.mark.parametrize("overrides, error, fragment", [
    ({"task": "mortgage"}, ConfigError, "config key 'task'"),
    ({"train.imbalance": "smote"}, ConfigError, "train.imbalance"),
    ({"data.quasi-columns": "Age=blur"}, ConfigError, "data.quasi-columns"),
    ({"data.quasi-columns": "Income"}, ConfigError, "'Income=RULE'"),
    ({"data.field-columns": "Age,Class"}, ConfigError, "names the label column 'Class'"),
    ({"data.field-columns": "Age", "data.id-columns": "Age"}, ConfigError, "disjoint"),
    ({"data.field-columns": "Age,Salary"}, DataError, "no column 'Salary'"),
    ({"data.id-columns": "customer_id"}, DataError, "named in data.id-columns"),
    ({"data.label-column": "Outcome"}, DataError, "no column 'Outcome'"),
    ({"data.positive-label": "default"}, DataError, "data.positive-label 'default' is not a value"),
    ({"data.value-map": "nope.json"}, ConfigError, "data.value-map"),
    ({"dp.enabled": True, "train.imbalance": "oversample"}, ConfigError, "weighted-loss"),
    ({"task": "intent", "data.positive-label": "", "data.field-columns": "Age"}, ConfigError, "task is 'intent'"),
    ({"task": "intent", "data.positive-label": "", "train.positive-weight": 5.0}, ConfigError, "train.positive-weight"),
])
def test_column_mapping_errors_are_one_line(tmp_path, overrides, error, fragment):
    path = tmp_path / "credit.csv"
    path.write_text(CREDIT_CSV)
    run = {"task": "credit", "data.source": str(path), "data.label-column": "Class", "data.positive-label": "bad",
           "num-branches": 1, **overrides}
    with pytest.raises(error) as err:
        simulation_split(RunConfig.from_flower(run))
    assert fragment in _one_line(err)


@pytest.mark.parametrize("content, fragment", [
    ("a,b,Class\n1,2,x\n3,4,y\n5,6,z\n", "has 3 values"),
    ("a,b,Class\n1,2,x\n3,4,y\n", "set data.positive-label to one of"),
    ("a,b,Class\n1,2,fraud\n3,4,fraud\n", "holds only the positive label"),
])
def test_binary_label_errors_are_one_line(tmp_path, content, fragment):
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        simulation_split(RunConfig.from_flower({"task": "fraud", "data.source": str(path), "data.label-column": "Class",
                                                "num-branches": 1}))
    assert fragment in _one_line(err)


def test_jsonl_records_load_with_the_same_mapping(tmp_path):
    path = tmp_path / "tx.jsonl"
    path.write_text('{"amount": 12.5, "country": "GB", "is_fraud": "no"}\n{"amount": 900, "country": "NG", "is_fraud": "yes"}\n')
    cfg = RunConfig.from_flower({"task": "fraud", "data.label-column": "is_fraud"})
    corpus = load_file(cfg, task_of(cfg), path)
    assert corpus.records == [{"amount": "12.5", "country": "GB"}, {"amount": "900", "country": "NG"}]
    assert corpus.labels == ["no", "yes"]
    header, rows = corpus_table(cfg, corpus)
    assert header == ["amount", "country", "is_fraud"] and rows[1] == ["900", "NG", "yes"]
    with pytest.raises(DataError) as err:
        mapped = RunConfig.from_flower({"task": "fraud", "data.label-column": "is_fraud", "data.field-columns": "amount,mcc"})
        load_file(mapped, task_of(mapped), path)
    assert "no column 'mcc'" in _one_line(err) and "data.field-columns" in str(err.value)


def test_the_label_set_is_resolved_once_with_its_positive_class_and_encoding(tmp_path):
    path = tmp_path / "credit.csv"
    path.write_text(CREDIT_CSV)
    cfg = RunConfig.from_flower({"task": "credit", "data.source": str(path), "data.label-column": "Class", "data.positive-label": "bad"})
    labels = resolve_labels(cfg, task_of(cfg), ["good", "bad", "good"])
    assert labels.names == ("good", "bad") and labels.positive == "bad" and not labels.fixed and len(labels) == 2
    assert labels.encode(["bad", "good"], where="test").tolist() == [1, 0]
    with pytest.raises(DataError, match="there is no corpus to read labels from"):
        resolve_labels(cfg, task_of(cfg))
    chat = RunConfig.from_flower({"task": "chat"})
    assert resolve_labels(chat, task_of(chat)).names == () and task_of(chat).labelled is False
    synthetic = RunConfig.from_flower({"task": "fraud"})
    assert resolve_labels(synthetic, task_of(synthetic)) == LabelSet(("legit", "fraud"), fixed=True, binary=True)


# --------------------------------------------------------------------------- desensitization before serialization

def test_credit_records_lose_identifiers_and_ages_are_banded():
    cfg = RunConfig.from_flower({"task": "credit", "num-branches": 2, "data.records-per-branch": 40})
    train, test, _, names = simulation_split(cfg)
    assert names == ["good", "bad"]
    rows = [r for p in range(cfg.federation.num_branches) for r in synthetic_branch_rows(cfg, p)]
    assert [r.fields for r in rows] == train.records  # the answer key is of exactly the training records
    rows += synthetic_held_out_rows(cfg)
    texts, counts = _render(train, cfg)
    planted = {value for r in rows for _, value in r.pii}
    assert not any(value in text for value in planted for text in texts)
    assert counts["NAME"] == counts["PHONE"] == counts["ID_CARD"] == counts["EMAIL"] == len(train)
    for text, record in zip(texts, train.records):
        fields = dict(part.split(": ", 1) for part in text.split("; "))
        assert set(fields) == {"age", "postcode", "monthly income", "years employed", "loan amount", "duration months",
                               "purpose", "housing", "checking balance", "late payments 2y"}  # ids dropped, label absent
        assert fields["age"] == generalize(record["age"], "age-band") and re.fullmatch(r"<18|\d\d-\d\d|65\+", fields["age"])
        assert fields["postcode"] == record["postcode"].replace(" ", "")[:3] + "*"
        assert record["application_id"] not in text


def test_a_users_identifier_columns_are_dropped_and_free_text_masked():
    pipeline = RecordPipeline(id_columns=frozenset({"customer_id"}), value_map={"*": {"A11": "< 0 DM"}})
    record = {"customer_id": "C-88231", "Customer Name": "Jane Doe", "mobile": "13812345678", "dob": "1987-03-02",
              "status": "A11", "memo": "asked to call 415-555-0132 after 5pm"}
    texts, counts = pipeline.render([record])
    assert texts == ["dob: 1980s; status: < 0 DM; memo: asked to call [PHONE] after 5pm"]
    assert counts["NAME"] == 1 and counts["PHONE"] == 2


@needs_german
def test_german_credit_is_generalized_decoded_and_labelled_bad_positive(tmp_path):
    cfg = RunConfig.from_flower({**GERMAN_RUN, "data.value-map": "german-credit", "output-dir": str(tmp_path)})
    train, test, _, names = simulation_split(cfg)
    assert names == ["1", "2"] and len(train) + len(test) == 1000
    assert test.labels.count("2") == 60  # stratified: the 30 % bad rate is kept in the held-out set
    texts, counts = _render(test, cfg)
    assert counts["PHONE"] == len(test)  # 'Telephone' is named like an identifier column: dropped, whatever it holds
    for text, record in zip(texts, test.records):
        assert "telephone" not in text and "A1" not in text
        assert f"age: {generalize(record['Age'], 'age-band')};" in text and f"age: {record['Age']};" not in text
        assert text.startswith("checking account status: ")


# --------------------------------------------------------------------------- metrics

def test_binary_metrics_equal_sklearn_and_ks_is_max_tpr_minus_fpr():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.2).astype(int)
    s = np.clip(rng.normal(0.35 + 0.25 * y, 0.2), 0, 1)
    credit = binary_metrics("credit", y, s, threshold=0.4)
    assert credit["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert credit["ks"] == pytest.approx(ks_2samp(s[y == 1], s[y == 0]).statistic)  # an independent definition
    assert credit["f1"] == pytest.approx(f1_score(y, s >= 0.4))
    fraud = binary_metrics("fraud", y, s)
    assert fraud["pr_auc"] == pytest.approx(average_precision_score(y, s))
    # Hand-checkable: 200 negatives, 4 positives; at most 2 negatives (1 %) may score at or above the cut.
    y2 = np.r_[np.zeros(200), np.ones(4)].astype(int)
    s2 = np.r_[np.linspace(0, 0.9, 200), [0.95, 0.899, 0.5, 0.1]]
    assert binary_metrics("fraud", y2, s2)["recall_at_1pct_fpr"] == 0.5  # cut at 0.899: one negative (0.9) above, FPR 0.5 %
    s2[201] = 0.85  # now 11 negatives (0.855 ... 0.9) outrank it: FPR 5.5 %, only 0.95 is caught
    assert binary_metrics("fraud", y2, s2)["recall_at_1pct_fpr"] == 0.25
    assert binary_metrics("credit", [0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])["ks"] == 1.0
    assert math.isnan(binary_metrics("fraud", [0, 0], [0.1, 0.2])["pr_auc"])


class _FixedLogits(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.as_tensor(logits, dtype=torch.float32)
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.logits[input_ids[:, 0]])


def test_evaluate_returns_each_tasks_metrics_from_the_positive_probability():
    from common.tasks.tokens import TokenizedSet

    logits = np.array([[2.0, -1.0], [0.5, 0.2], [-0.3, 0.9], [0.1, 0.0], [-2.0, 1.5], [1.0, 1.2]])
    y = torch.tensor([0, 0, 1, 1, 1, 0])
    data = TokenizedSet(torch.arange(6).unsqueeze(1), torch.ones(6, 1, dtype=torch.long), y)
    p = torch.softmax(torch.tensor(logits, dtype=torch.float32), -1)[:, 1].numpy()
    credit = evaluate(_FixedLogits(logits), data, batch_size=4, task="credit", threshold=0.3)
    assert set(credit) == {"loss", "accuracy", "macro_f1", "roc_auc", "ks", "f1"}
    assert credit["roc_auc"] == pytest.approx(roc_auc_score(y, p)) and credit["f1"] == pytest.approx(f1_score(y, p >= 0.3))
    fraud = evaluate(_FixedLogits(logits), data, task="fraud")
    assert set(fraud) == {"loss", "accuracy", "macro_f1", "pr_auc", "recall_at_1pct_fpr"}
    assert fraud["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert set(evaluate(_FixedLogits(logits), data)) == {"loss", "accuracy", "macro_f1"}


# --------------------------------------------------------------------------- generators

def test_fraud_generator_rate_signals_and_planted_pii():
    rows = generate_transactions(20_000, seed=5)
    y = np.array([r.label == "fraud" for r in rows])
    assert 0.008 <= y.mean() <= 0.012
    assert [r.fields for r in generate_transactions(50, seed=5)] == [r.fields for r in rows[:50]]
    p = np.array([r.probability for r in rows])
    assert average_precision_score(y, p) > 0.3  # the risk signals are real: the true probability ranks fraud well
    risky = np.array([r.fields["merchant_category"] in ("electronics", "jewelry", "gift cards", "money transfer",
                                                          "crypto exchange") for r in rows])
    new_device = np.array([r.fields["device"] == "new device" for r in rows])
    assert y[risky].mean() > 3 * y[~risky].mean() and y[new_device].mean() > 3 * y[~new_device].mean()
    assert all(luhn_valid(re.sub(r"\D", "", r.fields["card_number"])) for r in rows[:500])
    assert {t for r in rows[:200] for t, _ in r.pii} >= {"NAME", "BANK_CARD", "PHONE"}


def test_fraud_records_reach_the_model_without_their_pii():
    cfg = RunConfig.from_flower({"task": "fraud", "data.records-per-branch": 300})
    train, _, _, names = simulation_split(cfg)
    assert names == ["legit", "fraud"]
    texts, counts = _render(train, cfg)
    raw = [r for p in range(cfg.federation.num_branches) for r in synthetic_branch_rows(cfg, p)]
    assert [r.fields for r in raw] == train.records  # the answer key is of exactly the training records
    planted = {v for r in raw for _, v in r.pii}
    joined = "\n".join(texts)
    assert not any(v in joined for v in planted)
    assert "transaction id" not in joined and "customer name" not in joined and "card number" not in joined
    assert counts["BANK_CARD"] == counts["NAME"] == len(train) and counts["PHONE"] >= len(train)


# --------------------------------------------------------------------------- imbalance

def test_weighted_loss_gives_opacus_per_sample_gradients_times_the_weights():
    from opacus import GradSampleModule

    cfg = RunConfig.from_flower({"task": "fraud", "model.max-length": 16, "train.imbalance": "weighted-loss",
                                 "train.positive-weight": 7.0})
    tok = load_tokenizer(cfg.model)
    enc = tok(["amount: 10", "amount: 9000", "amount: 12", "hour: 3"], max_length=16, padding="max_length",
              truncation=True, return_tensors="pt")
    labels = torch.tensor([0, 1, 0, 1])
    weights = class_weights(labels, 2, cfg)
    assert weights.tolist() == [1.0, 7.0]

    def per_sample_grads(weighted: bool) -> list[torch.Tensor]:
        model = build_peft_model(cfg.model, 2, vocab_size=len(tok))
        loss = TaskLoss(generative=False, class_weights=weights if weighted else None)  # what train_round trains on
        gsm = GradSampleModule(model)
        gsm.train()  # Opacus captures activations in training mode only
        torch.manual_seed(0)  # the same dropout masks in both passes
        logits = gsm(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        with warnings.catch_warnings():  # frozen embeddings: the hook fires w.r.t. module outputs, as Opacus needs
            warnings.filterwarnings("ignore", message=".*[Ff]ull backward hook is firing.*")
            loss(logits, labels).backward()
        return [p.grad_sample.detach().clone() for p in gsm.parameters() if p.requires_grad]

    plain, weighted = per_sample_grads(False), per_sample_grads(True)
    w = weights[labels]
    for g0, g1 in zip(plain, weighted):
        assert torch.allclose(g1, g0 * w.view(-1, *[1] * (g0.dim() - 1)), atol=1e-6, rtol=1e-4)
    logits = torch.randn(4, 2)
    assert TaskLoss(False, weights)(logits, labels).item() == pytest.approx(
        (weights[labels] * torch.nn.functional.cross_entropy(logits, labels, reduction="none")).mean().item())
    per_record = TaskLoss(False, weights)
    per_record.reduction = "none"  # what Opacus's ghost clipping asks for
    assert torch.allclose(per_record(logits, labels), classification_nll(logits, labels, weights))
    assert torch.allclose(per_record(logits, labels)[labels == 1],
                          7.0 * torch.nn.functional.cross_entropy(logits, labels, reduction="none")[labels == 1])


def test_balanced_weights_and_oversampling(tmp_path):
    cfg = RunConfig.from_flower({"task": "fraud", "train.imbalance": "weighted-loss"})
    w = class_weights(torch.tensor([0] * 98 + [1] * 2), 2, cfg)
    assert w.tolist() == pytest.approx([100 / (2 * 98), 100 / (2 * 2)])
    run = {"task": "fraud", "data.records-per-branch": 300, "num-branches": 1, "model.max-length": 16,
           "dp.enabled": False, "output-dir": str(tmp_path)}
    tok = load_tokenizer(RunConfig.from_flower(run).model)
    branch = branch_settings({"partition-id": 0, "num-partitions": 1}, RunConfig.from_flower(run))
    plain = prepare_branch(RunConfig.from_flower(run), branch, tok)
    over = prepare_branch(RunConfig.from_flower({**run, "train.imbalance": "oversample"}), branch, tok)
    n_pos = int(plain.train.labels.sum())
    assert 0 < n_pos < len(plain.train) / 20
    assert int(over.train.labels.sum()) == len(over.train) - int(over.train.labels.sum()) == len(plain.train) - n_pos
    assert plain.class_weights is None and over.pii_counts == plain.pii_counts


# --------------------------------------------------------------------------- each task end to end with DP

TASK_RUNS = {
    "intent": {"data.records-per-branch": 40},
    "credit": {"data.records-per-branch": 40},
    "fraud": {"data.records-per-branch": 300, "train.imbalance": "weighted-loss"},
}


@pytest.mark.parametrize("task", sorted(TASK_RUNS))
def test_each_task_trains_with_dp_and_evaluates_its_metrics(tmp_path, task):
    run = {"task": task, "num-branches": 2, "num-server-rounds": 1, "model.max-length": 48, "train.batch-size": 16,
           "dp.target-epsilon": 8.0, "output-dir": str(tmp_path), **TASK_RUNS[task]}
    cfg = RunConfig.from_flower(run)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tok = load_tokenizer(cfg.model)
        branch = branch_settings({"partition-id": 0, "num-partitions": 2}, cfg)
        data = prepare_branch(cfg, branch, tok)
        state = PrivacyState.load(branch.state_dir, cfg.dp.accountant, cfg.dp.delta)
        plan = round_plan(cfg, len(data.train), noise_multiplier=0.0)
        plan.noise_multiplier = planned_noise_multiplier(cfg.dp.target_epsilon, cfg.dp.delta, plan.sample_rate,
                                                         plan.steps, cfg.dp.accountant)
        model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tok))
        assert (data.class_weights is not None) == (task == "fraud")
        before = adapter_arrays(model)
        outcome = train_round(model, data.train, cfg, plan, state.history, seed=3, class_weights=data.class_weights)
        assert outcome.steps == plan.steps and outcome.noise_multiplier > 0 and math.isfinite(outcome.mean_loss)
        assert any(not np.array_equal(before[k], outcome.arrays[k]) for k in before)
        epsilon = state.record_round(1, 1, outcome.accountant_history, outcome.steps)
        assert 0 < epsilon <= cfg.dp.target_epsilon * 1.0001
        test_set, names = holdout_set(cfg, tok)
        metrics = evaluate(model, test_set, task=task, threshold=cfg.task.threshold)
    finally:
        torch.set_num_threads(threads)
    expected = {"intent": set(), "credit": {"roc_auc", "ks", "f1"}, "fraud": {"pr_auc", "recall_at_1pct_fpr"}}[task]
    assert set(metrics) == {"loss", "accuracy", "macro_f1"} | expected
    assert all(math.isfinite(v) for v in metrics.values())
    if task != "intent":
        assert data.labels == names and len(names) == 2
        assert int(test_set.labels.sum()) >= 1
    print(f"\n{task}: {len(data.train)} rows at branch-0, epsilon {epsilon:.2f}, held-out {metrics}")


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_train_optimizer_picks_the_local_optimizer(optimizer):
    """One full-batch step: AdamW moves every coordinate with a gradient by the learning rate; SGD by lr x gradient."""
    lr = 1e-3
    cfg = RunConfig.from_flower({"num-branches": 1, "model.max-length": 32, "train.batch-size": 4096, "dp.enabled": False,
                                 "train.optimizer": optimizer, "train.momentum": 0.0, "train.learning-rate": lr})
    tok = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch_settings({"partition-id": 0, "num-partitions": 1}, cfg), tok)
    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tok))
    before = adapter_arrays(model)
    outcome = train_round(model, data.train, cfg, round_plan(cfg, len(data.train), 0.0), [], seed=0)
    assert outcome.steps == 1
    moved = np.concatenate([np.abs(outcome.arrays[k] - before[k]).ravel() for k in before])
    moved = moved[moved > 0]
    assert moved.size > 0
    if optimizer == "adamw":
        assert moved.max() <= lr * 1.01 and np.quantile(moved, 0.25) > 0.9 * lr  # less only near Adam's epsilon
    else:
        assert moved.max() / moved.min() > 10  # proportional to each coordinate's gradient
