"""Detectors for IP_ADDRESS, LICENSE_PLATE and DATE_OF_BIRTH.

* IP addresses: dotted IPv4 and colon-hex IPv6 candidates, confirmed by
  :mod:`ipaddress` (a version number such as ``1.2.3`` has too few parts);
* licence plates: PRC plates (province character + letter + five or six
  letters/digits, with or without ``·``), UK (``AB12 CDE``); other countries'
  plates only after a cue (:mod:`common.privacy.detect_ids`);
* dates of birth: a date only counts when a birth cue names it (DOB, born,
  date of birth, 出生日期, 生日, 生于, or 出生 right after it): the same date
  without a cue is a transaction date and must survive.  After a cue the
  whole date phrase up to the end of the clause is taken, so spoken forms
  (``Fourteenth of June, nineteen eighty-eight``) are covered too.
"""

from __future__ import annotations

import ipaddress
import re

from common.privacy.detect_ids import ANSWER_GAP

_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f])(?<![0-9A-Fa-f]:)(?!:[0-9A-Fa-f])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_CN_PLATE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领] ?[A-Z]{1,2}[·•・.\- ]?"
                       r"(?=[A-Z0-9]{5,6}(?![A-Za-z0-9]))[A-Z]*\d[A-Z0-9]*")
_UK_PLATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2} ?[A-Z]{3}(?![A-Za-z0-9])")

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
           r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DATE = (rf"(?:\d{{4}}\s*[-/.年]\s*\d{{1,2}}\s*[-/.月](?:\s*\d{{1,2}}\s*[日号]?)?|\d{{4}}年\d{{1,2}}月|\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d{{2,4}}|"
         rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\.?,?\s+\d{{4}}|{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|"
         rf"\d{{1,2}}\s*{_MONTHS}\s*\d{{4}}|\d(?: ?\d)?\s*{_MONTHS}\s*\d(?: ?\d){{3}}|\d{{8}})")  # last but one: spaced by OCR
_DOB_CUE = re.compile(
    r"(?:出生日期|出生年月日?|生日|生于|出生于|(?i:\bd\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on|\s+in)?))"
    r"[ \t:：是为=,(]*" + ANSWER_GAP + r"[\s:：]*", re.IGNORECASE)
_DATE_AT = re.compile(_DATE, re.IGNORECASE)
_SPOKEN_DATE = re.compile(rf"(?i)[^.;!?\n。；！？]{{0,48}}?(?:\b(?:nineteen|twenty|two thousand)[\w -]*"
                          rf"(?:,?\s*{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?)?|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?)")
_BORN_AFTER = re.compile(rf"(?P<date>{_DATE})(?:出生|生人|生)", re.IGNORECASE)


def detect_ip(work: str) -> list[tuple[int, int, str]]:
    spans = []
    for pattern in (_IPV4, _IPV6):
        for m in pattern.finditer(work):
            if m.group().count(":") >= 2 and not re.search(r"[0-9A-Fa-f]{2}", m.group()):
                continue  # 12:30:45 style or bare colons
            try:
                ipaddress.ip_address(m.group())
            except ValueError:
                continue
            spans.append((*m.span(), "IP_ADDRESS"))
    return spans


def detect_plate(work: str) -> list[tuple[int, int, str]]:
    return [(*m.span(), "LICENSE_PLATE") for p in (_CN_PLATE, _UK_PLATE) for m in p.finditer(work)]


def detect_birth_date(work: str) -> list[tuple[int, int, str]]:
    spans = [(*m.span("date"), "DATE_OF_BIRTH") for m in _BORN_AFTER.finditer(work)]
    for cue in _DOB_CUE.finditer(work):
        m = _DATE_AT.match(work, cue.end()) or _SPOKEN_DATE.match(work, cue.end())
        if m:
            spans.append((m.start(), m.end(), "DATE_OF_BIRTH"))
    return spans
