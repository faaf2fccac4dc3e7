"""Detector for NAME: Latin-script names inside Chinese text, vocatives and user names built from a name.

Chinese speakers often go by an English given name (``还Tony的钱``, ``David 明天10点...``),
sometimes with their Chinese surname after it (``Lily 王``), and a romanized surname
takes a Chinese honorific (``Wong先生``).  In Chinese text a capitalized English given
name needs no cue: the change of script marks it.  Also:

* a message opening with a known given name and a comma or exclamation mark
  (``Bartholomew, meet me at ...``) addresses that person;
* a user name made of a known given name and a known surname (``marta.kowalska``).

Names come from Faker's locale lists (:mod:`common.privacy.lexicons`); a given name
that is an everyday English word (``Grace``, ``May``) or a country (``Jordan``) is not
taken, and brands are claimed before names run (:mod:`common.privacy.keep`).
"""

from __future__ import annotations

import re

from common.privacy.lexicons import (CN_SURNAMES, COUNTRY_WORDS, ENGLISH_GIVEN_NAMES, EVERYDAY_WORDS, FIRST_NAMES,
                                     LAST_NAMES, fold)

_HAN = r"\u4e00-\u9fff"
_CN_PUNCT = "，。！？；：、（）【】“”"
# An English given name touching Chinese text: 还Tony的钱, David 明天, 用户: Jessica 周;
_IN_CHINESE = re.compile(
    rf"(?<![A-Za-z])(?P<given>[A-Z][a-z]{{2,}})(?P<surname>[ \t]?[{_HAN}](?![{_HAN}]))?(?![A-Za-z])")
_LATIN_SURNAME = re.compile(r"[ \t]+([A-Z][a-z]+)(?![A-Za-z'’-])")
_HONORIFIC = re.compile(rf"(?<![A-Za-z])(?P<surname>[A-Z][a-z]+)[ \t]?(?=先生|女士|小姐|太太)")
_VOCATIVE = re.compile(r"(?m)^[ \t]*(?P<given>[A-Z][a-z]{2,})(?=[ \t]*(?:,|!))")
_USER = re.compile(r"(?<![\w.@+-])(?P<first>[a-z]{3,})[._](?P<last>[a-z]{3,})(?![\w@]|\.[a-z])")


def _given(word: str) -> bool:
    low = fold(word)
    return low not in EVERYDAY_WORDS and low not in COUNTRY_WORDS


def _touches_chinese(work: str, start: int, end: int) -> bool:
    before = work[start - 1:start]
    after = work[end:end + 2].lstrip(" \t")[:1]
    return any(c and (re.match(f"[{_HAN}]", c) or c in _CN_PUNCT) for c in (before, after))


def detect_mixed_name(work: str) -> list[tuple[int, int, str]]:
    spans = []
    for m in _IN_CHINESE.finditer(work):
        given = m.group("given")
        if fold(given) not in ENGLISH_GIVEN_NAMES or not _given(given):
            continue
        latin = _LATIN_SURNAME.match(work, m.end("given"))
        surname = (m.group("surname") or "").strip()
        if latin and _given(latin.group(1)) and _touches_chinese(work, m.start(), latin.end()):  # 客户Daniel Yip叶俊文
            spans.append((m.start(), latin.end(), "NAME"))
        elif surname and surname in CN_SURNAMES:  # Lily 王: the Chinese surname after the English name
            spans.append((m.start(), m.end(), "NAME"))
        elif _touches_chinese(work, m.start(), m.end("given")):
            spans.append((m.start(), m.end("given"), "NAME"))
    for m in _HONORIFIC.finditer(work):
        if fold(m.group("surname")) in LAST_NAMES:
            spans.append((m.start(), m.end("surname"), "NAME"))
    for m in _VOCATIVE.finditer(work):
        if fold(m.group("given")) in FIRST_NAMES and _given(m.group("given")):
            spans.append((m.start("given"), m.end("given"), "NAME"))
    for m in _USER.finditer(work):
        first, last = m.group("first"), m.group("last")
        if first in FIRST_NAMES and last in LAST_NAMES and _given(first) and _given(last):
            spans.append((m.start(), m.end(), "NAME"))
    return spans
