"""Detector for NAME: Chinese names in Latin script (pinyin, Cantonese, Wade-Giles romanizations).

Faker's lists hold pinyin surnames but few Hong Kong / Macau spellings and
no given-name syllables, so such names (a surname and two one-syllable given
names, ``Surname Syl Syl``) escape the Latin-name detector.  This rule takes
a romanized Chinese surname (Faker's romanized lists plus the Cantonese and
Macanese spellings below) followed by a given name made of Chinese syllables:

* two syllables as words or joined by a hyphen (``Chan Tai Man``, ``Wu Mei-Ling``);
* after an ALL-CAPS surname (a passport's order), one or two syllables in one
  word or ALL-CAPS words (``WANG Xiaohong``, ``WANG XIAO HONG``).

A syllable is an initial (b, ch, ts, kw, ng ...) and a final (a, ing, ui, ok ...);
a given name made only of English words (``Ho Man`` ...) and a place
(``... City``, ``... Road``) are not taken.
"""

from __future__ import annotations

import re

from common.privacy.lexicons import COMMON_WORDS, LAST_NAMES

# Hong Kong, Macau and older Taiwan spellings of common surnames (陳 Chan, 黃 Wong, 吳 Ng, 張 Cheung ...).
_SURNAMES = frozenset(
    "chan wong lam ng ho lee cheung lau leung tse yip kwok chow tang lai lei mak fung choi tsang cheng yeung siu "
    "law lo kwan wu poon chu hui au tam yu lui ko tsui sze chung mok kong luk fong chiu kam shum ip lok pang yuen "
    "tong leong vong sou iao cheong chao chou hsu hsieh chiang tsai kuo huang liu lin chen wang zhang li zhao "
    "yang zhou xu sun hu zhu gao guo he luo liang song xie han tang feng deng cao peng zeng xiao tian pan yuan "
    "cai jiang yu du ye cheng wei su lu ding ren shen yao jin tan jia fan qiu qin jiang dai xia zhong fu".split())
# A Title-case surname may also be any short Latin-script one of Faker's lists (they hold pinyin spellings);
# an ALL-CAPS one must be a Chinese spelling above (WISE NG is a merchant descriptor).
_TITLE_SURNAMES = _SURNAMES | frozenset(n for n in LAST_NAMES if len(n) <= 6 and n.isalpha() and n.isascii())
_SYLLABLE = (r"(?:(?:ch|sh|zh|ts|tsz|sz|ng|kw|gw|hs|[bcdfghjklmnpqrstwxyz])?"
             r"(?:iang|iong|uang|iao|uai|ang|eng|ing|ong|ung|ian|uan|yan|yun|ai|ao|ei|ia|ie|io|iu|oi|ou|ua|ui|uo|ue|eu|oo|ee|"
             r"[aeiouy])(?:ng|n|m|k|p|t|h|r(?![aeiou]))?|ng|tsz|sz|m)")
_SYLLABLE_WORD = re.compile(rf"(?i:{_SYLLABLE})")
_JOINED = re.compile(rf"(?i:{_SYLLABLE}{_SYLLABLE}?)")
_CANDIDATE = re.compile(
    r"(?<![A-Za-z'’-])(?P<surname>[A-Z][a-z]{1,6}|[A-Z]{2,7})"
    r"(?P<given>(?:[ \t]+[A-Z][a-z]{0,5}){2}|[ \t]+[A-Z][a-z]{0,5}-[A-Za-z][a-z]{0,5}"
    r"|[ \t]+[A-Z][a-z]{1,11}|(?:[ \t]+[A-Z]{1,6}){1,3})(?![A-Za-z'’-])")


_PLACE_AFTER = re.compile(r"[ \t]+(?:City|Road|Street|Estate|District|Station|Village|Square|Centre|Center)\b")


def _given_ok(surname: str, given: str) -> bool:
    parts = [p for p in re.split(r"[ \t-]+", given.strip()) if p]
    caps_surname = surname.isupper()
    if len(parts) == 1 and not caps_surname:
        return False  # one given word after a Title-case surname (Chan Tai) is too weak
    if caps_surname and all(p.isupper() for p in parts) and len(parts) == 1 and len(parts[0]) < 3:
        return False
    joined_ok = len(parts) == 1 and _JOINED.fullmatch(parts[0])
    syllables_ok = len(parts) >= 2 and all(_SYLLABLE_WORD.fullmatch(p) for p in parts)
    if not (joined_ok or syllables_ok):
        return False
    return not all(p.casefold() in COMMON_WORDS for p in parts)


def detect_romanized_name(work: str) -> list[tuple[int, int, str]]:
    spans = []
    for m in _CANDIDATE.finditer(work):
        surname = m.group("surname")
        if surname.casefold() not in (_SURNAMES if surname.isupper() else _TITLE_SURNAMES):
            continue
        if surname.isupper() is False and m.group("given").strip().isupper():
            continue
        if _given_ok(surname, m.group("given")) and not _PLACE_AFTER.match(work, m.end()):
            spans.append((m.start(), m.end(), "NAME"))
    return spans
