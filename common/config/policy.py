"""The branch's own privacy policy: what a branch enforces whatever headquarters' run config says.

A branch is the data owner.  Its policy is a TOML file it controls
(``<state-dir>/branch-policy.toml`` by default; written with safe defaults on
first start and never overwritten).  HQ's run config can only *tighten* what
the policy allows, never loosen it: before a branch reads any data it checks
the round's run config against its policy, and a round that asks for less
(DP off, less noise, a larger clipping norm, sample rate, delta or epsilon, an
accountant it does not accept, no envelope, a task or column it does not
allow, fault injection) is refused with a reason naming the rule, e.g.
``policy: dp.enabled=false is not allowed by this branch (dp.required = true)``.

The policy file is read strictly: an unknown key, a wrong type or a value out
of range is a one-line :class:`~common.errors.ConfigError` naming the key and
the fix, and nothing of the branch's state is touched.

Shape of the file (every key optional; missing keys take the defaults below)::

    [dp]
    required = true                  # DP-SGD must be on
    lifetime-budget-epsilon = 8.0    # epsilon this branch may ever spend, composed across runs
    delta = 1e-5                     # the largest delta a run may use (the budget is at this delta)
    max-run-epsilon = 8.0            # the most epsilon one run may spend
    min-noise-multiplier = 0.3       # the least noise accepted
    max-grad-norm = 1.0              # the largest per-example clipping norm accepted
    max-sample-rate = 1.0            # the largest Poisson sample rate accepted
    accountants = ["rdp", "prv"]     # accountants whose epsilon this branch accepts

    [security]
    envelope-required = true         # updates must be sealed (encrypted + signed)

    [data]
    tasks = ["intent", "credit", "fraud", "chat"]
    columns = []                     # data columns a run may read; empty = any column

    [testing]
    fault-injection = false          # only test fixtures turn this on
    fail-before-train = 0.0          # probability of failing a round before training
    fail-after-train = 0.0           # ... after training (privacy spent, no reply)
    poison-branches = []             # branch ids that send a poisoned update every round
    poison-kind = "scale"            # 'scale' (x100) or 'sign-flip'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from common.atomic import write_bytes_atomic
from common.errors import ConfigError

def policy_error(message: str) -> ConfigError:
    """A policy error: it names the branch's own keys and values, never a record, so it is its own public account."""
    return ConfigError(message, public=message)


POLICY_FILE = "branch-policy.toml"
ALL_TASKS = ("intent", "credit", "fraud", "chat")
ALL_ACCOUNTANTS = ("rdp", "prv", "gdp")
POISON_KINDS = ("scale", "sign-flip")


@dataclass(frozen=True)
class BranchPolicy:
    """A branch's privacy policy (see the module docstring for each key)."""

    dp_required: bool = True
    lifetime_budget_epsilon: float = 8.0
    delta: float = 1e-5
    max_run_epsilon: float = 8.0
    min_noise_multiplier: float = 0.3
    max_grad_norm: float = 1.0
    max_sample_rate: float = 1.0
    accountants: tuple[str, ...] = ("rdp", "prv")
    envelope_required: bool = True
    tasks: tuple[str, ...] = ALL_TASKS
    columns: tuple[str, ...] = ()
    fault_injection: bool = False
    fail_before_train: float = 0.0
    fail_after_train: float = 0.0
    poison_branches: tuple[str, ...] = ()
    poison_kind: str = "scale"

    # -- reading and writing ---------------------------------------------------
    @classmethod
    def from_toml(cls, text: str, source: str = "branch policy") -> "BranchPolicy":
        """Parse a policy file's text strictly; errors name ``source`` and the key."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise policy_error(f"{source}: not valid TOML ({exc}): fix the file's syntax") from None
        values: dict[str, Any] = {}
        for section, table in data.items():
            if section not in _SECTIONS:
                raise policy_error(f"{source}: unknown section [{section}]: use {', '.join(f'[{s}]' for s in _SECTIONS)}")
            if not isinstance(table, dict):
                raise policy_error(f"{source}: '{section}' must be a [{section}] table")
            for key, value in table.items():
                name = f"{section}.{key}"
                if name not in _KEYS:
                    known = ", ".join(k.split(".", 1)[1] for k in _KEYS if k.startswith(section + "."))
                    raise policy_error(f"{source}: unknown key '{name}': [{section}] takes {known}")
                attr, kind = _KEYS[name]
                values[attr] = _typed(source, name, value, kind)
        policy = cls(**values)
        policy.check(source)
        return policy

    @classmethod
    def load(cls, path: Path) -> "BranchPolicy":
        """Read the policy at ``path`` (one-line error if missing or invalid)."""
        path = Path(path)
        if not path.is_file():
            raise policy_error(f"branch policy {path} does not exist: give an existing TOML file, or omit it for the defaults")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise policy_error(f"branch policy {path} cannot be read ({type(exc).__name__}): give a UTF-8 TOML file") from None
        return cls.from_toml(text, source=f"branch policy {path}")

    @classmethod
    def ensure(cls, state_dir: Path, path: Path | None = None) -> "BranchPolicy":
        """The branch's policy: ``path``, else ``<state_dir>/branch-policy.toml``, written with defaults if absent.

        An existing file is never overwritten.
        """
        target = Path(path) if path is not None else Path(state_dir) / POLICY_FILE
        if path is None and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(target, cls().to_toml().encode("utf-8"))
        return cls.load(target)

    def to_toml(self) -> str:
        """The policy as a TOML file, every key written (what ``fedbank branch policy`` prints)."""
        lines = ["# fedbank branch policy: what this branch enforces, whatever the run config says.",
                 "# HQ's run config may only tighten these rules. Edit with care; see the README."]
        for section in _SECTIONS:
            lines.append(f"\n[{section}]")
            for name, (attr, _kind) in _KEYS.items():
                if name.startswith(section + "."):
                    lines.append(f"{name.split('.', 1)[1]} = {_toml_value(getattr(self, attr))}")
        return "\n".join(lines) + "\n"

    def check(self, source: str = "branch policy") -> None:
        """Reject values out of range, naming the key."""
        rules = [
            (self.lifetime_budget_epsilon > 0, "dp.lifetime-budget-epsilon", "a number > 0"),
            (0 < self.delta < 1, "dp.delta", "in (0, 1)"),
            (self.max_run_epsilon > 0, "dp.max-run-epsilon", "a number > 0"),
            (self.min_noise_multiplier >= 0, "dp.min-noise-multiplier", "a number >= 0"),
            (self.max_grad_norm > 0, "dp.max-grad-norm", "a number > 0"),
            (0 < self.max_sample_rate <= 1, "dp.max-sample-rate", "in (0, 1]"),
            (bool(self.accountants) and set(self.accountants) <= set(ALL_ACCOUNTANTS), "dp.accountants",
             f"a non-empty list of {', '.join(ALL_ACCOUNTANTS)}"),
            (bool(self.tasks) and set(self.tasks) <= set(ALL_TASKS), "data.tasks", f"a non-empty list of {', '.join(ALL_TASKS)}"),
            (0 <= self.fail_before_train <= 1, "testing.fail-before-train", "in [0, 1]"),
            (0 <= self.fail_after_train <= 1, "testing.fail-after-train", "in [0, 1]"),
            (self.poison_kind in POISON_KINDS, "testing.poison-kind", "'scale' or 'sign-flip'"),
        ]
        for ok, key, expected in rules:
            if not ok:
                attr = _KEYS[key][0]
                raise policy_error(f"{source}: '{key}' = {_toml_value(getattr(self, attr))} is not allowed: use {expected}")
        injected = self.fail_before_train > 0 or self.fail_after_train > 0 or bool(self.poison_branches)
        if injected and not self.fault_injection:
            raise policy_error(f"{source}: [testing] faults are set but 'testing.fault-injection' is false: "
                              "set it to true (test fixtures only) or remove the faults")

    def check_spent(self, spent_epsilon: float, source: str = "branch policy") -> None:
        """A lifetime budget below what the branch has already spent is an error in the policy."""
        if spent_epsilon > self.lifetime_budget_epsilon * (1 + 1e-9):
            raise policy_error(
                f"{source}: 'dp.lifetime-budget-epsilon' = {self.lifetime_budget_epsilon:g} is below the epsilon this "
                f"branch has already spent ({spent_epsilon:.4g}): set it to at least {spent_epsilon:.4g}")

    # -- what a round may ask for ---------------------------------------------
    def violations(self, cfg: Any) -> list[str]:
        """Every rule of this policy that the run config ``cfg`` (a RunConfig) would loosen, as refusal reasons.

        Checked before any data is read: only the run config's own values.
        """
        out: list[str] = []

        def refuse(setting: str, rule: str) -> None:
            out.append(f"policy: {setting} is not allowed by this branch ({rule})")

        dp = cfg.dp
        if self.dp_required and not dp.enabled:
            refuse("dp.enabled=false", "dp.required = true")
        if dp.enabled:
            if dp.delta > self.delta:
                refuse(f"dp.delta={dp.delta:g}", f"dp.delta <= {self.delta:g}")
            if dp.target_epsilon > self.max_run_epsilon and not dp.noise_multiplier:
                refuse(f"dp.target-epsilon={dp.target_epsilon:g}", f"dp.max-run-epsilon = {self.max_run_epsilon:g}")
            if dp.noise_multiplier and dp.noise_multiplier < self.min_noise_multiplier:
                refuse(f"dp.noise-multiplier={dp.noise_multiplier:g}",
                       f"dp.min-noise-multiplier = {self.min_noise_multiplier:g}")
            if dp.max_grad_norm > self.max_grad_norm:
                refuse(f"dp.max-grad-norm={dp.max_grad_norm:g}", f"dp.max-grad-norm = {self.max_grad_norm:g}")
            if dp.accountant not in self.accountants:
                refuse(f"dp.accountant={dp.accountant}", f"dp.accountants = {list(self.accountants)}")
        if self.envelope_required and not cfg.security.envelope and not cfg.security.secagg:
            refuse("security.envelope=false", "security.envelope-required = true")
        if cfg.task.name not in self.tasks:
            refuse(f"task={cfg.task.name}", f"data.tasks = {list(self.tasks)}")
        if self.columns:
            for column in sorted(set(requested_columns(cfg)) - set(self.columns)):
                setting = "data.field-columns='' (every column)" if column == "*" else f"reading column '{column}'"
                refuse(setting, f"data.columns = {list(self.columns)}")
        return out

    def plan_violations(self, noise_multiplier: float, sample_rate: float, run_epsilon_after: float) -> list[str]:
        """Rules the round's DP plan (known once the branch counted its records) would break."""
        out = []
        if noise_multiplier < self.min_noise_multiplier:
            out.append(f"policy: noise multiplier {noise_multiplier:.4g} is not allowed by this branch "
                       f"(dp.min-noise-multiplier = {self.min_noise_multiplier:g})")
        if sample_rate > self.max_sample_rate:
            out.append(f"policy: sample rate {sample_rate:.4g} is not allowed by this branch "
                       f"(dp.max-sample-rate = {self.max_sample_rate:g})")
        if run_epsilon_after > self.max_run_epsilon * (1 + 1e-9):
            out.append(f"policy: this run would reach epsilon {run_epsilon_after:.4g} at this branch "
                       f"(dp.max-run-epsilon = {self.max_run_epsilon:g})")
        return out

    def budget(self, hq_budget: float | None) -> float:
        """The budget this branch enforces: its own lifetime budget, tightened (never loosened) by HQ's."""
        if hq_budget is None or not math.isfinite(hq_budget) or hq_budget <= 0:
            return self.lifetime_budget_epsilon
        return min(self.lifetime_budget_epsilon, float(hq_budget))


def requested_columns(cfg: Any) -> list[str]:
    """The data columns the run config asks a branch to read (for ``data.columns``)."""
    data, task = cfg.data, cfg.task
    if task.name == "chat":
        names = [task.prompt_column, task.response_column, data.label_column]
    elif task.name == "intent":
        names = [data.text_column, data.label_column]
    else:  # structured records: the named field columns, else every column of the file
        names = [data.label_column, *(task.field_list or ["*"])]
    return [n for n in names if n]


def _typed(source: str, name: str, value: Any, kind: str) -> Any:
    """``value`` checked against ``kind`` ('bool', 'float', 'str', 'list')."""
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "list" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    expected = {"bool": "true or false", "float": "a finite number", "str": "a string",
                "list": "a list of strings, e.g. [\"rdp\"]"}[kind]
    raise policy_error(f"{source}: '{name}' must be {expected}, got {type(value).__name__}")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(float(value))


# TOML key -> (attribute, kind); sections in file order.
_KEYS: dict[str, tuple[str, str]] = {
    "dp.required": ("dp_required", "bool"),
    "dp.lifetime-budget-epsilon": ("lifetime_budget_epsilon", "float"),
    "dp.delta": ("delta", "float"),
    "dp.max-run-epsilon": ("max_run_epsilon", "float"),
    "dp.min-noise-multiplier": ("min_noise_multiplier", "float"),
    "dp.max-grad-norm": ("max_grad_norm", "float"),
    "dp.max-sample-rate": ("max_sample_rate", "float"),
    "dp.accountants": ("accountants", "list"),
    "security.envelope-required": ("envelope_required", "bool"),
    "data.tasks": ("tasks", "list"),
    "data.columns": ("columns", "list"),
    "testing.fault-injection": ("fault_injection", "bool"),
    "testing.fail-before-train": ("fail_before_train", "float"),
    "testing.fail-after-train": ("fail_after_train", "float"),
    "testing.poison-branches": ("poison_branches", "list"),
    "testing.poison-kind": ("poison_kind", "str"),
}
_SECTIONS = ("dp", "security", "data", "testing")
