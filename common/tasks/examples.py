"""How each task turns rendered (desensitized) examples into model examples.

A classifier's example is its text, padded to ``model.max-length``, with its
label index (:func:`common.tasks.tokens.tokenize`); ``chat``'s is prompt +
reply with the loss on the reply tokens (:func:`common.tasks.chat.tokenize_dialogues`).
Branches and the server's held-out set both tokenize here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.privacy.render import Rendered
from common.tasks.chat import tokenize_dialogues
from common.tasks.spec import Task
from common.tasks.tokens import TokenizedSet, tokenize

if TYPE_CHECKING:
    import torch


def task_examples(task: Task, rendered: Rendered, labels: "torch.Tensor | None", tokenizer, max_length: int) -> TokenizedSet:
    """The tokenized examples of ``rendered`` for ``task`` (``labels``: the encoded labels; None for ``chat``)."""
    if task.generative:
        return tokenize_dialogues(rendered.texts, rendered.responses, tokenizer, max_length)
    return tokenize(rendered.texts, labels, tokenizer, max_length)
