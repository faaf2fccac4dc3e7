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
   least four digits lose their spaces;
5. **identifiers read aloud** (``M as in Mary, five six two zero one eight,
   five in brackets``, ``letter Z``, NATO words ``Alpha``..``Zulu``, ``括号二``):
   a spelled letter becomes the letter, the commas and spaces between an ID's
   letter prefix, its digits and its check character vanish and a check
   character read in brackets is written ``(5)``, so every self-checking
   format (HK, Macau, Taiwan IDs, passports) sees ``M562018(5)``.

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
_NATO = {"alpha": "A", "alfa": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E", "foxtrot": "F", "golf": "G",
         "hotel": "H", "india": "I", "juliet": "J", "juliett": "J", "kilo": "K", "lima": "L", "mike": "M",
         "november": "N", "oscar": "O", "papa": "P", "quebec": "Q", "romeo": "R", "sierra": "S", "tango": "T",
         "uniform": "U", "victor": "V", "whiskey": "W", "whisky": "W", "x-ray": "X", "xray": "X", "yankee": "Y", "zulu": "Z"}
_NATO_WORD = "|".join(w.capitalize() for w in _NATO)
_ID_SEP = r"[ ,，:：\-]{1,3}"
# A spelled letter: "M as in Mary", "Z for Zebra", "letter Z", 字母Z, or a NATO word next to an ID's other parts.
_SPELLED = re.compile(rf"\b(?P<as>[A-Z])[ ,]+(?:as in|for|like) [A-Z][a-z]+\b|(?:\b[Ll]etter |字母)(?P<letter>[A-Za-z])\b"
                      rf"|\b(?P<nato>{_NATO_WORD})\b(?={_ID_SEP}(?:\d|[A-Z]\b|(?:{_NATO_WORD})\b))")
_SPOKEN_CHECK = (r"(?:(?:in |open )?brackets? ?|括[号弧] ?)(?P<check>\d|[A-Z]\b|[零一二三四五六七八九]|"
                 rf"(?i:{_EN_WORD})\b)(?: ?close bracket)?")
# An identifier's parts read with pauses: letter prefix, digits, check character (in brackets, or read "5 in brackets").
_ID_PARTS = re.compile(rf"(?<![A-Za-z0-9])(?P<prefix>[A-Z](?:[ ,，\-]{{0,3}}[A-Z](?![A-Za-z]))?[ ,，:：\-]{{1,3}})?"
                       rf"(?:\d{{5,9}}(?P<last>\d) in brackets?\b|\d{{6,10}}(?!\d)"
                       rf"(?P<tail>{_ID_SEP}(?:{_SPOKEN_CHECK}|\((?P<written>\w)\)|(?P<suffixed>[0-9A]) in brackets?\b))?)")
_HAS_SPOKEN = re.compile(rf"as in|\bfor [A-Z]|[Ll]etter|字母|bracket|括[号弧]|{_NATO_WORD}")
# Single characters separated by one or two spaces: "5 5 2 0  8 4 1 1", "D 4 9 1 0 3 6 ( 3 )".
_TOKEN = r"(?:[0-9A-Za-z](?:\(\w\))?|\(\w\)|[()/.\-])"
_SPACED = re.compile(rf"(?<![A-Za-z0-9])(?:(?:[A-Z]{{2,3}}|[A-Z]\d)(?= ))?{_TOKEN}(?: {{1,2}}{_TOKEN}(?![A-Za-z0-9]))+")
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


def _spelled_letters(norm: Normalized) -> Normalized:
    pieces = []
    for m in _SPELLED.finditer(norm.text):
        letter = m["as"] or m["letter"] or _NATO[m["nato"].lower()]
        pieces.append((*m.span(), letter.upper()))
    return _rewrite(norm, pieces)


def _spoken_id_parts(norm: Normalized) -> Normalized:
    pieces = []
    for m in _ID_PARTS.finditer(norm.text):
        if not (m["prefix"] or m["tail"] or m["last"]):
            continue  # plain digits: nothing read aloud to join
        if m["prefix"]:
            pieces += [(m.start("prefix") + g.start(), m.start("prefix") + g.end(), "")
                       for g in re.finditer(r"[^A-Z]+", m["prefix"])]
        if m["last"]:
            pieces.append((m.start("last"), m.end(), f"({m['last']})"))
        elif m["tail"]:
            check = m["check"] or m["written"] or m["suffixed"]
            digit = _EN_DIGIT_WORDS.get(check.lower()) or _CN_DIGIT_OF.get(check) or check
            pieces.append((m.start("tail"), m.end("tail"), f"({digit})"))
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
    norm = _spaced_out(norm)
    if _HAS_SPOKEN.search(norm.text):
        norm = _spoken_id_parts(_spelled_letters(norm))
    return norm
