"""Detectors for EMPLOYER and LOCATION: who a person works for and where they are now.

* EMPLOYER: a Chinese organization name ending in a legal or institutional
  suffix (有限公司, 集团, 研究院 ...), cut at the word before it (在, 于, 现任, 单位
  ...); a Latin-script name ending in a legal suffix (Ltd, LLC, GmbH, B.V. ...);
  or a run of capitalized words after an employment cue (employer:, works at,
  employed by, job at, Company: ...).  Names containing 银行 (the bank itself)
  are left.
* LOCATION: GPS coordinates (two decimal degrees in range); a Chinese place
  phrase after a whereabouts cue (我在, 我到, 人在, 卡在, 称其在 ...) ending in a
  place word (门口, 大厅, 航站楼, 工地, ATM ...); an English place phrase after
  a whereabouts cue (I'm at, stuck at, meet me at, stolen at ...) made of
  capitalized words, numbers and a few place words, with gate/terminal/level
  parts after a comma.

The engine runs this before products are kept, so a brand inside a place
(``the Apple Store at ...``) is masked with its place; a span that is only a
kept product or brand (``I work for HSBC`` stays) is dropped here.
"""

from __future__ import annotations

import re

from common.privacy.keep import detect_keep

_CN_ORG = re.compile(r"[\u4e00-\u9fff（）()]{2,30}?(?:股份有限公司|有限责任公司|有限公司|集团公司|集团|研究院|研究所|"
                     r"事务所|设计院|医院|学校|大学|学院|分公司)")
_CN_ORG_CUT = re.compile(r".*(?:现任|任职于|就职于|供职于|受雇于|工作于|自述在|单位|公司名称|雇主|在|于|是|为|到|从|的|任)")
_CN_ORG_MORE = re.compile(r"(?:股份|集团)?有限(?:责任)?公司|分公司|研究院")
_CN_OR_BANK = re.compile(r"银行|保险公司|支付")

# One more word of a name: capitalized or a number, possibly after a connector (Bank of X, Smith & Sons).
_NEXT_WORD = r"[ -](?:(?:of|and|the|de|du|der|van|von|&)[ -])?(?:[A-Z][\w'’&.-]*|\d+[A-Za-z]*)"
_LEGAL = r"(?:Ltd\.?|Limited|LLC|L\.L\.C\.|Inc\.?|Corp\.?|GmbH|AG|AB|B\.V\.|N\.V\.|S\.A\.|SAS|PLC|plc|FZE|FZCO|Pty Ltd|Co\.,? Ltd\.?)"
_EN_ORG_NAME = rf"[A-Z][\w'’&.-]*(?:{_NEXT_WORD}){{0,6}}?(?: \([A-Z][a-z]+\))?"
_EN_LEGAL_ORG = re.compile(rf"(?<![A-Za-z0-9.]){_EN_ORG_NAME},? {_LEGAL}(?![A-Za-z0-9])")
_EN_EMPLOYER_CUE = re.compile(
    r"(?i:\bmy\s+employer\s+|\bemployer(?:\s+is|\s*[:：是,]|\s*,)|\bemployed\s+(?:at|by|with)|\bwork(?:s|ed|ing)?\s+(?:as\s+an?\s+\w+\s+)?(?:at|for)|"
    r"\bjob\s+at|\bcompany\s*[:：]|\bcompany\s+name\s*[:：]|\btravel\s+a\s+lot\s+for)\s*")
_EN_ORG_AFTER_CUE = re.compile(rf"[A-Z][\w'’&.-]*(?:{_NEXT_WORD}){{1,6}}(?: \([A-Z][a-z]+\))?(?:,? {_LEGAL})?(?![\w])")
# 在 + a Latin-script organization + a verb of working: 在Acme Widgets (Beijing)任职.
_EN_ORG_IN_ZH = re.compile(rf"(?<=[在于])({_EN_ORG_NAME})(?=工作|任职|上班|就职|教|做)")

_GPS = re.compile(r"(?<![\d.])(-?\d{1,3}\.\d{3,7}),\s?(-?\d{1,3}\.\d{3,7})(?![\d.])")
_ZH_WHERE_CUE = re.compile(r"(?:我现在在|我人在|人在|我在|我到|卡在|称其在|其在|昨天在|今天在|刚才在|正在|现在在|被困在|定位在)")
_ZH_PLACE_END = ("门口", "旁边", "附近", "对面", "大厅", "航站楼", "机场", "火车站", "高铁站", "地铁站", "南站", "北站", "东站",
                 "西站", "站", "工地", "ATM", "上客点", "停车场", "出口", "入口", "广场", "商场", "服务区", "候车室", "码头")
# A mall or an ATM alone (万达广场的ATM) names a chain, not a spot: a precise place has one of these.
_ZH_PRECISE = re.compile(r"门口|旁边|附近|对面|角|层|楼|大厅|站|出口|入口|上客点|工地|机场|码头|服务区|停车场|候车室")
_ZH_PLACE_RUN = re.compile(r"[\u4e00-\u9fffA-Za-z0-9 ]{3,30}")
_ZH_NOT_PLACE = re.compile(r"^(?:你们|我们|贵|网上|手机|家里|APP|app|线上)")

_EN_WHERE_CUE = re.compile(
    r"(?i:\b(?:I'?m|I\s+am|we'?re|stuck|still|currently|meet\s+me|waiting|stranded)\s+(?:\w+\s+){0,2}?at|"
    r"\b(?:stolen|swallowed|robbed|taken|skimmed)\b[^.,;!?\n]{0,30}?\bat)\s+")
_EN_PLACE_WORDS = ("the on at of and near by car park station gate terminal level floor platform exit entrance mall "
                   "store shop branch corner outside airport").split()
# A street alone (at Oxford Street) or a chain (at Tesco) is no spot: a number, a venue after "the" or a venue word is.
_EN_PRECISE = re.compile(r"\d|\bthe\s+[A-Z]|(?i:station|car\s+park|gate|terminal|mall|airport|entrance|exit|platform)\b")
_EN_NOT_PLACE = {"ATM", "I", "ATMs"}
_EN_PLACE_MORE = re.compile(r",\s*(?:[A-Z][\w'’]*\s+)*(?i:gate|terminal|level|floor|platform|exit|pier|concourse)\s+\w+")
_EN_TRAILING = re.compile(r"\s+(?:the|on|at|of|and|near|by)$", re.IGNORECASE)
_EN_TOKEN = re.compile(r"\s*([\w'’]+)")


def _employers(work: str) -> list[tuple[int, int]]:
    spans = []
    for m in _CN_ORG.finditer(work):
        s = m.start()
        cut = _CN_ORG_CUT.match(work, s, m.end() - 4)
        if cut:
            s = cut.end()
        end = m.end()
        while more := _CN_ORG_MORE.match(work, end):
            end = more.end()
        if end - s >= 5 and not _CN_OR_BANK.search(work, s, m.end()):
            spans.append((s, end))
    spans += [m.span() for p in (_EN_LEGAL_ORG, _EN_ORG_IN_ZH) for m in p.finditer(work)]
    for cue in _EN_EMPLOYER_CUE.finditer(work):
        m = _EN_ORG_AFTER_CUE.match(work, cue.end())
        if m:
            spans.append(m.span())
    return spans


def _zh_places(work: str) -> list[tuple[int, int]]:
    spans = []
    for cue in _ZH_WHERE_CUE.finditer(work):
        run = _ZH_PLACE_RUN.match(work, cue.end())
        if not run or _ZH_NOT_PLACE.match(run.group()):
            continue
        text = run.group()
        ends = [text.rfind(w) + len(w) for w in _ZH_PLACE_END if w in text]
        if ends and max(ends) >= 4 and _ZH_PRECISE.search(text, 0, max(ends)):
            spans.append((cue.end(), cue.end() + max(ends)))
    return spans


def _en_places(work: str) -> list[tuple[int, int]]:
    spans = []
    for cue in _EN_WHERE_CUE.finditer(work):
        end, words, strong = cue.end(), 0, False
        for w in _EN_TOKEN.finditer(work[cue.end():cue.end() + 120]):
            token = w.group(1)
            if (token[0].isupper() and token not in _EN_NOT_PLACE) or token[0].isdigit():
                strong = True
            elif token.lower() not in _EN_PLACE_WORDS:
                break
            words += 1
            end = cue.end() + w.end()
            if words >= 10:
                break
        phrase = work[cue.end():end]
        while tail := _EN_TRAILING.search(phrase):
            phrase = phrase[:tail.start()]
        end = cue.end() + len(phrase)
        while more := _EN_PLACE_MORE.match(work, end):
            end = more.end()
        if strong and _EN_PRECISE.search(work, cue.end(), end):
            spans.append((cue.end(), end))
    return spans


def detect_whereabouts(work: str) -> list[tuple[int, int, str]]:
    kept = {(s, e) for s, e, _ in detect_keep(work)}
    spans = [(s, e, "EMPLOYER") for s, e in _employers(work)]
    spans += [(*m.span(), "LOCATION") for m in _GPS.finditer(work)
              if abs(float(m.group(1))) <= 90 and abs(float(m.group(2))) <= 180]
    spans += [(s, e, "LOCATION") for s, e in _zh_places(work) + _en_places(work)]
    return [span for span in spans if span[:2] not in kept]
