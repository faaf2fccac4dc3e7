"""Empirical privacy audit of the final global model with planted canaries.

With ``audit.canaries = k > 0`` the branch ``audit.canary-branch`` trains on
``k`` planted canaries (``common.audit.canaries``: random texts with random labels, so
only memorization predicts them).  After the run the server regenerates the
``k`` planted and ``k`` never-seen canaries from the run seed and measures,
with the final global model:

* how many planted canaries the model predicts with their planted label,
  against the same count on the never-seen ones (chance is ``k / #labels``);
* the membership-inference ROC-AUC of the per-canary loss (lower loss =
  "planted"), planted against never-seen;
* an empirical lower bound on epsilon, as in Jagielski, Ullman & Oprea (2020),
  "Auditing Differentially Private Machine Learning: How Private is Private
  SGD?": a loss threshold turns the attack into a test with true-positive
  rate TPR (planted called planted) and false-positive rate FPR (never-seen
  called planted).  (epsilon, delta)-DP implies ``TPR <= e^eps FPR + delta``
  and ``1 - FPR <= e^eps (1 - TPR) + delta``, so with Clopper-Pearson bounds
  ``TPR >= TPR_lo`` and ``FPR <= FPR_hi`` (each one-sided at ``(1-c)/2``,
  jointly at confidence ``c`` by the union bound; ``c = 0.95``)::

      eps_lb = max(0, log((TPR_lo - delta) / FPR_hi), log((1 - FPR_hi - delta) / (1 - TPR_lo)))

  **Threshold selection** on the data the bound is computed from would
  inflate it, so the canaries are split (seeded) into two halves of each
  group: the threshold is chosen on the *selection* half (the one maximizing
  the same bound there) and the bound is computed on the *evaluation* half
  only, at that single threshold (``method = "split"``).  The bound is
  therefore limited by the evaluation half's size: with ``n`` canaries per
  group in it, even perfect separation gives at most
  ``log(a / (1 - a))`` with ``a = ((1 - c) / 2) ** (1 / n)``.

Caveats.  Jagielski et al. run one training per trial; here (as in one-run
audits, Steinke, Nasr & Jagielski 2023) the canaries of a single run are the
trials and the Clopper-Pearson intervals treat them as independent, which is
the usual heuristic.  The bound is a *lower* bound: it says the guarantee
cannot be better than this, never that it is as good as the formal one.

Task ``chat``: the canaries are dialogues whose reply holds a random secret
(:mod:`common.audit.reply_canaries`; both kinds behind :mod:`common.audit.canary_set`).  The membership score is the reply's NLL (lower
= "planted", as above), "predicted" means the model ranks the true secret
first among ``CANDIDATES + 1``, and each canary's *exposure* (Carlini et al.
2019, "The Secret Sharer") is reported: planted against never-seen.

What bounds the canaries formally: they live only in the canary branch's
data, every other branch's update is independent of them, and FedAvg (plus
any server-side step) is post-processing, so the canary branch's record-level
epsilon (its accountant's, over all rounds) is the formal epsilon to compare
with.  Without DP there is no formal epsilon (``null``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np
from flwr.common.logger import log

from common.audit.canary_set import score_canaries
from common.config.run import RunConfig
from common.data.labels import LabelSet
from common.tasks.spec import task_of
from server.records.metrics import write_json_atomic

AUDIT_FILE = "audit.json"
CONFIDENCE = 0.95
METHOD = (
    "loss-threshold membership test (Jagielski et al. 2020); threshold chosen on a seeded half of "
    "the canaries, bound on the other half; Clopper-Pearson, TPR_lo and FPR_hi one-sided at (1-c)/2 each"
)


def clopper_pearson(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval: each end one-sided at ``(1 - confidence) / 2``."""
    from scipy.stats import beta

    alpha = 1.0 - confidence
    lo = 0.0 if successes <= 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    hi = 1.0 if successes >= trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return lo, hi


def epsilon_from_rates(tpr_lo: float, fpr_hi: float, delta: float) -> float:
    """The (epsilon, delta)-DP lower bound implied by ``TPR >= tpr_lo`` and ``FPR <= fpr_hi``, at least 0."""
    best = 0.0
    if tpr_lo - delta > 0 and fpr_hi > 0:
        best = max(best, math.log((tpr_lo - delta) / fpr_hi))
    if 1 - fpr_hi - delta > 0 and tpr_lo < 1:
        best = max(best, math.log((1 - fpr_hi - delta) / (1 - tpr_lo)))
    return best


def _bound_at(planted: np.ndarray, held_out: np.ndarray, threshold: float, delta: float, confidence: float) -> dict:
    tp, fp = int(np.sum(planted <= threshold)), int(np.sum(held_out <= threshold))
    tpr_lo, _ = clopper_pearson(tp, len(planted), confidence)
    _, fpr_hi = clopper_pearson(fp, len(held_out), confidence)
    return {
        "tpr": tp / len(planted), "fpr": fp / len(held_out), "tpr_lo": tpr_lo, "fpr_hi": fpr_hi,
        "epsilon": epsilon_from_rates(tpr_lo, fpr_hi, delta),
    }


def empirical_epsilon(planted_losses, held_out_losses, delta: float, confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """Empirical epsilon lower bound of a loss-threshold membership test (split method).

    A canary is called "planted" when its loss is at most the threshold.  Each
    group is shuffled (``seed``) and halved; the threshold maximizing the bound
    (ties: the largest TPR - FPR) on the selection halves is applied once to the
    evaluation halves, whose Clopper-Pearson bound is returned as ``epsilon``.
    """
    planted = np.asarray(planted_losses, dtype=float)
    held_out = np.asarray(held_out_losses, dtype=float)
    if len(planted) < 2 or len(held_out) < 2:
        raise ValueError("the bound needs at least 2 planted and 2 held-out canaries (one per half)")
    rng = np.random.default_rng(seed)
    p, h = rng.permutation(planted), rng.permutation(held_out)
    p_sel, p_eval = p[: len(p) // 2], p[len(p) // 2:]
    h_sel, h_eval = h[: len(h) // 2], h[len(h) // 2:]
    values = np.unique(np.concatenate([p_sel, h_sel]))
    candidates = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
    best_key, threshold = None, float(candidates[0])
    for t in candidates:
        sel = _bound_at(p_sel, h_sel, float(t), delta, confidence)
        key = (sel["epsilon"], abs(sel["tpr"] - sel["fpr"]))
        if best_key is None or key > best_key:
            best_key, threshold = key, float(t)
    result = _bound_at(p_eval, h_eval, threshold, delta, confidence)
    return {
        **result,
        "threshold": threshold,
        "selection_size": [len(p_sel), len(h_sel)],
        "evaluation_size": [len(p_eval), len(h_eval)],
        "selection_epsilon": best_key[0],
    }


def roc_auc(planted_losses, held_out_losses) -> float:
    """Membership-inference ROC-AUC of the score ``-loss`` (planted = positive)."""
    from sklearn.metrics import roc_auc_score

    planted = np.asarray(planted_losses, dtype=float)
    held_out = np.asarray(held_out_losses, dtype=float)
    y = np.concatenate([np.ones(len(planted)), np.zeros(len(held_out))])
    return float(roc_auc_score(y, -np.concatenate([planted, held_out])))


def formal_epsilon_of(metrics: Mapping, branch: str, dp_enabled: bool) -> float | None:
    """The canary branch's record-level epsilon over the run, from ``metrics.json``'s data.

    Epsilon is cumulative, so this is the largest value the branch reported in
    any round; 0.0 if it never trained (the canaries never reached the model);
    None without DP (no guarantee).
    """
    if not dp_enabled:
        return None
    seen = [float(r["branches"][branch]["epsilon"]) for r in metrics.get("rounds", [])
            if branch in r.get("branches", {}) and r["branches"][branch].get("epsilon") is not None]
    return max(seen, default=0.0)


def run_audit(cfg: RunConfig, model, tokenizer, labels: list[str], out_dir, formal_epsilon: float | None, delta: float) -> dict:
    """Audit ``model`` (the final global model) with the run's canaries; write ``audit.json``.

    Args:
        cfg: run config (``audit.canaries`` > 0, the seed that generated the canaries).
        model: the final global PEFT model, adapter loaded.
        tokenizer: its tokenizer.
        labels: the run's label set (as the branches encode it); empty for ``chat``.
        out_dir: where ``audit.json`` is written.
        formal_epsilon: the canary branch's record-level epsilon over the run, or None without DP.
        delta: the delta of that guarantee (``dp.delta``).

    Returns:
        The report written to ``audit.json``.
    """
    task = task_of(cfg)
    scores = score_canaries(cfg, task, LabelSet(tuple(labels), fixed=True, binary=task.binary), model, tokenizer)
    p_loss, h_loss = scores.planted_loss, scores.held_out_loss
    bound = empirical_epsilon(p_loss, h_loss, delta, CONFIDENCE, seed=cfg.federation.seed)
    report = {
        "canaries": len(p_loss),
        "branch": cfg.audit.canary_branch,
        "auc": roc_auc(p_loss, h_loss),
        "planted_predicted": int(scores.planted_hit.sum()),
        "held_out_predicted": int(scores.held_out_hit.sum()),
        "empirical_epsilon_lower_bound": bound["epsilon"],
        "formal_epsilon": None if formal_epsilon is None else float(formal_epsilon),
        "delta": float(delta),
        "confidence": CONFIDENCE,
        "method": METHOD,
        "chance_predicted": scores.chance,
        "planted_mean_loss": float(np.mean(p_loss)),
        "held_out_mean_loss": float(np.mean(h_loss)),
        "test": {k: v for k, v in bound.items() if k != "epsilon"},
        **scores.extra,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / AUDIT_FILE, report)
    formal = "none (no DP)" if formal_epsilon is None else f"{formal_epsilon:.3f}"
    log(20, "fedbank audit: %d canaries in %s: %d planted vs %d never-seen predicted, MI AUC %.3f, "  # next to the run's other log lines
        "empirical epsilon >= %.3f (95%%) | formal epsilon %s", report["canaries"], report["branch"],
        report["planted_predicted"], report["held_out_predicted"], report["auc"],
        report["empirical_epsilon_lower_bound"], formal)
    return report
