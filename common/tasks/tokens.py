"""Model examples: tokenized tensors, and the classification tasks' tokenization.

:class:`TokenizedSet` is what every task trains and evaluates on: a
classifier's texts with their label indices (:func:`tokenize`), or ``chat``'s
prompt + reply sequences with token labels (:func:`common.tasks.chat.tokenize_dialogues`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class TokenizedSet:
    """Tokenized examples ready for a model."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def as_dataset(self) -> torch.utils.data.TensorDataset:
        """A ``TensorDataset`` of (input_ids, attention_mask, labels)."""
        import torch.utils.data

        return torch.utils.data.TensorDataset(self.input_ids, self.attention_mask, self.labels)

    def batches(self, batch_size: int, device) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(input_ids, attention_mask, labels)`` in order, each batch cut by :func:`trim_padding`, on ``device``."""
        for start in range(0, len(self), batch_size):
            sl = slice(start, start + batch_size)
            cut = trim_padding(self.input_ids[sl], self.attention_mask[sl], self.labels[sl])
            yield tuple(t.to(device) for t in cut)


def trim_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor):
    """A batch without its trailing columns that are padding in every row.

    Exact for any model whose outputs at real positions ignore masked later
    positions (a bidirectional encoder with its attention mask, a causal
    LM): sets are padded to ``model.max-length``, most messages are much
    shorter, and the cost of a step grows with the padded length.  Token
    labels (a causal LM's, 2-D) are cut with the inputs.
    """
    used = attention_mask.any(dim=0).nonzero()
    length = int(used[-1]) + 1 if len(used) else 1
    if length >= input_ids.shape[1]:
        return input_ids, attention_mask, labels
    if labels.dim() == 2:
        labels = labels[:, :length]
    return input_ids[:, :length], attention_mask[:, :length], labels


def tokenize(texts: list[str], labels: torch.Tensor, tokenizer, max_length: int) -> TokenizedSet:
    """Tokenize (pad and truncate to ``max_length``)."""
    enc = tokenizer(texts, max_length=max_length, padding="max_length", truncation=True, return_tensors="pt")
    return TokenizedSet(enc["input_ids"], enc["attention_mask"], labels)
