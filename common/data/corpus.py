"""The raw corpus type shared by every data module: examples with string labels.

:class:`Corpus` holds intent texts or credit/fraud field records with their
labels.  It sits below the loaders (:mod:`common.data.files`), the synthetic
streams (:mod:`common.data.synthetic.streams`) and the split, partition and
tokenization (:mod:`common.data.sources`), so each of them imports it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Corpus:
    """Raw examples with string labels.

    Attributes:
        texts: the raw text of each example (intent); ``None`` for a record row.
        labels: the label of each example.
        records: for the record tasks (credit, fraud), each example's raw
            fields (column -> value, the label column excluded), serialized to
            text only after desensitization at the branch; a ``None`` entry is a
            plain-text row (the audit's canaries).  ``None`` for a text corpus.
    """

    texts: list[str | None]
    labels: list[str]
    records: list[dict[str, str] | None] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "Corpus":
        """The examples at positions ``idx``."""
        records = None if self.records is None else [self.records[i] for i in idx]
        return Corpus([self.texts[i] for i in idx], [self.labels[i] for i in idx], records)

    def concat(self, other: "Corpus") -> "Corpus":
        """This corpus followed by ``other`` (records kept; a text row of either side has record ``None``)."""
        if self.records is None and other.records is None:
            return Corpus(self.texts + other.texts, self.labels + other.labels)
        mine = self.records if self.records is not None else [None] * len(self)
        theirs = other.records if other.records is not None else [None] * len(other)
        return Corpus(self.texts + other.texts, self.labels + other.labels, mine + theirs)
