"""Detectors for document and account identifiers named by a cue, and for self-checking ID formats.

Two classes of rule, for the types ``HK_ID``, ``MO_ID``, ``TW_ID``,
``PERMIT``, ``PASSPORT``, ``SSN``, ``MEDICAL_INSURANCE``, ``DEVICE_ID``,
``SOCIAL_ID`` and ``LICENSE_PLATE``:

* **cued values** (:func:`detect_cued`): a cue word of the type (护照号,
  passport no., 社保卡号, NHS number, 微信号, IMEI, 车牌 ...) followed by an
  identifier-shaped token (letters and digits, optionally in groups, with a
  check character in brackets) is that type, whatever its format -- each
  country writes these differently, and the cue is what a reader relies on;
  the value may open the answer to a question that names the cue, an SSN may
  be read in comma-separated groups, and a form's generic 证件号码 field takes
  its type from the document title above it (通行证, 护照);
* **self-checking formats** (:func:`detect_id_formats`), masked without a cue:
  Hong Kong identity cards (check character mod 11), Taiwan national IDs
  (letter + 9 digits, weighted check), Macau IDs ``1234567(8)`` (read aloud ``1234567, bracket 8``: :mod:`common.privacy.normalize`),
  Mainland travel permits (回乡证 ``H``/``M`` + 8 or 10 digits, 往来港澳通行证
  ``C`` + 8), PRC passports (``E``/``G`` + 8), US social-security numbers and
  UK National Insurance numbers (:mod:`stdnum`), IMEIs (:mod:`stdnum.imei`,
  Luhn), MAC addresses and UUID/IDFA device ids.
"""

from __future__ import annotations

import re

from stdnum import imei
from stdnum.us import ssn

ANSWER_GAP = r"(?:(?:[呢吗呀]?[?？])?[ \t]*\n[ \t]*(?:[^\n:：]{1,12}[:：])?[ \t]*)?"
"""A question in a transcript (its particle 呢/吗 included), then the next speaker's label: the value follows in the answer."""
_SEP = (r"[ \t]*(?:卡号|号码|号|number|no\.?|ID|handle|account)?[ \t]*(?:[:：#=(（]|是|为|由|is|[?？])?[ \t]*(?:[:：#=][ \t]*)?"
        + ANSWER_GAP)
_VALUE = r"(?P<value>[A-Za-z0-9@_+][A-Za-z0-9@_.+\-]*(?:\(\w\))?(?:[ -](?:[A-Z0-9]{1,10}|\(\w\)))*)"
_CUES = {
    "HK_ID": r"香港身份证(?:号码?)?|HKID(?:\s+(?:no\.?|number))?|HK\s*ID(?:\s+card)?|Hong\s+Kong\s+ID(?:\s+card)?(?:\s+(?:no\.?|number))?|Hong\s+Kong\s+identity\s+card",
    "MO_ID": r"澳门(?:居民)?身份证(?:号码?)?|BIR|Maca[ou]\s+(?:resident\s+)?ID(?:\s+card)?(?:\s+(?:no\.?|number))?|Maca[ou]\s+identity\s+card",
    "TW_ID": r"台湾身份证(?:号码?)?|身分證(?:字號)?|Taiwan(?:ese)?\s+(?:national\s+)?ID(?:\s+card)?(?:\s+(?:no\.?|number))?",
    "PERMIT": r"回乡证(?:号码?)?|来往内地通行证(?:号码?)?|台胞证(?:号码?)?|来往大陆通行证(?:号码?)?|港澳通行证(?:号码?)?|通行证(?:号码?)?|"
              r"(?:home[- ]return|mainland\s+travel|entry)\s+permit(?:\s+(?:no\.?|number))?",
    "PASSPORT": r"护照(?:号码?)?|passport(?:\s+(?:no\.?|number|#))?",
    "SSN": r"(?:my|your|his|her)\s+social(?=\s+is)|社保卡号?|社会保障(?:卡)?号码?|社保(?:编号|号码?)|SSN|SS#|social\s+security(?:\s+(?:number|no\.?|#))?|"
           r"NI\s+(?:number|no\.?)|NINO|national\s+insurance(?:\s+(?:number|no\.?))?",
    "MEDICAL_INSURANCE": r"医保(?:个人)?(?:卡号?|号码?|编号|账号)|医疗保险(?:卡)?号码?|参保号|(?:medical|health)\s+insurance(?:\s+(?:card|member|policy))?"
                         r"(?:\s+(?:no\.?|number|id|#))?|insurance\s+(?:member\s+)?(?:id|no\.?|number|#)|member\s+(?:id|no\.?|number|#)|"
                         r"(?:health|medical|dental)\s+plan(?:\s+(?:id|no\.?|number|#))?|"
                         r"NHS(?:\s+(?:number|no\.?))?|Medicare(?:\s+(?:number|no\.?|card))?|Medicaid(?:\s+(?:number|id))?",
    "DEVICE_ID": r"IMEI|MEID|设备(?:号|ID|码|标识)|(?:device|android|advertising|ad)\s+id|IDFA|IDFV|GAID|MAC(?:\s+address)?|MAC地址",
    "SOCIAL_ID": r"微信(?:号|ID)?|WeChat(?:\s+ID)?|QQ(?:号码?)?|支付宝(?:账号|账户|帐号)?|Alipay(?:\s+(?:account|ID))?|Venmo|抖音号|"
                 r"微博(?:号|ID)?|Telegram|LINE\s+ID|Skype",
    "LICENSE_PLATE": r"车牌(?:号码?)?|号牌|(?:licen[cs]e|number)\s+plate(?:\s+(?:no\.?|number))?|plate(?:\s+(?:no\.?|number))?|"
                     r"reg(?:istration)?(?:\s+(?:no\.?|number|plate))?|VRN",
}
# An ASCII cue must end at a word end; a Chinese one may run straight into its value (微信tangtang_2019).
_CUED = re.compile("|".join(rf"(?P<{t}>(?<![A-Za-z])(?:{cue})(?:(?<![A-Za-z])|(?![A-Za-z])))" for t, cue in _CUES.items()),
                   re.IGNORECASE)
_HANDLE = re.compile(r"(?<![A-Za-z0-9_.@])(?:@[A-Za-z][A-Za-z0-9_-]{3,}(?![\w.@-])|wxid_[a-z0-9]{6,})")
_CLAUSE_END = re.compile(r"[。！？!?\n;；]")
_VALUE_AT = re.compile(_SEP + _VALUE)

_HKID = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,2})(\d{6})[ ]?\(?([0-9A])\)?(?![A-Za-z0-9])")
_MOID = re.compile(r"(?<![A-Za-z0-9])[1578]\d{6}[ ]?\(\d\)")
# An SSN read in groups, spaced and with commas: 4 1 2, 7 8, 3 0 5 6.
_SSN_GROUPS = re.compile(r"\d(?: ?\d){2}[ ,-]{1,3}\d ?\d[ ,-]{1,3}\d(?: ?\d){3}(?![\d])")
# A question naming the cue, then the value at the start of the answer (passport number, as ...?\nCaller: PA 1234567).
_QUESTION_TAIL = re.compile(r"[^\n?？]{0,60}[?？][ \t]*\n[ \t]*(?:[^\n:：]{1,12}[:：])?[ \t]*")
_VALUE_ONLY = re.compile(_VALUE)
# A form's generic number field (证件号码) takes its type from the document title above it (通行证, 护照).
_FORM_NUMBER = re.compile(r"(?:证件|證件)(?:号码|號碼|号|號)[ \t:：]*(?P<value>[A-Z]?\d{6,12})(?!\d)")
_FORM_TITLES = (("PERMIT", re.compile(r"通行[证證]|回乡[证證]|台胞[证證]")), ("PASSPORT", re.compile(r"护照|護照")))
_TWID = re.compile(r"(?<![A-Za-z0-9])[A-Z][12]\d{8}(?![A-Za-z0-9])")
_PERMIT = re.compile(r"(?<![A-Za-z0-9])(?:[HM]\d{8}(?:\d{2})?|C[0-9A-Z]\d{7})(?![A-Za-z0-9])")
_PASSPORT = re.compile(r"(?<![A-Za-z0-9])(?:[EG]\d{8}|E[A-Z]\d{7}|[A-Z]{1,2}\d{7})(?![A-Za-z0-9])")
_US_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_UK_NINO = re.compile(r"(?<![A-Za-z0-9])[A-CEGHJ-TW-Z][A-CEGHJ-NPQR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])")
_IMEI = re.compile(r"(?<![\d-])\d{2}[ -]?\d{6}[ -]?\d{6}[ -]?\d(?![\d-])")
_MAC = re.compile(r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:-])")
_UUID = re.compile(r"(?<![0-9A-Fa-f-])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![0-9A-Fa-f-])")
_HEX_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{16}(?![0-9A-Za-z])")
_TW_LETTERS = "ABCDEFGHJKLMNPQRSTUVXYWZIO"  # letter -> 10..35, in the order the Taiwan scheme assigns them


def hkid_valid(letters: str, digits: str, check: str) -> bool:
    """Hong Kong identity card check character (weights 9..2 over a space-padded prefix, mod 11)."""
    prefix = letters.rjust(2)
    values = [36 if c == " " else ord(c) - 55 for c in prefix] + [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1)))
    expected = (11 - total % 11) % 11
    return check == ("A" if expected == 10 else str(expected))


def twid_valid(value: str) -> bool:
    """Taiwan national ID: letter (10..35) + 9 digits, weights 1,9,8..1,1, sum mod 10 == 0."""
    code = _TW_LETTERS.find(value[0]) + 10
    digits = [code // 10, code % 10] + [int(d) for d in value[1:]]
    weights = [1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1]
    return sum(d * w for d, w in zip(digits, weights)) % 10 == 0


def _clean_value(work: str, start: int, end: int) -> tuple[int, int]:
    while end > start and work[end - 1] in ".,-_ ":
        end -= 1
    if work.count("(", start, end) < work.count(")", start, end):
        end -= 1
    return start, end


def detect_cued(work: str) -> list[tuple[int, int, str]]:
    """An identifier-shaped token right after a cue word of its type."""
    spans = []
    for cue in _CUED.finditer(work):
        if nino := _UK_NINO.match(work, cue.start()):  # QQ 12 34 56 C: the "cue" is the value's own prefix
            spans.append((*nino.span(), "SSN"))
            continue
        m = _VALUE_AT.match(work, cue.end())
        if not m and (question := _QUESTION_TAIL.match(work, cue.end())):
            m = _VALUE_ONLY.match(work, question.end())
        if not m:
            continue
        if cue.lastgroup == "SSN" and (groups := _SSN_GROUPS.match(work, m.start("value"))):
            spans.append((*groups.span(), "SSN"))
            continue
        s, e = _clean_value(work, *m.span("value"))
        value = work[s:e]
        has_digit = any(c.isdigit() for c in value)
        social = cue.lastgroup == "SOCIAL_ID" and len(value) >= 5 and (has_digit or "_" in value or "@" in value)
        if (has_digit and len(re.sub(r"\W", "", value)) >= 5) or social:
            spans.append((s, e, cue.lastgroup))
            spans += _same_shape_after(work, e, value, cue.lastgroup)
    return spans + _form_numbers(work) + [(*m.span(), "SOCIAL_ID") for m in _HANDLE.finditer(work)]


def _form_numbers(work: str) -> list[tuple[int, int, str]]:
    spans = []
    for m in _FORM_NUMBER.finditer(work):
        titled = [(t.end(), pii_type) for pii_type, title in _FORM_TITLES for t in title.finditer(work, 0, m.start())]
        if titled:
            spans.append((*m.span("value"), max(titled)[1]))
    return spans


def _shape(value: str) -> str:
    return re.sub(r"[A-Za-z]", "a", re.sub(r"\d", "9", value))


def _same_shape_after(work: str, end: int, value: str, pii_type: str) -> list[tuple[int, int, str]]:
    """Further values of the same shape later in the clause (由05827163换发为10394852: both are permits)."""
    stop = _CLAUSE_END.search(work, end)
    clause_end = min(stop.start() if stop else len(work), end + 40)
    shape = _shape(value)
    tokens = re.finditer(r"(?<![A-Za-z0-9])[A-Za-z0-9]+(?![A-Za-z0-9])", work[end:clause_end])
    return [(end + m.start(), end + m.end(), pii_type) for m in tokens if _shape(m.group()) == shape]


def detect_id_formats(work: str) -> list[tuple[int, int, str]]:
    """Identifier formats that check themselves or are unmistakable, without a cue."""
    spans = [(*m.span(), "HK_ID") for m in _HKID.finditer(work) if hkid_valid(m[1], m[2], m[3])]
    spans += [(*m.span(), "MO_ID") for m in _MOID.finditer(work)]
    spans += [(*m.span(), "TW_ID") for m in _TWID.finditer(work) if twid_valid(m.group())]
    spans += [(*m.span(), "PERMIT") for m in _PERMIT.finditer(work)]
    spans += [(*m.span(), "PASSPORT") for m in _PASSPORT.finditer(work)]
    spans += [(*m.span(), "SSN") for m in _US_SSN.finditer(work) if ssn.is_valid(m.group())]
    spans += [(*m.span(), "SSN") for m in _UK_NINO.finditer(work)]
    spans += [(*m.span(), "DEVICE_ID") for m in _IMEI.finditer(work)
              if imei.is_valid(re.sub(r"\D", "", m.group())) and m.group()[:2] in ("35", "86", "01", "99", "49")]
    spans += [(*m.span(), "DEVICE_ID") for pattern in (_MAC, _UUID) for m in pattern.finditer(work)]
    spans += [(*m.span(), "DEVICE_ID") for m in _HEX_ID.finditer(work)
              if sum(c.isdigit() for c in m.group()) >= 3 and sum(c.isalpha() for c in m.group()) >= 3]
    return spans
