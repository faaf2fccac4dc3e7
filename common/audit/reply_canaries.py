"""Reply canaries for the ``chat`` task's memorization audit ("The Secret Sharer", Carlini et al. 2019).

A canary is a dialogue whose reply carries a random secret::

    prompt:  What is the security phrase on account <tag>?
    reply:   The security phrase on account <tag> is <secret>.

``2k`` canaries (``k = audit.canaries``) are drawn from one seeded stream, as
the classification canaries are (:mod:`common.audit.canaries`): the first ``k`` are
planted in ``audit.canary-branch``'s data, the other ``k`` are never seen.
Tags and secrets are random lower-case letters, redrawn until desensitization
leaves the dialogue unchanged, so the model sees exactly what the server scores.

Exposure of a canary: its reply's NLL is ranked among the NLLs of the same
reply with ``CANDIDATES`` other random secrets from the same space; with rank
``r`` (1 = the model prefers the true secret) the estimated exposure is
``log2(CANDIDATES + 1) - log2(r)`` bits.  A never-seen canary's rank is
uniform, so its exposure averages about ``1 / ln 2 = 1.44`` bits; memorized
secrets approach ``log2(CANDIDATES + 1)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.errors import ConfigError
from common.model.losses import response_nll
from common.privacy.desensitize import Desensitizer
from common.tasks.chat import tokenize_dialogues

CANARY_SALT = 0x5EC2E7
CANDIDATES = 127
_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))
SECRET_LEN, TAG_LEN = 10, 6
PROMPT = "What is the security phrase on account {tag}?"
REPLY = "The security phrase on account {tag} is {secret}."


def _word(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(_LETTERS, size=n))


def _canary(tag: str, secret: str) -> tuple[str, str]:
    return PROMPT.format(tag=tag), REPLY.format(tag=tag, secret=secret)


def reply_canaries(cfg: RunConfig, k: int | None = None) -> tuple[Corpus, Corpus, list[str], list[str]]:
    """``(planted, held_out, planted_secrets, held_out_secrets)``: ``k`` dialogues each, deterministic for the run seed."""
    k = cfg.audit.canaries if k is None else int(k)
    if k < 1:
        raise ConfigError(f"audit.canaries is {k}; the audit needs at least 1 canary")
    rng = np.random.default_rng([int(cfg.federation.seed) & 0xFFFFFFFF, CANARY_SALT, k])
    desensitizer = Desensitizer()
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    while len(rows) < 2 * k:
        tag, secret = _word(rng, TAG_LEN), _word(rng, SECRET_LEN)
        prompt, reply = _canary(tag, secret)
        if tag in seen or any(desensitizer.apply(t).text != t for t in (prompt, reply)):
            continue  # redraw: unique, and unchanged by desensitization
        seen.add(tag)
        rows.append((prompt, reply, secret))

    def corpus(part):
        return Corpus([p for p, _, _ in part], ["canary"] * len(part), responses=[r for _, r, _ in part])

    return corpus(rows[:k]), corpus(rows[k:]), [s for *_, s in rows[:k]], [s for *_, s in rows[k:]]


@torch.no_grad()
def reply_nll(model, tokenizer, prompts: list[str], replies: list[str], max_length: int, batch_size: int = 64) -> np.ndarray:
    """Each reply's mean token NLL given its prompt (the training loss of that dialogue)."""
    data = tokenize_dialogues(prompts, replies, tokenizer, max_length)
    model.eval()
    device = next(model.parameters()).device
    out = []
    for input_ids, attention_mask, labels in data.batches(batch_size, device):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        out.append(response_nll(logits, labels).cpu())
    return torch.cat(out).numpy().astype(float) if out else np.zeros(0)


def exposures(model, tokenizer, corpus: Corpus, secrets: list[str], max_length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per canary: exposure in bits and the true reply's NLL (the membership score)."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, CANARY_SALT, 1])
    nll = reply_nll(model, tokenizer, corpus.texts, corpus.responses, max_length)
    exposure = np.zeros(len(corpus))
    for i, (prompt, reply, secret) in enumerate(zip(corpus.texts, corpus.responses, secrets)):
        others = [_word(rng, SECRET_LEN) for _ in range(CANDIDATES)]
        alt = reply_nll(model, tokenizer, [prompt] * CANDIDATES, [reply.replace(secret, o) for o in others], max_length)
        rank = 1 + int(np.sum(alt < nll[i]))
        exposure[i] = math.log2(CANDIDATES + 1) - math.log2(rank)
    return exposure, nll
