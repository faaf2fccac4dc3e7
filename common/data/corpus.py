"""The raw corpus type of every task: examples with string labels.

:class:`Corpus` holds intent texts, credit/fraud field records, or chat
dialogues, with their labels.  It sits below the loaders
(:mod:`common.data.files`), the synthetic streams
(:mod:`common.data.synthetic.streams`), the split and partition
(:mod:`common.data.split`) and what each node loads
(:mod:`common.data.sources`), so each of them imports it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Corpus:
    """Raw examples with string labels.

    Attributes:
        texts: the raw text of each example (intent; chat: the customer's
            message); ``None`` for a record row.
        labels: the label of each example (chat: its topic, '' if unknown,
            which only steers the partition; the model never sees it).
        records: for the record tasks (credit, fraud), each example's raw
            fields (column -> value, the label column excluded), serialized to
            text only after desensitization at the branch; a ``None`` entry is a
            plain-text row (the audit's canaries).  ``None`` for a text corpus.
        responses: for ``chat``, the agent's reply of each example; ``None`` otherwise.
    """

    texts: list[str | None]
    labels: list[str]
    records: list[dict[str, str] | None] | None = None
    responses: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "Corpus":
        """The examples at positions ``idx``."""
        records = None if self.records is None else [self.records[i] for i in idx]
        responses = None if self.responses is None else [self.responses[i] for i in idx]
        return Corpus([self.texts[i] for i in idx], [self.labels[i] for i in idx], records, responses)

    def concat(self, other: "Corpus") -> "Corpus":
        """This corpus followed by ``other`` (records kept; a text row of either side has record ``None``).

        Two dialogue corpora concatenate their replies; a dialogue corpus takes no rows without a reply.
        """
        if (self.responses is None) != (other.responses is None):
            raise ValueError("a dialogue corpus can only be joined with another dialogue corpus")
        responses = None if self.responses is None else self.responses + other.responses
        if self.records is None and other.records is None:
            return Corpus(self.texts + other.texts, self.labels + other.labels, None, responses)
        mine = self.records if self.records is not None else [None] * len(self)
        theirs = other.records if other.records is not None else [None] * len(other)
        return Corpus(self.texts + other.texts, self.labels + other.labels, mine + theirs, responses)
