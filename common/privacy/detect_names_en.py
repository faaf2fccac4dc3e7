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

from common.privacy.lexicons import (COMMON_WORDS, COUNTRY_WORDS, EVERYDAY_WORDS, FIRST_NAMES, LAST_NAMES, PLACE_NAMES,
                                     fold)

_LETTER = r"[^\W\d_\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]"  # any letter but CJK: 汇款人Michael Chen splits at the cue
_WORD = rf"{_LETTER}(?:{_LETTER}|['’\-]{_LETTER})*"
_PARTICLES = "van|von|der|den|del|della|de|la|los|las|da|das|dos|do|du|di|le|bin|binti|bint|ibn|al|el|ní|nic|ó|ter|ten|mac|ap"
_TOKEN = re.compile(rf"(?:[A-Z]\.|{_WORD})")
_RUN = re.compile(
    rf"(?<!{_LETTER})(?<![\d_@.])(?:[A-Z]\.[ \t]*)?(?P<first>{_WORD})(?:(?:[ \t]{{1,2}}|,[ \t]?)(?:(?i:{_PARTICLES})[ \t]+)*"
    rf"(?:[A-Z]\.|{_WORD}))*")
_STRONG_CUE = re.compile(
    r"(?i:(?<![a-z])(?:mr|mrs|ms|miss|mx|dr|prof|sir|madam)\.?|my name is|my name's|(?:^|\b(?:hi|hey|hello)\W{1,3})it['’]s|"
    r"i am|i['’]m|this is|call me|dear|hi|hello|hey|thanks|thank you|cheers|regards|sincerely|best wishes|"
    r"signed|name|full name|cardholder|card holder|account holder|account name|payee|beneficiary|recipient|remitter|"
    r"surname|last[ _]name|first[ _]names?|given[ _]names?|forenames?|nom|pr[ée]noms?|(?:ordering |joint )?customer|owner|"
    r"attn|attention|spoke with|speaking with|汇款人是|收款人是?|付款人是?|户名|持卡人|姓名|联系人)"
    r"[ \t]*[:：,.\-=!]*[ \t]*(?:\n[ \t]*)?$")
_TITLE = re.compile(r"(?<![A-Za-z])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Aunt|Auntie|Uncle|Grandma|Grandpa|Cousin)\.?[ \t]*$")
_LOWER_NAME = re.compile(r"(?i:my name is|my name's|name\s*:|i am called)\s+(?P<first>[a-z]+)(?:[ \t]+(?P<last>[a-z]+))?")
_WEAK_CUE = re.compile(
    r"(?i:\b(?:from|to|by|cc|agent|officer|manager|advisor|adviser|colleague|customer|client|applicant|borrower|"
    r"guarantor|husband|wife|son|daughter|mother|father|mum|mom|dad|brother|sister|partner|friend|landlord|tenant|"
    r"teller|clerk|cashier|banker|owner|member|holder|caller|"
    r"paid|pay|sent|send|owe|transferred|wired|for|with|and|it['’]s)|客户|经理|同事|朋友|叫|是|给|和|跟)"
    r"[ \t]*[:：,.\-]?[ \t]*$")
_ROLE_WORDS = frozenset("customer client applicant borrower guarantor payee beneficiary recipient remitter cardholder "
                        "agent officer manager advisor adviser teller clerk caller member sir madam team".split())
_LABEL_AFTER = re.compile(r"[ \t]*(?:[a-z]+[ \t]*){0,2}[:=：]")
_SPLIT = re.compile(r"[ \t,]+")
_ALL_CAPS_STOP = frozenset("ID IBAN SWIFT BIC ATM PIN OTP USD GBP EUR RMB CNY HKD VIP APP SMS DOB NI SSN PO OK UK US "
                           "HK PRC EU CC REF NO TEL FAX".split())


def _tokens(run: str, base: int) -> list[tuple[int, int, str]]:
    return [(base + m.start(), base + m.end(), m.group()) for m in _TOKEN.finditer(run)]


def _is_name_word(word: str) -> bool:
    return word[:1].isupper() and (len(word) >= 2 or word.endswith(".")) and word.upper() not in _ALL_CAPS_STOP


def _title_shaped(word: str) -> bool:
    """Capitalized like a name: ``Okafor``, ``O'Sullivan``, ``MacLeod``, ``Goldberg-Reyes``, ``NOWAK``."""
    return word.isupper() or _NAME_SHAPE.fullmatch(word) is not None


_NAME_SHAPE = re.compile(r"(?:Mc|Mac|Fitz|O['’]|D['’])?[A-Z\u00c0-\u024f][^\W\dA-Z_]+(?:-[A-Z\u00c0-\u024f][^\W\dA-Z_]+)?")


def _name_groups(work: str, m: re.Match[str]) -> list[list[tuple[int, int, str]]]:
    """The groups of consecutive name tokens (capitalized words, particles, initials) in a run.

    A possessive (``Rosa's``) ends its group; an everyday word that is also a given name
    (``Grace``) starts one only when a known surname follows it (``Grace Okafor``).
    """
    groups: list[list[tuple[int, int, str]]] = [[]]
    pending = False  # the last group holds only an everyday-word given name
    for s, e, word in _tokens(m.group(), m.start()):
        possessive = re.search(r"['’]s$", word) is not None and _is_name_word(word[:-2])
        if possessive:
            word, e = word[:-2], e - 2
        low = fold(word)
        if pending and not (_is_name_word(word) and low in LAST_NAMES and low not in EVERYDAY_WORDS):
            groups[-1] = []
        pending = False
        if _PARTICLE.fullmatch(word) and groups[-1]:
            groups[-1].append((s, e, word))
            continue
        contraction = re.search(r"['’](?:m|s|d|ll|ve|re|t)$", low)  # I'm, it's, we'd: no name
        if not _surname_after_given(groups[-1], word) and (
                contraction or low in _ROLE_WORDS or _TITLE.fullmatch(word) or not _is_name_word(word) or low in COUNTRY_WORDS
                or low in COMMON_WORDS and low not in ("lee", "li", "ma", "ho", "an", "bo")):
            groups.append([])
            if (low in COMMON_WORDS or low in COUNTRY_WORDS) and low in FIRST_NAMES and _NAME_SHAPE.fullmatch(word):
                groups[-1].append((s, e, word))  # Grace, Chad: a name only before a surname
                pending = True
            continue
        groups[-1].append((s, e, word))
        if possessive:
            groups.append([])
    if pending:
        groups[-1] = []
    for group in groups:
        while group and _PARTICLE.fullmatch(group[-1][2]):
            group.pop()
    return [g for g in groups if g]


_PARTICLE = re.compile(rf"(?i:{_PARTICLES})")


def _surname_after_given(group: list[tuple[int, int, str]], word: str) -> bool:
    """A capitalized known surname that is also an everyday or country word, right after a known given name."""
    if not group or not word[:1].isupper() or word.isupper() or fold(word) not in LAST_NAMES:
        return False
    given = fold(group[-1][2])
    return not group[-1][2].isupper() and given in FIRST_NAMES and given not in COMMON_WORDS


def _known(word: str) -> bool:
    low = fold(word).rstrip(".")
    return low in FIRST_NAMES or low in LAST_NAMES


# Endings of English derived words (Accordingly, Payments, Yesterdays), which unlisted names rarely have.
_ENGLISH_ENDING = re.compile(r"(?:ly|ness|tion|sion|ment|ing|ings|ed|ful|less|able|ible|ous|ive|ity|ism|ize|ise|ship|[^s]s)$")


def _unlisted(words: list[str]) -> bool:
    """Name-shaped words that are no everyday English word, English-derived word nor place: a name Faker lacks."""
    names = [fold(w) for w in words if not _PARTICLE.fullmatch(w)]
    return bool(names) and " ".join(names) not in PLACE_NAMES and len(set(names)) == len(names) and all(
        _title_shaped(w) and (w[1:].islower() or "'" in w or "-" in w or w[:2] in ("Mc", "Ma"))
        for w in words if not _PARTICLE.fullmatch(w)) and not any(
        n in EVERYDAY_WORDS or n in COUNTRY_WORDS or _ENGLISH_ENDING.search(n) or len(n) < 3 for n in names)


def _accept(work: str, tokens: list[tuple[int, int, str]]) -> bool:
    words = [w for _, _, w in tokens if not w.endswith(".")]
    if not words:
        return False
    before = max(0, tokens[0][0] - 24), tokens[0][0]
    line_start = not work[work.rfind("\n", 0, tokens[0][0]) + 1:tokens[0][0]].strip()
    if "'" in words[0][:2] or "’" in words[0][:2] or line_start and _LABEL_AFTER.match(work, tokens[-1][1]):
        return False  # I'm, I'd; Given names: (a form's next label, not a value)
    if _TITLE.search(work, *before):
        return True
    if _STRONG_CUE.search(work, *before):  # name: Hiroshi Yamamoto, Thanks Sipho, Regards, Tashi Norbu
        return any(_known(w) for w in words) or (len(words) <= 3 and _unlisted(words) and not words[0].isupper())
    if " ".join(fold(w) for w in words) in PLACE_NAMES or len(words) > 1 and len(set(words)) == 1:
        return False  # Hong Kong, Bora Bora
    if _WEAK_CUE.search(work, *before) and any(fold(w) in FIRST_NAMES and not w.isupper() for w in words):
        return True
    if len(tokens[0][2]) == 2 and tokens[0][2].endswith(".") and len(words) <= 2 and _unlisted(words):
        return True  # J. Whitfield: an initial before an unlisted surname
    if len(words) < 2 or all(w.isupper() for w in words):
        return False  # ALL-CAPS without a cue is a merchant descriptor (CON EDISON), not a form's name field
    caps = [w for w in words if w[0].isupper()]
    if any(fold(w) in FIRST_NAMES for w in caps) or all(_known(w) for w in caps):
        return True
    return len(words) <= 3 and len(words[-1]) >= 4 and fold(words[-1]) in LAST_NAMES and _unlisted(words)  # Oluwaseun Adeyemi


def with_titles(work: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Each name span widened over the title right before it (``Mr. Lam``, ``Aunt Rosa``): the title is the name's."""
    out = []
    for s, e, kind in spans:
        title = _TITLE.search(work, max(0, s - 12), s)
        out.append((title.start() if title else s, e, kind))
    return out


_PAIR = re.compile(r"(?<![\w'’])(?=([A-Z][a-z'’-]+) ([A-Z][a-z'’-]+)(?![\w'’]))")  # overlapping: Dear Jordan Young


def detect_en_name(work: str) -> list[tuple[int, int, str]]:
    spans = []
    for m in _RUN.finditer(work):
        for tokens in _name_groups(work, m):
            if _accept(work, tokens):
                spans.append((tokens[0][0], tokens[-1][1], "NAME"))
    for m in _LOWER_NAME.finditer(work):  # "my name is kevin lee": lower case, a known first name
        if fold(m.group("first")) in FIRST_NAMES:
            last = fold(m.group("last") or "")
            end = m.end("last") if last and (last in LAST_NAMES or last in FIRST_NAMES) else m.end("first")
            spans.append((m.start("first"), end, "NAME"))
    for m in _PAIR.finditer(work):  # Dear Mark Wood, I'm Jordan Young: everyday or country words after a strong cue
        if fold(m[1]) in FIRST_NAMES and fold(m[2]) in LAST_NAMES and _STRONG_CUE.search(work, max(0, m.start() - 24), m.start()):
            spans.append((m.start(), m.end(2), "NAME"))
    found = {w for s, e, _ in spans for w in _SPLIT.split(work[s:e]) if len(w) >= 3 and w[0].isupper()}
    for word in found:
        for m in re.finditer(rf"(?<![\w]){re.escape(word)}(?![\w])", work):
            spans.append((*m.span(), "NAME"))
    return spans
