"""Detectors for numeric and format identifiers: EMAIL, ID_CARD, BANK_CARD, PHONE.

Format regexes confirmed by checksums (MOD 11-2 ID check character, Luhn,
IBAN mod 97) or by a nearby keyword.  Each ``detect_*`` function takes the
engine's normalized working text and returns ``(start, end)`` spans; the
order they run in and the masking live in :mod:`common.privacy.desensitize`.
"""

from __future__ import annotations

import re

from common.privacy.pii import cn_id_structure_plausible, cn_id_valid, iban_valid, luhn_valid
from common.privacy.spans import by_priority

# --------------------------------------------------------------------------- email
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])")

# --------------------------------------------------------------------------- numbers
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])\d{6}[ -]?\d{4}[ -]?\d{4}[ -]?\d{3}[0-9Xx](?![0-9A-Za-z])")
_DIGIT_CHAIN = re.compile(r"(?<![0-9A-Za-z+])\d+(?:[ -]\d+)*(?![0-9A-Za-z])")
_CARD_KEYWORD = re.compile(r"(?:卡号|银行卡|信用卡|储蓄卡|借记卡|账号|帐号|账户|(?i:card|account))[^\d\n\x00]{0,10}$")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_ACCOUNT_NUMBER = re.compile(
    r"(?:账号|帐号|账户号码?|(?i:\baccount(?:\s+(?:number|no\.?|#))?|\bacct\.?(?:\s*(?:no\.?|#))?))[^\d\n\x00]{0,12}?"
    r"(?<![\d$£€¥￥])(?P<number>\d{6,12})(?![\d.,]|\s*(?:元|块|万|美元|USD|RMB|GBP|EUR|dollars|pounds))")
_UK_ACCOUNT = re.compile(r"(?<![\d-])\d{2}-\d{2}-\d{2}[ ,/]+\d{8}(?!\d)")  # sort code + account number
_CARD_MAX_GROUPS = 5  # 4-4-4-4-3 is the longest grouping written
_CARD_FIRST_DIGITS = "234569"  # network identifiers; 9 = PRC domestic cards (9558...)

_CN_MOBILE = re.compile(
    r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?|\(\+?86\)[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])")
_INTL = re.compile(r"(?<![0-9A-Za-z])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![0-9])")
_NANP = re.compile(r"(?<![0-9A-Za-z])(?:\(\d{3}\)[ ]?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![0-9-])")
_TRUNK = re.compile(r"(?<![0-9A-Za-z])(?:\(0\d{1,4}\)|0\d{2,4})[ -]?\d{3,4}[ -]?\d{3,4}(?![0-9])")
_PHONE_KEYWORD = re.compile(
    r"(?:电话|手机(?!银行)|手机号码?|联系方式|致电|拨打|回电|"
    r"\b(?i:phone|mobile|cell|cellphone|tel|telephone|whatsapp|call me|reach me)\b)[^\d\n\x00+。！？]{0,12}$")
_LOOSE_NUMBER = re.compile(r"(?<![$£€¥￥\d.,])\+?\(?\d[\d ()-]{5,20}\d(?![\d,:/]|\.\d)(?!\s*(?:元|块|万|千|百|美元|USD|RMB))")


def detect_email(work: str) -> list[tuple[int, int]]:
    return [m.span() for m in _EMAIL.finditer(work)]


def detect_id_card(work: str) -> list[tuple[int, int]]:
    spans = []
    for m in _ID_CARD.finditer(work):
        raw = re.sub(r"[ -]", "", m.group())
        if cn_id_valid(raw) or (cn_id_structure_plausible(raw) and not _card_like(raw)):
            spans.append(m.span())
    return spans


def _card_like(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in _CARD_FIRST_DIGITS and luhn_valid(digits)


def _card_grouping_ok(lengths: list[int]) -> bool:
    if len(lengths) == 1:
        return True
    if lengths == [4, 6, 5] or (lengths[0] == 6 and len(lengths) == 2):
        return True
    return all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4


def detect_bank_card(work: str) -> list[tuple[int, int]]:
    accounts = [m.span() for m in _IBAN.finditer(work) if iban_valid(m.group())]
    accounts += [m.span() for m in _UK_ACCOUNT.finditer(work)]
    accounts += [m.span("number") for m in _ACCOUNT_NUMBER.finditer(work)]
    return by_priority(accounts, _detect_card_numbers(work))


def _detect_card_numbers(work: str) -> list[tuple[int, int]]:
    spans = []
    for chain in _DIGIT_CHAIN.finditer(work):
        groups = [(g.start() + chain.start(), g.end() + chain.start()) for g in re.finditer(r"\d+", chain.group())]
        keyword = _CARD_KEYWORD.search(work, max(0, chain.start() - 16), chain.start()) is not None
        i = 0
        while i < len(groups):
            found = _longest_card(work, groups, i, keyword)
            if found is None:
                i += 1
                continue
            spans.append((groups[i][0], groups[found][1]))
            i = found + 1
    return spans


def _longest_card(work: str, groups: list[tuple[int, int]], i: int, keyword: bool) -> int | None:
    """Index of the last group of the longest card number starting at group ``i``, if any."""
    for j in range(min(len(groups) - 1, i + _CARD_MAX_GROUPS - 1), i - 1, -1):
        seps = {work[groups[k][1]] for k in range(i, j)}
        lengths = [e - s for s, e in groups[i:j + 1]]
        digits = "".join(work[s:e] for s, e in groups[i:j + 1])
        if len(seps) > 1 or not 13 <= len(digits) <= 19 or not _card_grouping_ok(lengths):
            continue
        grouped_by_four = len(lengths) >= 4 and lengths[:4] == [4, 4, 4, 4] and digits[0] in _CARD_FIRST_DIGITS
        if _card_like(digits) or grouped_by_four or (keyword and i == 0):  # 4-4-4-4 is card-shaped even if mistyped
            return j
    return None


def _digit_count(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def detect_phone(work: str) -> list[tuple[int, int]]:
    trunk = [m.span() for m in _TRUNK.finditer(work)
             if (9 if "(" in m.group() else 10) <= _digit_count(m.group()) <= 12 and re.search(r"[ )-]", m.group())]
    loose = [_strip_span(work, *m.span()) for m in _LOOSE_NUMBER.finditer(work)
             if 7 <= _digit_count(m.group()) <= 15
             and _PHONE_KEYWORD.search(work, max(0, m.start() - 24), m.start())]
    return by_priority([m.span() for m in _CN_MOBILE.finditer(work)],
                        [_trim_intl(work, m) for m in _INTL.finditer(work)],
                        [m.span() for m in _NANP.finditer(work)], trunk, loose)


def _trim_intl(work: str, m: re.Match[str]) -> tuple[int, int]:
    """Drop trailing groups of a +CC match until it has at most 15 digits."""
    start, end = m.span()
    while _digit_count(work[start:end]) > 15:
        cut = max(work.rfind(c, start, end) for c in " .-")
        if cut <= start:
            break
        end = cut
    return _strip_span(work, start, end)


def _strip_span(work: str, start: int, end: int) -> tuple[int, int]:
    while end > start and work[end - 1] in " -(":
        end -= 1
    return start, end

