"""Config validation, the CSV/JSONL loader on real data, and partitioning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.config.overrides import parse_overrides
from common.config.run import RunConfig, config_table
from common.data.labels import label_names
from common.data.sources import simulation_split
from common.data.split import partition
from common.data.files import load_table
from common.errors import ConfigError, DataError, FedbankError
from tests.conftest import BANKING77


@pytest.mark.parametrize("overrides, fragment", [
    ({"model.lora.rnk": 4}, "did you mean 'model.lora.rank'"),
    ({"model.lora.rank": 0}, "model.lora.rank"),
    ({"dp.target-epsilon": -1.0}, "dp.target-epsilon"),
    ({"dp.enabled": "yes"}, "dp.enabled"),
    ({"data.partition": "random"}, "data.partition"),
    ({"dp.accountant": "moments"}, "dp.accountant"),
    ({"train.optimizer": "adam"}, "train.optimizer"),
])
def test_bad_config_is_one_clear_line(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_flower(overrides)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_set_overrides_parse_as_toml_scalars():
    got = parse_overrides(["dp.enabled=False", " model.lora.rank = 4", "dp.delta=1e-5", 'model.name="tiny-gpt2"', "data.labels=a,b"])
    assert got == {"dp.enabled": False, "model.lora.rank": 4, "dp.delta": 1e-5, "model.name": "tiny-gpt2", "data.labels": "a,b"}
    with pytest.raises(FedbankError, match="--set 'dp.enabled' is not key=value"):
        parse_overrides(["dp.enabled"])


def test_pyproject_declares_every_key_with_the_dataclass_defaults():
    import tomllib
    from tests.conftest import ROOT

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]

    def flatten(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flatten(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    assert dict(flatten(declared)) == RunConfig().to_flower()


@pytest.mark.skipif(not BANKING77.exists(), reason="shared data not present")
def test_banking77_loads_through_the_loader():
    corpus = load_table(BANKING77, "text", "category")
    assert len(corpus) == 10003
    categories = json.loads((BANKING77.parent / "categories.json").read_text())
    assert set(corpus.labels) == set(categories) and len(set(corpus.labels)) == 77


@pytest.mark.skipif(not BANKING77.exists(), reason="shared data not present")
def test_banking77_simulation_split_is_seeded_and_disjoint(tmp_path, monkeypatch):
    import common.data.sources

    cfg = RunConfig.from_flower({"data.source": str(BANKING77), "data.label-column": "category",
                                 "num-branches": 10, "data.dirichlet-alpha": 0.5, "output-dir": str(tmp_path)})
    train, test, parts, names = simulation_split(cfg)
    monkeypatch.setattr(common.data.sources, "_FILE_SPLIT", None)  # split again from the file, not from the process's cache
    again = simulation_split(cfg)
    assert again[0] is not train
    assert len(names) == 77 and len(train) + len(test) == 10003
    assert all(np.array_equal(a, b) for a, b in zip(parts, again[2]))
    flat = np.concatenate(parts)
    assert len(flat) == len(set(flat.tolist())) == len(train)
    sizes = sorted(len(p) for p in parts)
    assert sizes[0] < sizes[-1]  # unequal branch sizes


def test_dirichlet_small_alpha_skews_labels_more_than_iid():
    labels = [str(i % 8) for i in range(1600)]

    def skew(parts):  # mean share of each branch's most common label
        return np.mean([np.bincount(np.asarray(labels)[p].astype(int)).max() / len(p) for p in parts])

    iid = partition(labels, 5, "iid", 1.0, seed=1)
    non_iid = partition(labels, 5, "dirichlet", 0.1, seed=1)
    assert skew(non_iid) > skew(iid) + 0.2


@pytest.mark.parametrize("content, fragment", [
    ("text,label\nhello,a\n", "no column 'category'"),
    ("text,category\n\"unclosed,a\n", "malformed"),
    ("text,category\n", "no rows"),
    ("text,category\nhi,a,extra\n", "malformed CSV row"),
])
def test_bad_csv_gives_one_line_data_error(tmp_path, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_table(path, "text", "category")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_jsonl_loads_and_missing_file_is_clear(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "lost card", "intent": "card_lost"}\n{"text": "hi", "intent": "other"}\n')
    corpus = load_table(path, "text", "intent")
    assert corpus.labels == ["card_lost", "other"]
    with pytest.raises(DataError, match="does not exist"):
        load_table(tmp_path / "nope.csv", "text", "label")


def test_label_set_comes_from_config_when_given(tmp_path):
    cfg = RunConfig.from_flower({"data.source": "x.csv", "data.labels": "b,a"})
    assert label_names(cfg, None) == ["b", "a"]


def test_readme_configuration_table_lists_every_key_with_its_default():
    """scripts/sync_config.py writes the table; this catches a setting added without it."""
    from scripts.sync_config import toml_value
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key, default, _ in config_table():
        assert f"| `{key}` | `{toml_value(default)}` |" in readme, f"README lacks {key}: run python scripts/sync_config.py"
