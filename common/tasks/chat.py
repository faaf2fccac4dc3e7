"""Task ``chat``: customer message -> agent reply, as supervised fine-tuning of a causal LM.

One dialogue is one training example (and DP-SGD's privacy unit, whatever
its token count).  Its model text is the prompt, rendered with the
tokenizer's chat template when it has one (instruction-tuned models), else
with :data:`PROMPT_TEMPLATE`, followed by the reply and end-of-sequence.  The
labels are the input ids with every prompt and padding position set to
:data:`IGNORE` (-100), so the loss (:func:`common.model.losses.response_nll`) and
the held-out perplexity are on the reply tokens only.  When a dialogue is
longer than ``model.max-length`` the prompt is cut from the left (its end,
next to the reply, is kept) to no less than half the length, then the reply
from the right, so every example keeps the end of its prompt and the start of
its reply.

Generation (held-out ROUGE-L, ``fedbank chat``) feeds the rendered prompt,
left-padded, and greedily decodes up to ``eval.max-new-tokens`` tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from common.tasks.tokens import TokenizedSet
from common.model.losses import IGNORE

PROMPT_TEMPLATE = "Customer: {prompt}\nAgent: "


def render_prompt(prompt: str, tokenizer) -> str:
    """The text the model continues with a reply: the chat template if the tokenizer has one, else :data:`PROMPT_TEMPLATE`."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    return PROMPT_TEMPLATE.format(prompt=prompt)


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _eos(tokenizer) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-sequence token: a chat model must be able to end its reply")
    return int(eos)


def _pad(tokenizer) -> int:
    return int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else _eos(tokenizer))


def tokenize_dialogues(prompts: list[str], responses: list[str], tokenizer, max_length: int) -> TokenizedSet:
    """Prompt + reply + EOS, right-padded to ``max_length``; labels only on the reply and EOS."""
    eos, pad = _eos(tokenizer), _pad(tokenizer)
    n = len(prompts)
    input_ids = torch.full((n, max_length), pad, dtype=torch.long)
    attention = torch.zeros((n, max_length), dtype=torch.long)
    labels = torch.full((n, max_length), IGNORE, dtype=torch.long)
    for i, (prompt, response) in enumerate(zip(prompts, responses)):
        p = _ids(tokenizer, render_prompt(prompt, tokenizer))
        r = _ids(tokenizer, response) + [eos]
        keep_p = min(len(p), max(max_length - len(r), max_length // 2))
        p = p[len(p) - keep_p:] if keep_p else []
        r = r[: max_length - len(p)]
        ids = p + r
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        labels[i, len(p): len(ids)] = torch.tensor(r)
    return TokenizedSet(input_ids, attention, labels)


def tokenize_prompts(prompts: list[str], tokenizer, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rendered prompts, left-padded (decoder-only generation), each cut from the left to ``max_length``."""
    pad = _pad(tokenizer)
    rows = [_ids(tokenizer, render_prompt(p, tokenizer))[-max_length:] for p in prompts]
    width = max((len(r) for r in rows), default=1)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(rows):
        if ids:
            input_ids[i, width - len(ids):] = torch.tensor(ids)
            attention[i, width - len(ids):] = 1
    return input_ids, attention


@torch.no_grad()
def generate_replies(model, tokenizer, prompts: list[str], max_length: int, max_new_tokens: int, batch_size: int = 16) -> list[str]:
    """Greedy replies of ``model`` to ``prompts`` (decoded, special tokens dropped)."""
    model.eval()
    device = next(model.parameters()).device
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        input_ids, attention = tokenize_prompts(prompts[start:start + batch_size], tokenizer, max_length)
        generated = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                   max_new_tokens=max_new_tokens, do_sample=False,
                                   pad_token_id=_pad(tokenizer), eos_token_id=_eos(tokenizer))
        new = generated[:, input_ids.shape[1]:].cpu()
        out.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    return out


# --------------------------------------------------------------------------- ROUGE-L
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)


class MixedScriptTokenizer:
    """ROUGE tokens for Chinese and English: one token per CJK character, else lower-cased words.

    ``rouge_score``'s default tokenizer keeps only ``[a-z0-9]``, so Chinese
    replies would score as empty.
    """

    def tokenize(self, text: str) -> list[str]:
        return _TOKEN.findall(text.lower())


def rouge_l(predictions: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F-measure (Google's ``rouge_score``) of ``predictions`` against ``references``."""
    from rouge_score.rouge_scorer import RougeScorer

    if not predictions:
        return float("nan")
    scorer = RougeScorer(["rougeL"], tokenizer=MixedScriptTokenizer())
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
    return float(sum(scores) / len(scores))


@dataclass
class ChatHoldout:
    """The held-out dialogues, desensitized: tokenized for perplexity, plus raw prompts and reference replies for ROUGE-L."""

    tokens: TokenizedSet
    prompts: list[str]
    references: list[str]
