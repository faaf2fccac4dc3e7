"""Text normalization before PII detection, with a map from every normalized character back to the input.

Detectors see one canonical form of a value however it was typed, read out or
scanned:

1. **Unicode NFKC**, character by character: full-width digits and letters
   (``１３８``, ``＠``), the ideographic space and other compatibility forms
   become ASCII;
2. **Chinese numerals read digit by digit** (``三五零二…``, ``幺`` for 1): runs
   of four or more, possibly spaced, are converted with :mod:`cn2an`;
3. **English digits read aloud** (``five four two four, one eight …``, ``oh``
   for 0): runs of four or more digit words become digits;
4. **values spaced out by OCR** (``5 5 2 0  8 4 1 1``, ``G B 2 9 N W B K``,
   ``1 2 / 0 4 / 1 9 9 0``): runs of five or more single characters with at
   least four digits lose their spaces.

Each pass rewrites the text and composes the offset map, so a span found in
the normalized text maps to the exact characters of the original
(:meth:`Normalized.to_original`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import cn2an

_CN_DIGITS = "零〇一二三四五六七八九幺"
_CN_DIGIT_OF = {ch: str(cn2an.cn2an("一" if ch == "幺" else ch, "smart")) for ch in _CN_DIGITS}  # 幺 is 1 read aloud
_CN_RUN = re.compile(rf"[{_CN_DIGITS}](?:[ \t]?[{_CN_DIGITS}]){{3,}}")
_EN_DIGIT_WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                   "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_EN_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_EN_RUN = re.compile(rf"(?i)\b{_EN_WORD}(?:(?:,?[ \t]+|-){_EN_WORD}){{3,}}\b")
_EN_WORD_AT = re.compile(rf"(?i)\b{_EN_WORD}\b")
# Single characters separated by one or two spaces: "5 5 2 0  8 4 1 1", "D 4 9 1 0 3 6 ( 3 )".
_TOKEN = r"(?:[0-9A-Za-z](?:\(\w\))?|\(\w\)|[()/.\-])"
_SPACED = re.compile(rf"(?<![A-Za-z0-9(])(?:(?:[A-Z]{{2,3}}|[A-Z]\d)(?= ))?{_TOKEN}(?: {{1,2}}{_TOKEN}(?![A-Za-z0-9]))+")
_MIN_SPACED_TOKENS = 5


@dataclass(frozen=True)
class Normalized:
    """Normalized text and, per character, the ``[start, end)`` of the input characters it came from."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The input span of the normalized span ``[start, end)`` (``end > start``)."""
        return self.starts[start], self.ends[end - 1]


def _rewrite(norm: Normalized, pieces: list[tuple[int, int, str]]) -> Normalized:
    """Replace each ``(start, end, new)`` of ``norm.text`` (sorted, disjoint); every new character maps to the whole piece."""
    if not pieces:
        return norm
    out, starts, ends, cursor = [], [], [], 0
    for s, e, new in pieces:
        out.append(norm.text[cursor:s])
        starts += norm.starts[cursor:s]
        ends += norm.ends[cursor:s]
        out.append(new)
        starts += [norm.starts[s]] * len(new)
        ends += [norm.ends[e - 1]] * len(new)
        cursor = e
    out.append(norm.text[cursor:])
    starts += norm.starts[cursor:]
    ends += norm.ends[cursor:]
    return Normalized("".join(out), tuple(starts), tuple(ends))


def _nfkc(norm: Normalized) -> Normalized:
    pieces = []
    for i, ch in enumerate(norm.text):
        if ord(ch) > 0x7F:
            new = unicodedata.normalize("NFKC", ch)
            if new != ch:
                pieces.append((i, i + 1, new))
    return _rewrite(norm, pieces)


def _chinese_numerals(norm: Normalized) -> Normalized:
    pieces = []
    for m in _CN_RUN.finditer(norm.text):  # one numeral -> one digit, so each digit maps to its own character
        pieces += [(m.start() + i, m.start() + i + 1, _CN_DIGIT_OF[ch]) for i, ch in enumerate(m.group()) if ch in _CN_DIGITS]
    return _rewrite(norm, pieces)


def _english_digits(norm: Normalized) -> Normalized:
    pieces = []
    for m in _EN_RUN.finditer(norm.text):
        words = list(_EN_WORD_AT.finditer(m.group()))
        for k, w in enumerate(words):  # a word becomes its digit; the separators up to the next word vanish
            end = words[k + 1].start() if k + 1 < len(words) else w.end()
            pieces.append((m.start() + w.start(), m.start() + end, _EN_DIGIT_WORDS[w.group().lower()]))
    return _rewrite(norm, pieces)


def _spaced_out(norm: Normalized) -> Normalized:
    pieces = []
    for m in _SPACED.finditer(norm.text):
        run = m.group()
        tokens = run.split()
        if len(tokens) >= _MIN_SPACED_TOKENS and sum(t.isdigit() for t in tokens) >= 4:
            pieces += [(m.start() + g.start(), m.start() + g.end(), "") for g in re.finditer(r" +", run)]
    return _rewrite(norm, pieces)


def normalize(text: str) -> Normalized:
    """The detection form of ``text`` and its offset map (identity when nothing needs rewriting)."""
    norm = Normalized(text, tuple(range(len(text))), tuple(range(1, len(text) + 1)))
    if not text.isascii():
        norm = _nfkc(norm)
        norm = _chinese_numerals(norm)
    if _EN_WORD_AT.search(norm.text):
        norm = _english_digits(norm)
    return _spaced_out(norm)
