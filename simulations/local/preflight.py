"""Checks a simulated run before any Flower process starts.

``fedbank simulate`` calls :func:`preflight` after the run config has been
validated (:class:`~common.config.run.RunConfig` rejects unknown keys and
out-of-range values) and before it creates the output directory or starts a
SuperLink.  Everything that can be known up front is checked here, cheapest
first, so that bad input stops the command with one line naming the problem
and the fix, and a run that is refused leaves no trace on disk:

1. the output directory is new, or empty of a previous run's outputs, and can
   be created;
2. the data file (``data.source``) is readable and well formed, with the
   named text and label columns; ``data.labels`` is readable; every simulated
   branch gets rows; every label is in the label set, and every held-out label
   occurs in the training data;
3. the key directory (``security.keys-dir``, when set) holds readable keys
   of the right kinds for the server and every simulated branch;
4. the base model (``model.name``) exists and can be built with the LoRA
   adapter (a causal LM for ``task = chat``);
5. ``train.device`` / ``train.mixed-precision`` can run here (no ``cuda``
   without a GPU, no fp16 with DP).

Errors raised later, inside the ServerApp or a ClientApp, end up in Flower's
log; :func:`fedbank_error_in_log` finds the one-line fedbank message there.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from common.config.run import RunConfig
from common.errors import ConfigError, DataError, FedbankError, fedbank_message, one_line

# What a run writes under its output directory (see README, "Outputs").
RUN_OUTPUTS = ("ledger.jsonl", "metrics.json", "adapter", "branches", "flower.log", "superlink.log", ".flwr")


def preflight(cfg: RunConfig) -> None:
    """Check everything about ``cfg`` that can be checked before the run starts.

    Reads files but never writes any.

    Raises:
        FedbankError: a subclass (ConfigError, DataError, KeyFileError,
            ModelError) whose message is one line naming the problem and the fix.
    """
    check_output_dir(cfg.output_dir)
    check_device(cfg)
    check_data(cfg)
    check_keys(cfg)
    check_model(cfg)
    check_aggregation(cfg)


def check_aggregation(cfg: RunConfig) -> None:
    """The aggregator and central-DP wrapper can be built (Flower checks their parameters)."""
    import logging

    from server.aggregation.aggregators import build_aggregator

    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    flwr_log.setLevel(logging.ERROR)  # Flower's construction-time notices are not for this check
    try:
        build_aggregator(cfg)
    finally:
        flwr_log.setLevel(level)


def check_output_dir(out: Path) -> None:
    """``out`` holds no earlier run's outputs and can be created.

    A directory that already holds any of :data:`RUN_OUTPUTS` is refused, so
    a new run can never truncate or mix with an earlier one.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory: choose a new --out")
    if out.is_dir():
        found = [name for name in RUN_OUTPUTS if (out / name).exists() or (out / name).is_symlink()]
        if found:
            raise ConfigError(f"output directory {out} already holds a run ({', '.join(found)}): choose a new --out; nothing in it was changed")
        if not os.access(out, os.W_OK | os.X_OK):
            raise ConfigError(f"output directory {out} is not writable: choose a writable --out")
        return
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"--out {out} cannot be created: {parent} is a file, not a directory; choose another --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out} cannot be created: {parent} is not writable; choose a writable --out")


def check_data(cfg: RunConfig) -> None:
    """The corpus loads, every branch gets rows, and every label is trainable."""
    from common.data.labels import check_label_coverage
    from common.data.sources import SYNTHETIC, simulation_split

    _check_label_spec(cfg.data.labels)
    train, test, parts, names = simulation_split(cfg)
    for i, part in enumerate(parts):
        if len(part) == 0:  # partition() guarantees rows; keep the promise explicit
            raise DataError(f"branch 'branch-{i}' would get no rows of {cfg.data.source}: use fewer --branches or more data")
    check_label_coverage(train, test, names, require_trained=cfg.data.source != SYNTHETIC)


def _check_label_spec(spec: str) -> None:
    """``data.labels`` naming a JSON file: that file is readable JSON."""
    spec = spec.strip()
    if not spec.endswith(".json"):
        return
    path = Path(spec).expanduser()
    if not path.is_file():
        return  # read_labels names the missing file
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"data.labels file '{spec}' is not readable JSON ({one_line(str(err))}): give a JSON list of labels or a comma-separated list") from err


def check_device(cfg: RunConfig) -> None:
    """``train.device`` and ``train.mixed-precision`` can run on this machine (simulated branches share it)."""
    from common.model.device import autocast_dtype, resolve_device

    autocast_dtype(cfg, resolve_device(cfg))


def check_keys(cfg: RunConfig) -> None:
    """With ``security.keys-dir`` set: its keys serve the server and every simulated branch."""
    if not cfg.security.keys_dir:
        return  # the run creates output-dir/keys itself
    from common.keys.layout import check_key_dir

    check_key_dir(cfg.keys_dir, [f"branch-{i}" for i in range(cfg.federation.num_branches)])


def check_model(cfg: RunConfig) -> None:
    """The base model exists, takes the configured LoRA adapter, and can start its head as configured."""
    from common.model.build import check_base_model, check_head_init
    from common.tasks.spec import task_of

    generative = task_of(cfg).generative
    check_head_init(cfg.model, causal=generative)
    check_base_model(cfg.model, causal=generative)


_CLIENT_LINE = re.compile(r"Exception ClientAppException occurred\. Message: (.+)$")


def fedbank_error_in_log(log_path: Path, start: int = 0) -> str | None:
    """The first fedbank error message a ServerApp or ClientApp logged, if any.

    Flower logs an app's exception as a traceback whose last line is
    ``common.errors.DataError: <message>``; a ClientApp's also appears as
    ``Exception ClientAppException occurred. Message: <message>``.  Returns
    ``<message>`` (one line) so that a failed run can be reported by its cause.
    ``start``: byte offset where this run's part of the log begins.
    """
    try:
        with Path(log_path).open("rb") as fh:
            fh.seek(start)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    found = fedbank_message(text)
    if found:
        return found
    for line in text.splitlines():
        match = _CLIENT_LINE.search(line)
        if match:
            return one_line(match.group(1))
    return None


def explain_failure(err: FedbankError, log_path: Path, start: int = 0) -> FedbankError:
    """``err`` (a failed run) with the fedbank error found in ``log_path`` put first."""
    cause = fedbank_error_in_log(log_path, start)
    if not cause:
        return err
    return type(err)(f"{cause} (the run failed; full log: {log_path})")
