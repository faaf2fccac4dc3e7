"""Synthetic data one branch at a time: each node makes only its own part, deterministically.

A simulated branch's synthetic records come from its own seeded stream, so its
data costs O(its own rows) whatever ``num-branches`` is; the server's
held-out set comes from a stream of its own with a bounded size.  A CSV/JSONL
source stays one fixed corpus, split once per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

import common.data.sources as data
import common.data.synthetic.streams as data_synthetic
from common.config.run import RunConfig
from common.data.labels import resolve_labels
from common.data.sources import file_split, holdout_corpus, partition_corpus, simulation_split, synthetic_held_out
from common.data.synthetic.streams import HELD_OUT_CAP, held_out_size, synthetic_branch, synthetic_branch_rows, synthetic_held_out_rows
from common.errors import DataError
from common.tasks.spec import task_of
from common.data.synthetic.messages import INTENTS
from tests.conftest import ROOT

TASKS = ("intent", "credit", "fraud")


def _partition(cfg: RunConfig, partition_id: int):
    return partition_corpus(cfg, task_of(cfg), partition_id)


def _held_out(cfg: RunConfig):
    return synthetic_held_out(cfg, resolve_labels(cfg, task_of(cfg)))


@pytest.mark.parametrize("task", TASKS)
def test_a_branch_costs_its_own_rows_whatever_the_federation_size(task, monkeypatch):
    """Branch 7 of a million-branch federation: only its own ~records-per-branch rows are generated."""
    made = []
    real = data_synthetic._generate
    monkeypatch.setattr(data_synthetic, "_generate", lambda cfg, labels, rng, tag: made.append(len(labels)) or real(cfg, labels, rng, tag))
    cfg = RunConfig.from_flower({"task": task, "num-branches": 1_000_000, "data.records-per-branch": 60})
    t0 = time.perf_counter()
    corpus, names = _partition(cfg, 7)
    assert time.perf_counter() - t0 < 10
    assert made == [len(corpus)] and 2 <= len(corpus) < 60 * 20
    assert set(corpus.labels) <= set(names.names)
    held_out, _ = holdout_corpus(cfg, task_of(cfg))
    assert made[1:] == [len(held_out)] == [HELD_OUT_CAP]


@pytest.mark.parametrize("task", TASKS)
def test_branch_data_is_seeded_per_branch_and_identical_in_another_process(task):
    cfg = RunConfig.from_flower({"task": task, "num-branches": 50, "data.records-per-branch": 30})
    first = synthetic_branch(cfg, 3)
    again = synthetic_branch(cfg, 3)
    assert (first.texts, first.labels, first.records) == (again.texts, again.labels, again.records)
    other = synthetic_branch(cfg, 4)
    assert (other.texts, other.records) != (first.texts, first.records)
    reseeded = synthetic_branch(RunConfig.from_flower({"task": task, "num-branches": 50, "data.records-per-branch": 30,
                                                       "seed": 7}), 3)
    assert (reseeded.texts, reseeded.records) != (first.texts, first.records)
    # Another process (another node: its own hash seed) derives the same rows.
    code = ("import json; from common.config.run import RunConfig; from common.data.synthetic.streams import synthetic_branch;"
            f"c = synthetic_branch(RunConfig.from_flower({{'task': '{task}', 'num-branches': 50, "
            "'data.records-per-branch': 30}), 3); print(json.dumps([c.texts, c.labels, c.records]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout) == json.loads(json.dumps([first.texts, first.labels, first.records]))


def test_simulation_split_is_every_branch_stream_in_order():
    cfg = RunConfig.from_flower({"num-branches": 6, "data.records-per-branch": 25})
    train, test, parts, names = simulation_split(cfg)
    assert names == list(INTENTS)
    for p in range(6):
        assert train.subset(parts[p]).texts == _partition(cfg, p)[0].texts
    assert test.texts == holdout_corpus(cfg, task_of(cfg))[0].texts
    flat = np.concatenate(parts)
    assert len(flat) == len(set(flat.tolist())) == len(train)


def test_branch_sizes_and_label_skew_follow_the_partition():
    """Mean size records-per-branch; sizes unequal; dirichlet with small alpha skews labels more than iid."""

    def branches(partition: str, alpha: float = 1.0):
        cfg = RunConfig.from_flower({"num-branches": 40, "data.records-per-branch": 80, "data.partition": partition,
                                     "data.dirichlet-alpha": alpha})
        return [synthetic_branch(cfg, p).labels for p in range(40)]

    def skew(parts):  # mean share of each branch's most common label
        return np.mean([Counter(p).most_common(1)[0][1] / len(p) for p in parts])

    iid, skewed = branches("iid"), branches("dirichlet", 0.1)
    for parts in (iid, skewed):
        sizes = [len(p) for p in parts]
        assert min(sizes) >= 2 and min(sizes) < max(sizes)
    assert 60 <= np.mean([len(p) for p in iid]) <= 100
    assert skew(skewed) > skew(iid) + 0.2
    # One branch holds the whole pool, unskewed.
    alone = synthetic_branch(RunConfig.from_flower({"num-branches": 1, "data.records-per-branch": 80}), 0)
    assert len(alone) == 80 and Counter(alone.labels) == Counter({label: 10 for label in INTENTS})


def test_generator_features_survive_per_branch_generation():
    """Planted PII, the zh share and Luhn-valid cards: the records are the generator's own."""
    cfg = RunConfig.from_flower({"num-branches": 20, "data.records-per-branch": 100, "data.zh-fraction": 0.3})
    rows = [r for p in range(5) for r in synthetic_branch_rows(cfg, p)]
    assert all(1 <= len(r.pii) <= 4 for r in rows)
    assert 0.2 < np.mean([r.lang == "zh" for r in rows]) < 0.4
    assert {p.type for r in rows for p in r.pii} == {"ID_CARD", "PHONE", "BANK_CARD", "EMAIL", "NAME", "ADDRESS"}
    fraud = RunConfig.from_flower({"task": "fraud", "num-branches": 20, "data.records-per-branch": 300})
    tx = [r for p in range(4) for r in synthetic_branch_rows(fraud, p)]
    ids = [r.fields["transaction_id"] for r in tx]
    assert len(set(ids)) == len(ids)
    assert {t for r in tx for t, _ in r.pii} >= {"NAME", "BANK_CARD", "PHONE"}
    # Fraud rows are drawn as the generator's fraud rows: risk signals are far more common among them.
    held = synthetic_held_out_rows(fraud)
    risky = lambda r: r.fields["device"] == "new device" or r.fields["merchant_country"] != r.fields["home_country"]  # noqa: E731
    pos = [r for r in held + tx if r.label == "fraud"]
    neg = [r for r in held + tx if r.label == "legit"]
    assert len(pos) >= 10 and np.mean([risky(r) for r in pos]) > 2 * np.mean([risky(r) for r in neg])


@pytest.mark.parametrize("task", TASKS)
def test_held_out_size_rule_and_cap(task):
    small = RunConfig.from_flower({"task": task, "num-branches": 3, "data.records-per-branch": 200})
    assert held_out_size(small) == 150  # 20 % of ceil(600 / 0.8) = 750, as the whole-corpus split held out
    test = _held_out(small)
    assert len(test) == 150
    big = RunConfig.from_flower({"task": task, "num-branches": 1000, "data.records-per-branch": 200})
    bigger = RunConfig.from_flower({"task": task, "num-branches": 100_000, "data.records-per-branch": 200})
    assert held_out_size(big) == held_out_size(bigger) == HELD_OUT_CAP
    # The held-out set depends on its size and the seed only: every large federation evaluates on the same rows.
    assert _held_out(big).texts == _held_out(bigger).texts
    assert _held_out(big).records == _held_out(bigger).records
    counts = Counter(_held_out(big).labels)
    if task == "intent":
        assert set(counts.values()) == {HELD_OUT_CAP // len(INTENTS)}  # stratified
    else:
        positive = {"credit": "bad", "fraud": "fraud"}[task]
        assert counts[positive] == {"credit": 600, "fraud": 20}[task]


def test_a_small_binary_held_out_set_keeps_both_classes():
    cfg = RunConfig.from_flower({"task": "fraud", "num-branches": 2, "data.records-per-branch": 20})
    assert held_out_size(cfg) == 10
    assert Counter(_held_out(cfg).labels) == {"legit": 9, "fraud": 1}


def test_too_few_records_per_branch_is_one_line():
    with pytest.raises(DataError) as err:
        _partition(RunConfig.from_flower({"num-branches": 5, "data.records-per-branch": 1}), 0)
    assert "use fewer branches" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="partition-id 5 but num-branches is 5"):
        _partition(RunConfig.from_flower({"num-branches": 5}), 5)


def test_a_file_is_parsed_once_per_process_and_reparsed_when_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    rows = "".join(f"message number {i},{'abc'[i % 3]}\n" for i in range(60))
    path.write_text("text,label\n" + rows)
    loads = []
    real = data.load_file
    monkeypatch.setattr(data, "load_file", lambda cfg, task, p: loads.append(p) or real(cfg, task, p))
    cfg = RunConfig.from_flower({"data.source": str(path), "num-branches": 4})
    first = [_partition(cfg, p)[0].texts for p in range(4)]
    assert len(loads) == 1
    assert holdout_corpus(cfg, task_of(cfg))[0].texts == file_split(cfg, task_of(cfg)).test.texts and len(loads) == 1
    assert sum(len(t) for t in first) + len(file_split(cfg, task_of(cfg)).test) == 60
    path.write_text("text,label\n" + rows.replace("message", "passage"))  # same size, new content
    assert _partition(cfg, 0)[0].texts == [t.replace("message", "passage") for t in first[0]]
    assert len(loads) == 2
    _partition(RunConfig.from_flower({"data.source": str(path), "num-branches": 3}), 0)  # another split
    assert len(loads) == 3
