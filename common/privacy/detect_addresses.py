"""Detector for ADDRESS: Chinese and English postal addresses.

Chinese: place words ending in an address unit (省/市/区/路...) followed by a
house number (号/栋/单元/室, 三组17号, 12-2-301), trimmed to a known place name
(:data:`common.privacy.pii.CN_PLACE_NAMES`) or past a lead-in word, then
continued over building, phase, block, unit and room parts (华府天地2期11号楼2单元1801室,
第1幢2203室, 3楼H1-32068) and a delivery point (南门丰巢柜, 3号楼下驿站); a province
before the city stays in (新疆乌鲁木齐市); a building/unit/room chain (5号楼2单元101) is an address
on its own.  Traditional characters (區, 號, 樓) read as simplified and a line
break inside an address (OCR forms) is crossed.  Latin script:
:mod:`common.privacy.detect_addresses_en`.  Also holds ``ZH_STOP`` (Chinese
function words that end a word run), which the name detector
(:mod:`common.privacy.detect_names`) shares.
"""

from __future__ import annotations

import re

from common.privacy.detect_addresses_en import detect_en_address
from common.privacy.pii import CN_PLACE_NAMES
from common.privacy.spans import BLOCK

# --------------------------------------------------------------------------- addresses
ZH_STOP = "的了是在我你他她与及到住从把给请向寄搬往去来为于想要这那址"
_ZH_FILL_CHAR = re.compile(rf"[^\s\d{BLOCK}，。,.!！?？、；;：:“”\"'（）()【】\[\]{ZH_STOP}]")
_ZH_UNIT_END = re.compile(r"(?:省|市|州|区|县|旗|镇|乡|街道|村|大道|大街|路|街|道|段|巷|弄|胡同|里|小区|花园|公寓|大厦|"
                          r"广场|新村|苑|园|城|中心|组|队|社|屯|庄)$")
_ZH_NUMBER_UNIT = r"(?:-\d+)?(?:号楼|号院|号|弄|栋|幢|座|单元|层|楼|室|期)(?:之\d+)?"
_ZH_HOUSE_NUMBER = re.compile(rf"(?:\d+{_ZH_NUMBER_UNIT})+|\d+-\d+-\d+(?![\d-])")
# A building + unit (+ room) chain needs no street before it: 5号楼2单元101, 3栋1单元502室.
_ZH_BUILDING_CHAIN = re.compile(r"(?<!\d)\d+(?:号楼|栋|幢|座)\d+单元\d{2,5}(?:室|房)?")
_LINE_BREAK = "\ue000"  # a line break inside a Chinese address (OCR forms) reads as this fill character
_ZH_TRADITIONAL = str.maketrans("區號樓縣鎮鄉廈園層單巷門臺\n", "区号楼县镇乡厦园层单巷门台" + _LINE_BREAK)
# A delivery point after the address: a gate (南门, 2号门) and/or a parcel locker or station (丰巢柜, 楼下驿站).
_ZH_GATE = r"(?:[东南西北正侧后前]|\d{1,2}号)门(?:口|岗)?"
_ZH_DROP = r"(?:柜(?!台|员)|驿站|快递点|自提点|代收点|收发室|门卫室|传达室|门卫|服务站)"
# Continuation after a house number: building name, 一座 / 3号楼 / 2801室, or a bare room number (502).
_ZH_ADDRESS_MORE = re.compile(
    rf"(?:{_ZH_FILL_CHAR.pattern}{{0,10}}?第?(?:\d+|[A-Z]|[一二三四五六七八九十两]+){_ZH_NUMBER_UNIT})+"
    r"|[A-Z]?\d{1,5}(?:-\d{1,6})?(?![\d年月日号元块万%]|[.,:]\d)"
    rf"|{_ZH_FILL_CHAR.pattern}{{0,12}}?(?:{_ZH_GATE}(?:{_ZH_FILL_CHAR.pattern}{{0,6}}?{_ZH_DROP})?|{_ZH_DROP})")
_ZH_LEAD_IN = ("改成", "改为", "换成", "变更为", "更新为", "更改为", "寄往", "送到", "发到", "搬到", "位于", "家")
_ZH_MAX_HEAD = 30
_ZH_PLACE_AT = re.compile(rf"(?:{'|'.join(CN_PLACE_NAMES)})(?=省|市|自治区|特别行政区)")
# A province named before the city, its 省/自治区 written or not: 新疆乌鲁木齐市, 新疆维吾尔自治区乌鲁木齐市.
_ZH_PLACE_BEFORE = re.compile(rf"(?:{'|'.join(CN_PLACE_NAMES)})(?:省|(?:维吾尔|壮族|回族)?自治区|特别行政区)?$")

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
        if not _ZH_UNIT_END.search(head.rstrip(_LINE_BREAK)):
            continue
        starts = [m.start() for m in _ZH_PLACE_AT.finditer(head)]
        if starts:
            head_start, start = start, start + min(starts)
            while before := _ZH_PLACE_BEFORE.search(work, head_start, start):
                start = before.start()
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
    zh = work.translate(_ZH_TRADITIONAL)  # same length: offsets hold
    chains = [m.span() for m in _ZH_BUILDING_CHAIN.finditer(zh)]
    return [(s, e, "ADDRESS") for s, e in _detect_zh_address(zh) + chains + detect_en_address(work)]

