"""The one typed configuration of a fedbank run.

Flower hands every node the run config as a flat mapping of dotted, kebab-case
keys (``model.lora.rank``, ``dp.target-epsilon``) taken from
``[tool.flwr.app.config]`` in ``pyproject.toml`` plus any ``--run-config``
overrides.  This module is the only place that reads those keys: it turns the
mapping into frozen dataclasses, rejects unknown keys (suggesting the nearest
known one), converts types, and checks ranges, naming the key and the fix.

Per-node values (``branch-id``, ``data-path``, ``state-dir``) come from
``context.node_config`` and are read by :func:`branch_settings`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from common.errors import ConfigError


def _key(name: str, help: str, **kwargs: Any) -> Any:
    """Declare a dataclass field bound to run-config key ``name``."""
    return field(metadata={"key": name, "help": help}, **kwargs)


@dataclass(frozen=True)
class ModelConfig:
    """Base model, tokenizer and LoRA adapter."""

    name: str = _key("model.name", "Hub id or local path of a sequence-classification model; 'tiny-bert' builds a small random model offline.", default="tiny-bert")
    max_length: int = _key("model.max-length", "Tokens (bytes for the byte-level tokenizer) per example.", default=128)
    seed: int = _key("model.seed", "Seed of the tiny base model; every node must use the same.", default=1234)
    hidden_size: int = _key("model.tiny.hidden-size", "Hidden size of the tiny model.", default=64)
    layers: int = _key("model.tiny.layers", "Transformer layers of the tiny model.", default=2)
    heads: int = _key("model.tiny.heads", "Attention heads of the tiny model.", default=2)
    lora_rank: int = _key("model.lora.rank", "LoRA rank r.", default=8)
    lora_alpha: float = _key("model.lora.alpha", "LoRA scaling alpha.", default=16.0)
    lora_dropout: float = _key("model.lora.dropout", "Dropout on the LoRA path.", default=0.0)
    lora_target_modules: str = _key("model.lora.target-modules", "Comma-separated module names to adapt; empty = PEFT's default for the architecture.", default="query,value")

    def __post_init__(self) -> None:
        _check(self.max_length >= 8, "model.max-length", self.max_length, "an integer >= 8")
        _check(self.lora_rank >= 1, "model.lora.rank", self.lora_rank, "an integer >= 1")
        _check(self.lora_alpha > 0, "model.lora.alpha", self.lora_alpha, "a number > 0")
        _check(0 <= self.lora_dropout < 1, "model.lora.dropout", self.lora_dropout, "in [0, 1)")
        _check(self.hidden_size % self.heads == 0, "model.tiny.hidden-size", self.hidden_size, "a multiple of model.tiny.heads")
        _check(self.layers >= 1, "model.tiny.layers", self.layers, "an integer >= 1")

    @property
    def target_modules(self) -> list[str] | None:
        """Module names to adapt, or None to let PEFT choose for the architecture."""
        names = [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]
        return names or None


@dataclass(frozen=True)
class DataConfig:
    """Where branch data comes from and how it is split over branches."""

    source: str = _key("data.source", "'synthetic' for the PII-planting generator, or a CSV/JSONL path.", default="synthetic")
    text_column: str = _key("data.text-column", "Column holding the text (CSV/JSONL).", default="text")
    label_column: str = _key("data.label-column", "Column holding the label (CSV/JSONL).", default="label")
    labels: str = _key("data.labels", "Label set: comma-separated, a JSON file with a list, or empty to take the sorted labels found in the data.", default="")
    records_per_branch: int = _key("data.records-per-branch", "Mean synthetic records per branch.", default=200)
    zh_fraction: float = _key("data.zh-fraction", "Share of synthetic records written in Chinese.", default=0.5)
    partition: str = _key("data.partition", "'iid' or 'dirichlet' (non-IID label skew).", default="dirichlet")
    dirichlet_alpha: float = _key("data.dirichlet-alpha", "Concentration of the Dirichlet label skew; smaller = more skewed.", default=1.0)
    test_fraction: float = _key("data.test-fraction", "Share of the data held out for the server's evaluation.", default=0.2)
    max_rows: int = _key("data.max-rows", "Use at most this many rows of a CSV/JSONL (0 = all).", default=0)

    def __post_init__(self) -> None:
        _check(self.partition in ("iid", "dirichlet"), "data.partition", self.partition, "'iid' or 'dirichlet'")
        _check(self.dirichlet_alpha > 0, "data.dirichlet-alpha", self.dirichlet_alpha, "a number > 0")
        _check(0 < self.test_fraction < 1, "data.test-fraction", self.test_fraction, "in (0, 1)")
        _check(self.records_per_branch >= 1, "data.records-per-branch", self.records_per_branch, "an integer >= 1")
        _check(0 <= self.zh_fraction <= 1, "data.zh-fraction", self.zh_fraction, "in [0, 1]")
        _check(self.max_rows >= 0, "data.max-rows", self.max_rows, "an integer >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Local optimisation at each branch."""

    local_epochs: int = _key("train.local-epochs", "Local epochs per round.", default=1)
    batch_size: int = _key("train.batch-size", "Expected (logical) batch size; with DP it sets the Poisson sample rate.", default=16)
    learning_rate: float = _key("train.learning-rate", "Learning rate of the local optimizer (AdamW).", default=5e-3)

    def __post_init__(self) -> None:
        _check(self.local_epochs >= 1, "train.local-epochs", self.local_epochs, "an integer >= 1")
        _check(self.batch_size >= 1, "train.batch-size", self.batch_size, "an integer >= 1")
        _check(self.learning_rate > 0, "train.learning-rate", self.learning_rate, "a number > 0")


ACCOUNTANTS = ("rdp", "prv", "gdp")


@dataclass(frozen=True)
class DPConfig:
    """Record-level differential privacy at each branch (Opacus DP-SGD)."""

    enabled: bool = _key("dp.enabled", "DP-SGD on (true) or off for a non-private baseline (false).", default=True)
    target_epsilon: float = _key("dp.target-epsilon", "Epsilon each branch may reach over the whole planned run; sets the noise unless dp.noise-multiplier > 0.", default=8.0)
    noise_multiplier: float = _key("dp.noise-multiplier", "Fixed noise multiplier; 0 = derive it from dp.target-epsilon.", default=0.0)
    delta: float = _key("dp.delta", "Delta of (epsilon, delta)-DP.", default=1e-5)
    max_grad_norm: float = _key("dp.max-grad-norm", "Per-sample gradient clipping norm.", default=1.0)
    accountant: str = _key("dp.accountant", "Privacy accountant: 'rdp', 'prv' or 'gdp'.", default="rdp")
    budget_epsilon: float = _key("dp.budget-epsilon", "Hard budget: a branch refuses to train a round that would take it past this epsilon; 0 = dp.target-epsilon.", default=0.0)

    def __post_init__(self) -> None:
        _check(self.target_epsilon > 0, "dp.target-epsilon", self.target_epsilon, "a number > 0")
        _check(self.noise_multiplier >= 0, "dp.noise-multiplier", self.noise_multiplier, "a number >= 0")
        _check(0 < self.delta < 1, "dp.delta", self.delta, "in (0, 1)")
        _check(self.max_grad_norm > 0, "dp.max-grad-norm", self.max_grad_norm, "a number > 0")
        _check(self.accountant in ACCOUNTANTS, "dp.accountant", self.accountant, f"one of {', '.join(ACCOUNTANTS)}")
        _check(self.budget_epsilon >= 0, "dp.budget-epsilon", self.budget_epsilon, "a number >= 0")

    @property
    def budget(self) -> float:
        """The epsilon a branch may never exceed."""
        return self.budget_epsilon or self.target_epsilon


@dataclass(frozen=True)
class FederationConfig:
    """Rounds, sampling and outputs of the server."""

    num_rounds: int = _key("num-server-rounds", "Federated rounds.", default=3)
    fraction_train: float = _key("fraction-train", "Share of branches sampled to train each round.", default=1.0)
    fraction_evaluate: float = _key("fraction-evaluate", "Share of branches sampled for federated evaluation; keep it no larger than fraction-train.", default=0.0)
    min_train_branches: int = _key("min-train-branches", "Fewest branches that must be sampled to train a round.", default=2)
    output_dir: str = _key("output-dir", "Directory for the adapter, metrics.json, ledger.jsonl and branch state.", default="runs/latest")
    seed: int = _key("seed", "Seed of data generation and partitioning.", default=42)
    num_branches: int = _key("num-branches", "Branches the data is partitioned over (simulation).", default=3)

    def __post_init__(self) -> None:
        _check(self.num_rounds >= 1, "num-server-rounds", self.num_rounds, "an integer >= 1")
        _check(0 < self.fraction_train <= 1, "fraction-train", self.fraction_train, "in (0, 1]")
        _check(0 <= self.fraction_evaluate <= 1, "fraction-evaluate", self.fraction_evaluate, "in [0, 1]")
        _check(self.min_train_branches >= 1, "min-train-branches", self.min_train_branches, "an integer >= 1")
        _check(self.num_branches >= 1, "num-branches", self.num_branches, "an integer >= 1")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, grouped by concern."""

    federation: FederationConfig = field(default_factory=FederationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dp: DPConfig = field(default_factory=DPConfig)

    @property
    def output_dir(self) -> Path:
        """Absolute output directory (relative paths resolve against the working dir)."""
        return Path(self.federation.output_dir).expanduser().resolve()

    @classmethod
    def from_flower(cls, run_config: Mapping[str, Any]) -> "RunConfig":
        """Build the config from Flower's flat run config, rejecting unknown keys."""
        known = _known_keys()
        for key in run_config:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "see the configuration table in README.md"
                raise ConfigError(f"unknown config key '{key}': {hint}")
        sections = {}
        for section in dataclasses.fields(cls):
            kwargs = {}
            for f in dataclasses.fields(_SECTION_TYPES[section.name]):
                key = f.metadata["key"]
                if key in run_config:
                    kwargs[f.name] = _convert(key, run_config[key], f.type)
            sections[section.name] = _SECTION_TYPES[section.name](**kwargs)
        return cls(**sections)

    def to_flower(self) -> dict[str, Any]:
        """The flat mapping of every key, as Flower's run config would carry it."""
        flat: dict[str, Any] = {}
        for section in dataclasses.fields(self):
            obj = getattr(self, section.name)
            for f in dataclasses.fields(obj):
                flat[f.metadata["key"]] = getattr(obj, f.name)
        return flat


_SECTION_TYPES = {
    "federation": FederationConfig,
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "dp": DPConfig,
}


def _known_keys() -> dict[str, str]:
    return {
        f.metadata["key"]: f.metadata["help"]
        for section in _SECTION_TYPES.values()
        for f in dataclasses.fields(section)
    }


def config_table() -> list[tuple[str, Any, str]]:
    """(key, default, help) of every setting, for the README and ``--help``."""
    rows = []
    for section in _SECTION_TYPES.values():
        for f in dataclasses.fields(section):
            rows.append((f.metadata["key"], f.default, f.metadata["help"]))
    return rows


def _convert(key: str, value: Any, type_name: Any) -> Any:
    """Convert a run-config value to the field's type or raise ConfigError."""
    want = {"int": int, "float": float, "bool": bool, "str": str}.get(str(type_name), type_name)
    if want is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif want is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif want is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif want is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - every field is one of the four above
        return value
    raise ConfigError(f"config key '{key}' must be {want.__name__}, got {value!r}")


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}' is {value!r}; it must be {expected}")


@dataclass(frozen=True)
class BranchSettings:
    """Per-node settings of one branch (from Flower's node config)."""

    branch_id: str
    partition_id: int | None
    num_partitions: int | None
    data_path: str | None
    state_dir: Path


def branch_settings(node_config: Mapping[str, Any], cfg: RunConfig) -> BranchSettings:
    """Read a branch's identity and directories from ``context.node_config``.

    In simulation Flower sets ``partition-id``/``num-partitions``; in deployment
    the SuperNode is started with ``--node-config "branch-id='...' data-path='...'"``.
    """
    partition = node_config.get("partition-id")
    num_parts = node_config.get("num-partitions")
    branch_id = node_config.get("branch-id")
    if branch_id is None:
        if partition is None:
            raise ConfigError("node config has neither 'branch-id' nor 'partition-id': start the SuperNode with --node-config \"branch-id='NAME'\"")
        branch_id = f"branch-{int(partition)}"
    branch_id = str(branch_id)
    state_dir = node_config.get("state-dir") or str(cfg.output_dir / "branches" / branch_id)
    return BranchSettings(
        branch_id=branch_id,
        partition_id=None if partition is None else int(partition),
        num_partitions=None if num_parts is None else int(num_parts),
        data_path=node_config.get("data-path") or None,
        state_dir=Path(str(state_dir)).expanduser().resolve(),
    )


def read_labels(spec: str) -> list[str] | None:
    """Parse ``data.labels``: comma list, JSON file path, or empty (None)."""
    spec = spec.strip()
    if not spec:
        return None
    path = Path(spec).expanduser()
    if spec.endswith(".json"):
        if not path.is_file():
            raise ConfigError(f"data.labels file '{spec}' does not exist: give a JSON list file or a comma-separated list")
        labels = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(labels, list) or not labels:
            raise ConfigError(f"data.labels file '{spec}' must hold a non-empty JSON list of labels")
        return [str(x) for x in labels]
    return [s.strip() for s in spec.split(",") if s.strip()]
