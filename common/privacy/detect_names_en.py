"""Detector for person names written in Latin script (English text, pinyin, European and African names).

A *name run* is a sequence of name tokens: capitalized or ALL-CAPS words in
any alphabet Unicode knows (``Łukasz``, ``Siobhán``, ``Sørensen``), with
apostrophes and hyphens (``O'Sullivan``, ``Jean-Baptiste``), initials
(``J.``), particles inside (``dos``, ``van der``, ``binti``, ``Ní``) and the
``SURNAME, Given`` order of forms.  A run is a name when:

* a **cue** precedes it (Mr./Ms./Dr., my name is, I'm, this is, Dear, Hi,
  Thanks, Regards, name:, cardholder:, payee, beneficiary, from, 汇款人是 ...),
  or
* it has two or more tokens and one of them is a known given name or every
  one is a known given name or surname (Faker's locale lists,
  :mod:`common.privacy.lexicons`), none being an everyday word.

Every other occurrence of a token of a name found (``Thanks, Ciarán``
after ``Ciarán O'Sullivan``) is a name too.  Products and brands
(:mod:`common.privacy.keep`) are claimed before this detector runs, so
``Apple`` or ``American Express`` are never taken for names.
"""

from __future__ import annotations

import re

from common.privacy.lexicons import COMMON_WORDS, COUNTRY_WORDS, FIRST_NAMES, LAST_NAMES

_LETTER = r"[^\W\d_\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]"  # any letter but CJK: 汇款人Michael Chen splits at the cue
_WORD = rf"{_LETTER}(?:{_LETTER}|['’\-]{_LETTER})*"
_PARTICLES = ("van der|van den|van de|van|von der|von|de la|de los|de las|del|della|de|da|das|dos|do|du|di|le|la|"
              "bin|binti|bint|ibn|al|el|ní|nic|ó|ter|ten|mac|ap")
_TOKEN = re.compile(rf"(?:[A-Z]\.|{_WORD})")
_RUN = re.compile(
    rf"(?<!{_LETTER})(?<![\d_@.])(?:[A-Z]\.[ \t]*)?(?P<first>{_WORD})(?:(?:[ \t]{{1,2}}|,[ \t]?)(?:(?i:{_PARTICLES})[ \t]+)*"
    rf"(?:[A-Z]\.|{_WORD}))*")
_STRONG_CUE = re.compile(
    r"(?i:(?<![a-z])(?:mr|mrs|ms|miss|mx|dr|prof|sir|madam|aunt|uncle|auntie|grandma|grandpa)\.?|my name is|my name's|"
    r"i am|i['’]m|this is|call me|dear|hi|hello|hey|thanks|thank you|cheers|regards|sincerely|best wishes|"
    r"signed|name|full name|cardholder|card holder|account holder|account name|payee|beneficiary|recipient|remitter|"
    r"attn|attention|spoke with|speaking with|汇款人是|收款人是?|付款人是?|户名|持卡人|姓名|联系人)"
    r"[ \t]*[:：,.\-]?[ \t]*(?:\n[ \t]*)?$")
_TITLE = re.compile(r"(?<![A-Za-z])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]*$")
_LOWER_NAME = re.compile(r"(?i:my name is|my name's|name\s*:|i am called)\s+(?P<first>[a-z]+)(?:[ \t]+(?P<last>[a-z]+))?")
_WEAK_CUE = re.compile(
    r"(?i:\b(?:from|to|by|cc|agent|officer|manager|advisor|adviser|colleague|customer|client|applicant|borrower|"
    r"guarantor|husband|wife|son|daughter|mother|father|mum|mom|dad|brother|sister|partner|friend|landlord|tenant|"
    r"paid|pay|sent|send|owe|transferred|wired|for|with|and|it['’]s)|客户|经理|同事|朋友|叫|是|给|和|跟)"
    r"[ \t]*[:：,.\-]?[ \t]*$")
_ROLE_WORDS = frozenset("customer client applicant borrower guarantor payee beneficiary recipient remitter cardholder "
                        "agent officer manager advisor adviser teller clerk caller member".split())  # cues, not names
_SPLIT = re.compile(r"[ \t,]+")
_ALL_CAPS_STOP = frozenset("ID IBAN SWIFT BIC ATM PIN OTP USD GBP EUR RMB CNY HKD VIP APP SMS DOB NI SSN PO OK UK US "
                           "HK PRC EU CC REF NO TEL FAX".split())


def _tokens(run: str, base: int) -> list[tuple[int, int, str]]:
    return [(base + m.start(), base + m.end(), m.group()) for m in _TOKEN.finditer(run)]


def _is_name_word(word: str) -> bool:
    return word[:1].isupper() and (len(word) >= 2 or word.endswith(".")) and word.upper() not in _ALL_CAPS_STOP


def _name_groups(work: str, m: re.Match[str]) -> list[list[tuple[int, int, str]]]:
    """The groups of consecutive name tokens (capitalized words, particles, initials) in a run."""
    groups: list[list[tuple[int, int, str]]] = [[]]
    for s, e, word in _tokens(m.group(), m.start()):
        low = word.casefold()
        if re.fullmatch(rf"(?i:{_PARTICLES})", word) and groups[-1]:
            groups[-1].append((s, e, word))
            continue
        if _surname_after_given(groups[-1], word):  # Oliver Young, Ahmed Martin: an everyday word as a surname
            groups[-1].append((s, e, word))
            continue
        contraction = re.search(r"['’](?:m|s|d|ll|ve|re|t)$", low)  # I'm, it's, we'd: no name
        if contraction or low in _ROLE_WORDS or not _is_name_word(word) or low in COUNTRY_WORDS or (low in COMMON_WORDS and low not in (
                "lee", "li", "ma", "ho", "an", "bo")):
            groups.append([])
            continue
        groups[-1].append((s, e, word))
    for group in groups:
        while group and re.fullmatch(rf"(?i:{_PARTICLES})", group[-1][2]):
            group.pop()
    return [g for g in groups if g]


def _surname_after_given(group: list[tuple[int, int, str]], word: str) -> bool:
    """A capitalized known surname that is also an everyday or country word, right after a known given name."""
    if not group or not word[:1].isupper() or word.isupper() or word.casefold() not in LAST_NAMES:
        return False
    given = group[-1][2]
    return not given.isupper() and given.casefold() in FIRST_NAMES and given.casefold() not in COMMON_WORDS


def _known(word: str) -> bool:
    low = word.casefold().rstrip(".")
    return low in FIRST_NAMES or low in LAST_NAMES


def _accept(work: str, tokens: list[tuple[int, int, str]]) -> bool:
    words = [w for _, _, w in tokens if not w.endswith(".")]
    if not words:
        return False
    before = max(0, tokens[0][0] - 24), tokens[0][0]
    if "'" in words[0] or "’" in words[0]:
        return False  # I'm, I'd
    if _TITLE.search(work, *before):
        return True
    if _STRONG_CUE.search(work, *before):  # name: Hiroshi Yamamoto, Regards, Tashi Norbu: two or three capitalized words
        return any(_known(w) for w in words) or (2 <= len(words) <= 3 and all(w[1:].islower() for w in words))
    if _WEAK_CUE.search(work, *before) and any(w.casefold() in FIRST_NAMES and not w.isupper() for w in words):
        return True
    if len(words) < 2 or all(w.isupper() for w in words):
        return False  # ALL-CAPS without a cue is a merchant descriptor (CON EDISON), not a form's name field
    caps = [w for w in words if w[0].isupper()]
    return any(w.casefold() in FIRST_NAMES for w in caps) or all(_known(w) for w in caps)


def detect_en_name(work: str) -> list[tuple[int, int, str]]:
    spans = []
    for m in _RUN.finditer(work):
        for tokens in _name_groups(work, m):
            if _accept(work, tokens):
                spans.append((tokens[0][0], tokens[-1][1], "NAME"))
    for m in _LOWER_NAME.finditer(work):  # "my name is kevin lee": lower case, a known first name
        if m.group("first") in FIRST_NAMES:
            last = m.group("last")
            end = m.end("last") if last and (last in LAST_NAMES or last in FIRST_NAMES) else m.end("first")
            spans.append((m.start("first"), end, "NAME"))
    found = {w for s, e, _ in spans for w in _SPLIT.split(work[s:e]) if len(w) >= 3 and w[0].isupper()}
    for word in found:
        for m in re.finditer(rf"(?<![\w]){re.escape(word)}(?![\w])", work):
            spans.append((*m.span(), "NAME"))
    return spans
