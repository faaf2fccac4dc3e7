"""Detector for ADDRESS: Chinese and English postal addresses.

Chinese: place words ending in an address unit (省/市/区/路...) followed by a
house number (号/栋/单元/室), trimmed to a known place name
(:data:`common.privacy.pii.CN_PLACE_NAMES`) or past a lead-in word.  English:
``number + Capitalised words + street type`` with unit, city, state/ZIP or
UK postcode.  Also holds the character classes the name detector
(:mod:`common.privacy.detect_names`) shares: ``UPPER_CHARS``/``LOWER_CHARS`` (Latin-1 letters) and
``ZH_STOP`` (Chinese function words that end a word run).
"""

from __future__ import annotations

import re

from common.privacy.pii import CN_PLACE_NAMES
from common.privacy.spans import BLOCK

# --------------------------------------------------------------------------- addresses
ZH_STOP = "的了是在我你他她与及到住从把给请向寄搬往去来为于想要这那址"
_ZH_FILL_CHAR = re.compile(rf"[^\s\d{BLOCK}，。,.!！?？、；;：:“”\"'（）()【】\[\]{ZH_STOP}]")
_ZH_UNIT_END = re.compile(r"(?:省|市|州|区|县|旗|镇|乡|街道|村|大道|大街|路|街|道|段|巷|弄|胡同|里|小区|花园|公寓|大厦|"
                          r"广场|新村|苑|园|城|中心)$")
_ZH_NUMBER_UNIT = r"(?:-\d+)?(?:号楼|号院|号|弄|栋|幢|座|单元|层|楼|室)"
_ZH_HOUSE_NUMBER = re.compile(rf"(?:\d+{_ZH_NUMBER_UNIT})+")
# Continuation after a house number: building name, 一座 / 3号楼 / 2801室, or a bare room number (502).
_ZH_ADDRESS_MORE = re.compile(
    rf"(?:{_ZH_FILL_CHAR.pattern}{{0,10}}?(?:\d+|[一二三四五六七八九十两]+){_ZH_NUMBER_UNIT})+"
    r"|\d{1,5}(?![\d年月日号元块万%]|[.,:]\d)")
_ZH_LEAD_IN = ("改成", "改为", "换成", "变更为", "更新为", "更改为", "寄往", "送到", "发到", "搬到", "位于", "家")
_ZH_MAX_HEAD = 30
_ZH_PLACE_AT = re.compile(rf"(?:{'|'.join(CN_PLACE_NAMES)})(?=省|市|自治区|特别行政区)")

UPPER_CHARS, LOWER_CHARS = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"  # Latin-1 letters, so Müller and Zoë count as words
_EN_WORD = rf"(?:[{UPPER_CHARS}][{UPPER_CHARS}{LOWER_CHARS}'’.-]*|\d+(?:st|nd|rd|th))"
_EN_CITY_WORD = rf"[{UPPER_CHARS}][{LOWER_CHARS}]+(?:[-'][{UPPER_CHARS}{LOWER_CHARS}]+)*"
_EN_STREET = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Parkway|Pkwy|Drive|Dr|Way|Court|Ct|"
              r"Place|Pl|Terrace|Close|Crescent|Square|Sq|Highway|Hwy|Row|Gardens|Walk|Mews|Gate|Grove|Hill|Circle|"
              r"Plaza|Trail|Quay|Wharf|Embankment)")
_EN_ADDRESS = re.compile(
    rf"(?<![\w$£€.,:/-])\d{{1,5}}[A-Za-z]?\s+(?:{_EN_WORD}\s+){{0,4}}?{_EN_STREET}\b\.?"
    r"(?:\s+(?:North|South|East|West|NE|NW|SE|SW|N|S|E|W)\b)?"
    r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|#)\.?\s*#?[A-Za-z0-9-]+)?"
    rf"(?:,\s*{_EN_CITY_WORD}(?:\s+{_EN_CITY_WORD}){{0,3}}(?=[,.;!?)\s]|$))?"
    r"(?:,?\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b)?"
    r"(?:,?\s*[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b)?")


def _detect_zh_address(work: str) -> list[tuple[int, int]]:
    """A house number (100号1201室) preceded by a run of place words ending in an address unit."""
    spans: list[tuple[int, int]] = []
    for number in _ZH_HOUSE_NUMBER.finditer(work):
        if spans and number.start() < spans[-1][1]:
            continue  # already inside the previous address
        start = number.start()
        while start > 0 and number.start() - start < _ZH_MAX_HEAD and _ZH_FILL_CHAR.match(work[start - 1]):
            start -= 1
        head = work[start:number.start()]
        if not _ZH_UNIT_END.search(head):
            continue
        starts = [m.start() for m in _ZH_PLACE_AT.finditer(head)]
        if starts:
            start += min(starts)
        else:
            while (lead := next((p for p in _ZH_LEAD_IN if work.startswith(p, start)), None)) and \
                    start + len(lead) < number.start():
                start += len(lead)
        end = number.end()
        while more := _ZH_ADDRESS_MORE.match(work, end):
            end = more.end()
            if not more.group():
                break
        spans.append((start, end))
    return spans


def detect_address(work: str) -> list[tuple[int, int, str]]:
    return [(s, e, "ADDRESS") for s, e in _detect_zh_address(work) + [m.span() for m in _EN_ADDRESS.finditer(work)]]

