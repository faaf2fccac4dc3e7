"""The audit's canaries behind one interface, whatever the task.

The canary branch adds :func:`planted_canaries` to its training data; after
the run the server measures both groups with :func:`score_canaries`.  Which
kind of canary a task gets is the task's (``labelled``):

* a classifier's canaries are random texts with random labels
  (:mod:`common.audit.canaries`): the membership score is the canary's loss,
  "predicted" means its label is the model's;
* ``chat``'s are dialogues whose reply holds a random secret
  (:mod:`common.audit.reply_canaries`): the score is the reply's NLL,
  "predicted" means the model ranks the true secret first, and each canary's
  exposure (bits) is reported too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from common.audit.canaries import canaries, canary_scores
from common.audit.reply_canaries import CANDIDATES, exposures, reply_canaries
from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.data.labels import LabelSet
from common.tasks.spec import Task


@dataclass
class CanaryScores:
    """Both groups' membership scores (loss: lower = "planted") and predictions, and the chance count.

    ``extra``: task-specific figures for ``audit.json`` (chat: exposure).
    """

    planted_loss: np.ndarray
    planted_hit: np.ndarray
    held_out_loss: np.ndarray
    held_out_hit: np.ndarray
    chance: float
    extra: dict = field(default_factory=dict)


def planted_canaries(cfg: RunConfig, task: Task, labels: LabelSet) -> Corpus:
    """The canaries the canary branch trains on (``audit.canaries`` of them)."""
    if task.labelled:
        return canaries(cfg, labels.names)[0]
    return reply_canaries(cfg)[0]


def score_canaries(cfg: RunConfig, task: Task, labels: LabelSet, model, tokenizer) -> CanaryScores:
    """The final ``model``'s scores of the planted and the never-seen canaries."""
    max_length = cfg.model.max_length
    if task.labelled:
        planted, held_out = canaries(cfg, labels.names)
        p_loss, p_hit = canary_scores(model, tokenizer, planted, labels, max_length)
        h_loss, h_hit = canary_scores(model, tokenizer, held_out, labels, max_length)
        return CanaryScores(p_loss, p_hit, h_loss, h_hit, len(held_out) / len(labels))
    planted, held_out, p_secrets, h_secrets = reply_canaries(cfg)
    p_exp, p_loss = exposures(model, tokenizer, planted, p_secrets, max_length, cfg.federation.seed)
    h_exp, h_loss = exposures(model, tokenizer, held_out, h_secrets, max_length, cfg.federation.seed + 1)
    top = math.log2(CANDIDATES + 1)
    extra = {"exposure": {"candidates": CANDIDATES, "max_bits": top,
                          "planted_mean": float(np.mean(p_exp)), "planted_max": float(np.max(p_exp)),
                          "held_out_mean": float(np.mean(h_exp)), "held_out_max": float(np.max(h_exp))}}
    return CanaryScores(p_loss, p_exp >= top - 1e-9, h_loss, h_exp >= top - 1e-9, len(held_out) / (CANDIDATES + 1), extra)
