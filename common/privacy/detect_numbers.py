"""Detectors for numeric and format identifiers: EMAIL, ID_CARD, IBAN, ACCOUNT, BANK_CARD, PHONE.

Check digits and formats come from maintained libraries: :mod:`stdnum`
(GB 11643 resident IDs, Luhn), :mod:`schwifty` (IBAN country formats and
mod 97) and :mod:`phonenumbers` (every region's phone formats and validity).
What no library provides stays here: where a value may start and end in
running text, digit groupings (6-8-4, 4-4-4-4-2, 4-4-4-4-3), old 15-digit
resident IDs (region + ``YYMMDD`` + 3 digits) and the cue words that make a
bare number an account or phone number.  Each ``detect_*`` function takes the
engine's normalized working text (:mod:`common.privacy.normalize`) and
returns ``(start, end, type)`` spans.
"""

from __future__ import annotations

import datetime as dt
import re

import phonenumbers
from schwifty import IBAN
from stdnum import luhn
from stdnum.cn import ric

from common.privacy.pii import CN_PROVINCE_CODES
from common.privacy.spans import by_priority

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])")
_SPOKEN_EMAIL = re.compile(  # r dot hallberg at gmail dot com / li.na (at) qq (dot) com
    r"(?i)\b[a-z0-9][a-z0-9._-]*(?:\s+(?:dot|underscore)\s+[a-z0-9_-]+)*\s*(?:\s(?:at)\s|[(\[]at[)\]])\s*"
    r"[a-z0-9-]+(?:\s*(?:\s(?:dot)\s|[(\[]dot[)\]]|\.)\s*[a-z0-9-]+)*\s*(?:\s(?:dot)\s|[(\[]dot[)\]]|\.)\s*"
    r"(?:com|net|org|cn|edu|gov|co|uk|de|fr|hk|io|me)\b")

_DIGIT_CHAIN = re.compile(r"(?<![0-9A-Za-z+_])\d+(?:[ -]\d+)*(?:[ -]?[Xx])?(?![0-9A-Za-z_])")
_ID_CHAIN = re.compile(r"(?<![0-9A-Za-z+_])\d+(?:(?:[ -]|[ \t]*\n[ \t]*)\d+)*(?:[ -]?[Xx])?(?![0-9A-Za-z_])")
_CARD_KEYWORD = re.compile(r"(?:卡号|银行卡|信用卡|储蓄卡|借记卡|账号|帐号|账户|(?i:card|account))[^\d\n\x00]{0,10}$")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,8}){2,9}")
_ACCOUNT_CUE = re.compile(
    r"(?:账号|帐号|账户号码?|账户|户号|结算户|对公户|(?i:(?<![A-Za-z])account(?:\s+(?:number|no\.?|#))?|(?<![A-Za-z])acct\.?(?:\s*(?:no\.?|#))?|"
    r"(?<![A-Za-z])a/c(?:\s*(?:no\.?|#))?|sort code and account))"
    r"[^\d\n\x00]{0,16}?(?<![\d$£€¥])(?P<number>\d[\d -]{4,26}\d)(?!\d)(?![.,]\d|\s*(?:元|块|万|美元|USD|RMB|GBP|EUR|dollars|pounds))")
_DATE_LIKE = re.compile(r"(?:19|20)\d\d[-/.]\d{1,2}[-/.]\d{1,2}")
_UK_ACCOUNT = re.compile(r"(?<![\d-])\d{2}-\d{2}-\d{2}[ ,/]+\d{8}(?!\d)")  # sort code + account number
_CARD_MAX_GROUPS = 5
# How resident IDs are grouped when written or read out: region, birth date (whole or y/m/d), sequence + check.
_ID_GROUPINGS = frozenset({(6, 8, 4), (6, 4, 2, 2, 4), (6, 4, 4, 4), (6, 8, 3, 1), (6, 6, 3)})
_ID_CUE = re.compile(r"(?:身份证|证件号|公民身份|(?i:\bID\s*(?:card|no\.?|number)?|identity card|resident id))[^\d\n]{0,8}$")
_CARD_FIRST_DIGITS = "234569"  # network identifiers; 9 = PRC domestic cards (9558...)

_CN_MOBILE = re.compile(
    r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?|\(\+?86\)[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])")
_INTL = re.compile(r"(?<![0-9A-Za-z])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?![0-9])")
_NANP = re.compile(r"(?<![0-9A-Za-z])(?:\(\d{3}\)[ ]?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![0-9-])")
_TRUNK = re.compile(r"(?<![0-9A-Za-z])(?:\(0\d{1,4}\)|0\d{2,4})[ -]?\d{3,4}[ -]?\d{3,4}(?![0-9])")
_PHONE_KEYWORD = re.compile(
    r"(?:电话|手机(?!银行)|手机号码?|联系方式|座机|致电|拨打|回电|"
    r"(?<![A-Za-z])(?i:phone|mobile|cell|cellphone|tel|telephone|whatsapp|call me|reach me|call back on)(?![A-Za-z]))[^\d\n\x00+。！？]{0,12}$")
_LOOSE_NUMBER = re.compile(r"(?<![$£€¥￥\d.,A-Za-z])\+?\(?\d[\d ()-]{5,20}\d(?![\d,:/A-Za-z]|\.\d)(?!\s*(?:元|块|万|千|百|美元|USD|RMB))")
_SEVEN_DIGITS = re.compile(r"\d(?:[ ()+.-]*\d){6}")


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def detect_email(work: str) -> list[tuple[int, int, str]]:
    spans = [(*m.span(), "EMAIL") for m in _EMAIL.finditer(work)]
    return by_priority(spans, [(*m.span(), "EMAIL") for m in _SPOKEN_EMAIL.finditer(work)])


def old_id_valid(id15: str) -> bool:
    """An old 15-digit resident ID: a known province code and a real ``YYMMDD`` birth date in the 1900s."""
    if len(id15) != 15 or not id15.isdigit() or id15[:2] not in CN_PROVINCE_CODES:
        return False
    try:
        dt.date(1900 + int(id15[6:8]), int(id15[8:10]), int(id15[10:12]))
    except ValueError:
        return False
    return True


def _id_like(raw: str, card_possible: bool = False) -> bool:
    """A resident ID: a valid check digit, or a province code and a birth date (a mistyped or misread check digit
    still identifies); a value that also passes Luhn counts only when ``card_possible`` (grouped or cued as an ID)."""
    raw = raw.upper()
    if len(raw) == 18:
        return ric.is_valid(raw) or (raw[:2] in CN_PROVINCE_CODES and _plausible_birth(raw[6:14])
                                     and (card_possible or not _card_like(raw)))
    return len(raw) == 15 and old_id_valid(raw) and (card_possible or not _card_like(raw))


def _plausible_birth(yyyymmdd: str) -> bool:
    try:
        born = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return 1900 <= born.year and born <= dt.date.today()


def detect_id_card(work: str) -> list[tuple[int, int, str]]:
    """18-digit (17 + check) and 15-digit resident IDs, contiguous or in any digit grouping."""
    spans = []
    for m in _ID_CHAIN.finditer(work):
        raw = re.sub(r"\s|-", "", m.group())
        if len(raw) not in (15, 18) or not raw[:-1].isdigit():
            continue
        groups = [len(g) for g in re.findall(r"[0-9Xx]+", m.group())]
        id_shaped = tuple(groups) in _ID_GROUPINGS or bool(_ID_CUE.search(work[max(0, m.start() - 16):m.start()]))
        if _id_like(raw) or (id_shaped and _id_like(raw, card_possible=True)):
            spans.append((*m.span(), "ID_CARD"))
    return spans


def _card_like(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in _CARD_FIRST_DIGITS and luhn.is_valid(digits)


def _card_shaped(value: str) -> bool:
    """13-19 digits, contiguous or grouped by spaces: a card number after an account cue (收款账号：6214...)."""
    return 13 <= len(_digits(value)) <= 19 and "-" not in value


def _card_grouping_ok(lengths: list[int]) -> bool:
    if len(lengths) == 1:
        return True
    if lengths == [4, 6, 5] or (lengths[0] == 6 and len(lengths) == 2):
        return True
    return all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4


def detect_iban(work: str) -> list[tuple[int, int, str]]:
    """IBANs (schwifty checks country length and mod 97); trailing groups are dropped until one validates."""
    spans = []
    for m in _IBAN.finditer(work):
        groups = list(re.finditer(r"[A-Z0-9]+", m.group()))
        for k in range(len(groups), 0, -1):
            end = m.start() + groups[k - 1].end()
            if IBAN(work[m.start():end], allow_invalid=True).is_valid:
                spans.append((m.start(), end, "IBAN"))
                break
    return spans


def detect_account(work: str) -> list[tuple[int, int, str]]:
    spans = [(*m.span(), "ACCOUNT") for m in _UK_ACCOUNT.finditer(work)]
    for m in _ACCOUNT_CUE.finditer(work):
        s, e = m.span("number")
        while e > s and work[e - 1] in " -":
            e -= 1
        if 6 <= len(_digits(work[s:e])) <= 24 and not _DATE_LIKE.match(work, s) and not _card_shaped(work[s:e]):
            spans.append((s, e, "ACCOUNT"))
    return spans


def detect_bank_card(work: str) -> list[tuple[int, int, str]]:
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
            spans.append((groups[i][0], groups[found][1], "BANK_CARD"))
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


def detect_phone(work: str) -> list[tuple[int, int, str]]:
    if not _SEVEN_DIGITS.search(work):
        return []
    trunk = [m.span() for m in _TRUNK.finditer(work)
             if (9 if "(" in m.group() else 10) <= len(_digits(m.group())) <= 12 and re.search(r"[ )-]", m.group())]
    loose = [_strip_span(work, *m.span()) for m in _LOOSE_NUMBER.finditer(work)
             if 7 <= len(_digits(m.group())) <= 15
             and _PHONE_KEYWORD.search(work, max(0, m.start() - 24), m.start())]
    intl = [_trim_intl(work, m) for m in _INTL.finditer(work)]
    library = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(work, "CN", leniency=phonenumbers.Leniency.VALID)
               if _phone_shaped(work, m.start, m.end)]
    spans = by_priority([m.span() for m in _CN_MOBILE.finditer(work)], intl, library,
                        [m.span() for m in _NANP.finditer(work)], trunk, loose)
    return [(s, e, "PHONE") for s, e in spans]


def _phone_shaped(work: str, start: int, end: int) -> bool:
    """A library match that reads as a phone: not the tail of a code (ORD-93919...), and a bare digit run
    (2882304215) only with a trunk 0, a mobile 1 or a phone cue before it."""
    if start >= 2 and work[start - 1] == "-" and work[start - 2].isalnum():
        return False
    value = work[start:end]
    if not value.isdigit() or value[0] in "01":
        return True
    return _PHONE_KEYWORD.search(work, max(0, start - 24), start) is not None


def _trim_intl(work: str, m: re.Match[str]) -> tuple[int, int]:
    """Drop trailing groups of a +CC match until it has at most 15 digits."""
    start, end = m.span()
    while len(_digits(work[start:end])) > 15:
        cut = max(work.rfind(c, start, end) for c in " .-")
        if cut <= start:
            break
        end = cut
    return _strip_span(work, start, end)


def _strip_span(work: str, start: int, end: int) -> tuple[int, int]:
    while end > start and work[end - 1] in " -(":
        end -= 1
    return start, end
