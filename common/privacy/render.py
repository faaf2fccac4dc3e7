"""The one desensitize-and-render step: raw examples -> the model's text and the PII counts.

Every place that turns raw data into model text goes through
:class:`Renderer` -- a branch preparing its training set, the server
preparing its held-out set, the canary audit -- so the server's held-out text
is desensitized exactly as a branch's:

* a **text** (intent messages, the audit's canaries) is masked by the
  :class:`~common.privacy.desensitize.Desensitizer`;
* a **record** (credit, fraud) goes through the run's
  :class:`~common.privacy.records.RecordPipeline`: identifiers dropped,
  quasi-identifiers generalized, values masked, then serialized to text;
* a **dialogue** (chat) has its prompt and its reply masked, each as a text.

The PII counts (one total per type over every masked value, both sides of a
dialogue together) are what a branch claims in the privacy ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common.privacy.desensitize import Desensitizer
from common.privacy.pii import PII_TYPES
from common.privacy.records import RecordPipeline


@dataclass
class Rendered:
    """Model texts and what desensitization removed.

    Attributes:
        texts: the model input of each example (chat: the masked prompt).
        counts: masked or dropped values per PII type, all types present.
        responses: chat: each example's masked reply; None otherwise.
    """

    texts: list[str]
    counts: dict[str, int]
    responses: list[str] | None = None


class Renderer:
    """Desensitize and render raw examples, the same way on every node.

    ``pipeline``: the run's record pipeline (credit, fraud), None for a text
    task; a record row needs it.
    """

    def __init__(self, pipeline: RecordPipeline | None = None, desensitizer: Desensitizer | None = None) -> None:
        self.pipeline = pipeline
        self.desensitizer = desensitizer or Desensitizer()

    def render(self, texts: Sequence[str | None], records: Sequence[Mapping[str, object] | None] | None = None,
               responses: Sequence[str] | None = None) -> Rendered:
        """Model texts of the examples and the PII counts.

        Args:
            texts: each example's raw text (``None`` for a record row).
            records: each example's raw fields, or ``None`` for a text row
                (the audit's canaries in a record corpus); None for a text corpus.
            responses: chat: each example's raw reply.
        """
        totals = {t: 0 for t in PII_TYPES}
        out: list[str] = [""] * len(texts)
        record_rows = [i for i, r in enumerate(records) if r is not None] if records is not None else []
        if record_rows:
            if self.pipeline is None:
                raise ValueError("a record needs the run's record pipeline (its column mapping) to be rendered")
            rendered, counts = self.pipeline.render([records[i] for i in record_rows], self.desensitizer)
            for i, text in zip(record_rows, rendered):
                out[i] = text
            _add(totals, counts)
        done = set(record_rows)
        for i, text in enumerate(texts):
            if i not in done:
                out[i] = self._mask(text, totals)
        masked_responses = None if responses is None else [self._mask(r, totals) for r in responses]
        return Rendered(out, totals, masked_responses)

    def _mask(self, text: str, totals: dict[str, int]) -> str:
        result = self.desensitizer.apply(text)
        _add(totals, result.counts)
        return result.text


def _add(totals: dict[str, int], counts: Mapping[str, int]) -> None:
    for t, n in counts.items():
        totals[t] += n
