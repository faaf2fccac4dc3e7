"""The one typed configuration of a fedbank run, and a branch's own settings.

Flower hands every node the run config as a flat mapping of dotted, kebab-case
keys (``model.lora.rank``, ``dp.target-epsilon``) taken from
``[tool.flwr.app.config]`` in ``pyproject.toml`` plus any ``--run-config``
overrides.  This module is the only place that reads that mapping: it builds
the sections of :mod:`common.config.sections` from it, rejects unknown keys
(suggesting the nearest known one), converts types, and checks the rules that
span sections, naming the keys and the fix.

Per-node values (``branch-id``, ``data-path``, ``state-dir``) come from
``context.node_config`` and are read by :func:`branch_settings`.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from common.config.sections import (
    AggregationConfig,
    AuditConfig,
    CentralDPConfig,
    DataConfig,
    DPConfig,
    FaultConfig,
    FederationConfig,
    ModelConfig,
    SecurityConfig,
    TaskConfig,
    TrainConfig,
)
from common.errors import ConfigError


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, grouped by concern."""

    federation: FederationConfig = field(default_factory=FederationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dp: DPConfig = field(default_factory=DPConfig)
    central_dp: CentralDPConfig = field(default_factory=CentralDPConfig)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    task: TaskConfig = field(default_factory=TaskConfig)

    def __post_init__(self) -> None:
        if self.train.linear_probe_rounds and self.task.name == "chat":
            raise ConfigError("train.linear-probe-rounds trains a classifier's head first, and task 'chat' has none: "
                              "set train.linear-probe-rounds = 0")
        if self.central_dp.mode != "off" and self.aggregation.method != "fedavg":
            raise ConfigError(f"central-dp.mode '{self.central_dp.mode}' needs aggregation.method 'fedavg' "
                              f"(its sensitivity bound assumes a clipped uniform mean), not '{self.aggregation.method}'")
        if self.security.secagg and self.aggregation.method != "fedavg":
            raise ConfigError(f"security.secagg reveals only the sum of updates: aggregation.method must be 'fedavg', not '{self.aggregation.method}'")
        agg = self.aggregation
        if self.security.secagg and (agg.server_momentum or agg.server_learning_rate != 1.0 or agg.server_optimizer != "sgd"):
            raise ConfigError("security.secagg runs plain secure FedAvg: leave aggregation.server-optimizer at 'sgd', "
                              "aggregation.server-momentum at 0 and aggregation.server-learning-rate at 1, or turn security.secagg off")
        if self.security.secagg and self.central_dp.mode != "off":
            raise ConfigError("security.secagg hides each branch's update, so the server cannot clip it: "
                              f"central-dp.mode must be 'off', not '{self.central_dp.mode}'")
        if self.dp.enabled and self.dp.ghost_clipping and self.model.peft not in ("lora", "ffa-lora"):
            raise ConfigError(f"dp.ghost-clipping supports model.peft 'lora' and 'ffa-lora', not '{self.model.peft}': "
                              "set dp.ghost-clipping = false (exact per-example clipping, same guarantee)")
        if self.security.secagg and self.federation.resume:
            raise ConfigError("security.secagg cannot resume a run: re-running a round would reveal a second sum "
                              "of the same updates over a possibly different set of branches")

    @property
    def output_dir(self) -> Path:
        """Absolute output directory (relative paths resolve against the working dir)."""
        return Path(self.federation.output_dir).expanduser().resolve()

    @property
    def keys_dir(self) -> Path:
        """Key directory (``security.keys-dir``, default ``output-dir/keys``)."""
        return Path(self.security.keys_dir).expanduser().resolve() if self.security.keys_dir else self.output_dir / "keys"

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
    "central_dp": CentralDPConfig,
    "aggregation": AggregationConfig,
    "security": SecurityConfig,
    "faults": FaultConfig,
    "audit": AuditConfig,
    "task": TaskConfig,
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
        if isinstance(value, int) and not isinstance(value, bool):  # `key=5` on a command line parses as an integer
            return str(value)
    else:  # pragma: no cover - every field is one of the four above
        return value
    raise ConfigError(f"config key '{key}' must be {want.__name__}, got {value!r}")


@dataclass(frozen=True)
class BranchSettings:
    """Per-node settings of one branch (from Flower's node config)."""

    branch_id: str
    partition_id: int | None
    num_partitions: int | None
    data_path: str | None
    state_dir: Path
    budget_epsilon: float
    keys_dir: Path


def branch_settings(node_config: Mapping[str, Any], cfg: RunConfig) -> BranchSettings:
    """Read a branch's identity and directories from ``context.node_config``.

    In simulation Flower sets ``partition-id``/``num-partitions`` and a branch
    keeps its state under HQ's ``output-dir/branches/<id>`` (one person owns
    every simulated branch); in deployment the SuperNode is started with
    ``--node-config "branch-id='...' data-path='...' state-dir='...'"`` and
    optionally ``keys-dir`` and ``budget-epsilon``.

    Raises:
        ConfigError: no branch identity; a deployed branch (``branch-id``)
            without its own ``state-dir`` -- HQ's run config must never decide
            where a branch keeps its budget, policy and state.
    """
    partition = node_config.get("partition-id")
    num_parts = node_config.get("num-partitions")
    branch_id = node_config.get("branch-id")
    if branch_id is None:
        if partition is None:
            raise ConfigError("node config has neither 'branch-id' nor 'partition-id': start the SuperNode with --node-config \"branch-id='NAME'\"")
        branch_id = f"branch-{int(partition)}"
    else:
        branch_id = str(branch_id)
        if not node_config.get("state-dir"):
            raise ConfigError(f"node config of '{branch_id}' has no 'state-dir': a deployed branch keeps its budget, "
                              "policy and state in its own directory, not under HQ's output-dir; start the SuperNode "
                              "with --node-config \"state-dir='DIR'\" (fedbank deploy branch --state DIR)")
    state_dir = node_config.get("state-dir") or str(cfg.output_dir / "branches" / branch_id)
    node_budget = node_config.get("budget-epsilon")
    if node_budget is not None and not isinstance(node_budget, (int, float)):
        raise ConfigError(f"node config 'budget-epsilon' must be a number, got {node_budget!r}")
    return BranchSettings(
        branch_id=branch_id,
        partition_id=None if partition is None else int(partition),
        num_partitions=None if num_parts is None else int(num_parts),
        data_path=node_config.get("data-path") or None,
        state_dir=Path(str(state_dir)).expanduser().resolve(),
        budget_epsilon=cfg.dp.budget_for(branch_id, None if node_budget is None else float(node_budget)),
        keys_dir=Path(str(node_config["keys-dir"])).expanduser().resolve() if node_config.get("keys-dir") else cfg.keys_dir,
    )
