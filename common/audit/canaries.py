"""Canary records for the empirical privacy audit.

A canary is a string of random lower-case tokens with a label drawn uniformly
from the run's label set: nothing in its text predicts its label, so a model
can only predict a canary's label by having *memorized* that record.  The
audit (``server/evaluation/canary_audit.py``) compares canaries that were planted in one
branch's training data with canaries of the same kind that no node ever saw.

Canaries are a pure function of the run seed, ``audit.canaries`` and the label
set: the canary branch regenerates the planted ones and the server regenerates
all of them, so no canary ever travels.  ``2k`` canaries are drawn from one
seeded stream; the first ``k`` are planted, the other ``k`` are held out.

:func:`canary_scores` is the server's measurement of one group with the
final model: each canary's loss and whether its label is predicted.

Canary texts contain no PII pattern: each draw is checked with the branch's
own :class:`~common.privacy.desensitize.Desensitizer` and redrawn (deterministically)
if desensitization would change it, so a canary is identical before and after
desensitization and reaches the model exactly as the server scores it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.data.labels import LabelSet
from common.errors import ConfigError
from common.privacy.desensitize import Desensitizer
from common.tasks.tokens import tokenize

#: Mixed into the run seed so canaries are independent of data and partitions.
CANARY_SALT = 0xCA7A5
_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz"))
_DIGITS = np.array(list("0123456789"))
MIN_TOKENS, MAX_TOKENS = 8, 20  # about 40-140 characters: the length of a real message
MIN_TOKEN_LEN, MAX_TOKEN_LEN = 2, 9


def _token(rng: np.random.Generator) -> str:
    """One random token: letters, occasionally with one or two digits (never a long digit run)."""
    n = int(rng.integers(MIN_TOKEN_LEN, MAX_TOKEN_LEN + 1))
    chars = list(rng.choice(_ALPHABET, size=n))
    if rng.random() < 0.15:
        for _ in range(int(rng.integers(1, 3))):
            chars[int(rng.integers(0, n))] = str(rng.choice(_DIGITS))
    return "".join(chars)


def canary_text(rng: np.random.Generator) -> str:
    """One random canary text of realistic message length."""
    return " ".join(_token(rng) for _ in range(int(rng.integers(MIN_TOKENS, MAX_TOKENS + 1))))


def canaries(cfg: RunConfig, labels: Sequence[str], k: int | None = None) -> tuple[Corpus, Corpus]:
    """The run's canaries: ``(planted, held_out)``, ``k`` each (default ``audit.canaries``).

    Deterministic for ``(seed, k, labels)``; every text is unchanged by
    desensitization (checked), every label is uniform over ``labels``.
    """
    k = cfg.audit.canaries if k is None else int(k)
    if k < 1:
        raise ConfigError(f"audit.canaries is {k}; the audit needs at least 1 canary")
    if not labels:
        raise ConfigError("the canaries need a non-empty label set: set data.labels")
    rng = np.random.default_rng([int(cfg.federation.seed) & 0xFFFFFFFF, CANARY_SALT, k])
    desensitizer = Desensitizer()
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < 2 * k:
        text = canary_text(rng)
        if text in seen or desensitizer.apply(text).text != text:
            continue  # redraw: a canary must be unique and survive desensitization unchanged
        seen.add(text)
        texts.append(text)
    names = list(labels)
    picked = [names[int(i)] for i in rng.integers(0, len(names), size=2 * k)]
    return Corpus(texts[:k], picked[:k]), Corpus(texts[k:], picked[k:])


@torch.no_grad()
def canary_scores(model, tokenizer, corpus: Corpus, labels: LabelSet, max_length: int, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-canary cross-entropy loss and whether the model predicts the canary's label."""
    data = tokenize(corpus.texts, labels.encode(corpus.labels, where="canaries"), tokenizer, max_length)
    model.eval()
    device = next(model.parameters()).device
    losses, hits = [], []
    for input_ids, attention_mask, y in data.batches(batch_size, device):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        losses.append(torch.nn.functional.cross_entropy(logits, y, reduction="none").cpu())
        hits.append((logits.argmax(-1) == y).cpu())
    return torch.cat(losses).numpy().astype(float), torch.cat(hits).numpy().astype(bool)
