"""The task's settings checked once, when a node starts preparing its data.

:func:`check_task` is called by the entry points that read a run's data --
a branch preparing its training set, the server its held-out set, the
tools that split the whole federation -- and returns the checked
:class:`~common.tasks.spec.Task`, which they pass on; the data layer below
them never re-derives the task or re-runs the checks.
"""

from __future__ import annotations

from common.config.run import RunConfig
from common.errors import ConfigError
from common.privacy.records import pipeline_for
from common.tasks.spec import Task, task_of


def check_task(cfg: RunConfig) -> Task:
    """The run's task, after checking the column-mapping and imbalance settings that only make sense together.

    Raises:
        ConfigError: one line naming the key and the fix.
    """
    t, task = cfg.task, task_of(cfg)
    label = cfg.data.label_column
    if not task.tabular:
        for key, value in (("data.field-columns", t.field_columns), ("data.id-columns", t.id_columns),
                           ("data.value-map", t.value_map), ("data.positive-label", t.positive_label)):
            if value.strip():
                raise ConfigError(f"{key} is set but task is '{task.name}', whose input is the one text column "
                                  f"data.text-column: clear {key} or set task=credit|fraud")
    else:
        for key, columns in (("data.field-columns", t.field_list or []), ("data.id-columns", t.id_list)):
            if label in columns:
                raise ConfigError(f"{key} names the label column '{label}': the label must never be a model input; remove it from {key}")
        pipeline_for(cfg)  # a malformed quasi rule or value map fails here
    if t.imbalance == "oversample" and cfg.dp.enabled:
        raise ConfigError("train.imbalance 'oversample' duplicates records, so one record would count several times in "
                          "DP-SGD's sensitivity: use train.imbalance=weighted-loss with dp.enabled=true (or dp.enabled=false)")
    if t.positive_weight > 0 and not task.binary:
        raise ConfigError(f"train.positive-weight applies to the binary tasks credit and fraud, not '{task.name}': "
                          "set it to 0 (balanced weights) or change task")
    return task
