"""Span bookkeeping shared by the PII detectors and the engine (:mod:`common.privacy.desensitize`).

A detector returns ``(start, end, type)`` spans (helpers may use bare ``(start, end)``); :func:`claim` keeps those that
overlap nothing already taken, :func:`by_priority` merges span lists so that
an earlier list wins an overlap, and ``BLOCK`` is the character the engine
writes over claimed text so that later detectors cannot see it.
"""

from __future__ import annotations

from collections.abc import Iterable

BLOCK = "\x00"  # overwrites claimed spans in the working copy; matches no pattern


def claim(taken: bytearray, spans: Iterable[tuple]) -> list[tuple]:
    """Keep the spans that overlap nothing in ``taken`` (leftmost, then longest, first) and mark them."""
    kept = []
    for span in sorted(spans, key=lambda x: (x[0], -x[1])):
        s, e = span[0], span[1]
        if e > s and taken.find(1, s, e) == -1:
            taken[s:e] = b"\x01" * (e - s)
            kept.append(span)
    return kept


def by_priority(*groups: list[tuple]) -> list[tuple]:
    """Merge span lists; a span overlapping one from an earlier list is dropped."""
    taken = bytearray(max((span[1] for group in groups for span in group), default=0))
    return [span for group in groups for span in claim(taken, group)]

