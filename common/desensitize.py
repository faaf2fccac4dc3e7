"""Branch-side PII detection and masking, applied to raw text before tokenization.

No named-entity model can be downloaded into a branch, so this is a rule
engine: format regexes confirmed by checksums for numeric identifiers, and
context cues plus name/place vocabularies (:mod:`common.pii`) for names and
addresses, in Chinese and English.  Each detected value is replaced by its
typed placeholder (``[PHONE]`` ...).  Full-width digits and letters
(``１３８…``) are read as ASCII.  The detector never looks at the synthetic
generator's answer key.

Detectors run in a fixed order; each claims its spans, so a later detector
never sees, or masks inside, text an earlier one took:

1. ``EMAIL`` -- first, because mailbox names are often phone or QQ numbers.
2. ``ID_CARD`` -- 17 digits + digit/X (also grouped 6-8-4 or 6-4-4-4).
   Accepted if the MOD 11-2 check character is right or -- recall matters
   more than precision -- if the province code and birth date are plausible
   and the number is not a Luhn-valid card (a mistyped ID still identifies).
3. ``BANK_CARD`` -- card and account numbers: 13-19 digits, contiguous or
   grouped 4-4-4-4(-3) / 4-6-5, that are Luhn-valid with a network first
   digit, grouped by four (a mistyped card is still card-shaped), or follow
   a card keyword; 6-12 digits after an account keyword (账号, account no.);
   mod-97-valid IBANs; UK sort code + account number.
4. ``PHONE`` -- PRC mobiles (1[3-9]x, +86/0086, separators), +CC numbers,
   ``(415) 555-0132`` / ``415-555-0132``, trunk-prefixed national numbers
   (``020 7946 0958``, ``010-12345678``), 7-15 digits after a phone keyword.
5. ``ADDRESS`` -- Chinese place words ending in an address unit (省/市/区/路/
   街/道...) followed by a house number (号/栋/单元/室); English
   ``number + Capitalised words + street type`` with unit, city, state/ZIP
   or UK postcode.
6. ``NAME`` -- surname + given name after Chinese cues (我是/我叫/姓名/客户/
   收款人/尊敬的/客服专员...) or before 先生/女士/您好 (any given name when
   the name opens a sentence: 邱文博您好); English names after cues (my name
   is, I'm, Hi/Dear, Regards, account holder, paid/wire to, payment of
   <amount> to),
   after Mr./Ms./Dr., or starting with a common first name.

Amounts, dates, times, 8-12 digit references and card tails survive: they
fail the checksums and lack phone shapes.  Known limits: an 11-digit number
starting 13-19 is a valid PRC mobile and is masked even if it is an order
number; names with neither a cue nor a common first name / given-name
characters, and addresses without a house number, are missed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from common.errors import ConfigError, DataError
from common.pii import (CN_COMPOUND_SURNAMES, CN_GIVEN_NAME_CHARS, CN_PLACE_NAMES, CN_SURNAMES, EN_FIRST_NAMES,
                        PII_TYPES, PLACEHOLDERS, cn_id_structure_plausible, cn_id_valid, iban_valid, luhn_valid)

Span = tuple[int, int, str]
_BLOCK = "\x00"  # overwrites claimed spans in the working copy; matches no pattern
# Chinese input methods often type full-width digits and letters (１３８…, ＠); detection sees
# them as ASCII.  The mapping is one character to one, so spans still index the original text.
_HALF_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E) if chr(0x21 + i).isalnum() or chr(0x21 + i) in "+-@.()"}
_HALF_WIDTH.update({0x3000: 0x20, ord(_BLOCK): 0x20})

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

# --------------------------------------------------------------------------- addresses
_ZH_STOP = "的了是在我你他她与及到住从把给请向寄搬往去来为于想要这那址"
_ZH_FILL_CHAR = re.compile(rf"[^\s\d{_BLOCK}，。,.!！?？、；;：:“”\"'（）()【】\[\]{_ZH_STOP}]")
_ZH_UNIT_END = re.compile(r"(?:省|市|州|区|县|旗|镇|乡|街道|村|大道|大街|路|街|道|段|巷|弄|胡同|里|小区|花园|公寓|大厦|"
                          r"广场|新村|苑|园|城|中心)$")
_ZH_NUMBER_UNIT = r"(?:-\d+)?(?:号楼|号院|号|弄|栋|幢|座|单元|层|楼|室)"
_ZH_HOUSE_NUMBER = re.compile(rf"(?:\d+{_ZH_NUMBER_UNIT})+")
# Continuation after a house number: building name, 一座 / 3号楼 / 2801室, or a bare room number (502).
_ZH_ADDRESS_MORE = re.compile(
    rf"(?:{_ZH_FILL_CHAR.pattern}{{0,10}}?(?:\d+|[一二三四五六七八九十两]+){_ZH_NUMBER_UNIT})+"
    r"|\d{1,5}(?![\d.,:年月日号元块万%])")
_ZH_LEAD_IN = ("改成", "改为", "换成", "变更为", "更新为", "更改为", "寄往", "送到", "发到", "搬到", "位于", "家")
_ZH_MAX_HEAD = 30
_ZH_PLACE_AT = re.compile(rf"(?:{'|'.join(CN_PLACE_NAMES)})(?=省|市|自治区|特别行政区)")

_UP, _LO = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"  # Latin-1 letters, so Müller and Zoë count as words
_EN_WORD = rf"(?:[{_UP}][{_UP}{_LO}'’.-]*|\d+(?:st|nd|rd|th))"
_EN_CITY_WORD = rf"[{_UP}][{_LO}]+(?:[-'][{_UP}{_LO}]+)*"
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

# --------------------------------------------------------------------------- names
_CN_NAME_CUE = re.compile(
    r"(?:(?P<strong>我叫|我姓名是|姓名|名字|户名|户主)|我是|本人|持卡人|开户人|客户|联系人|收款人|付款人|申请人|借款人|"
    r"收款方|付款方|叫|尊敬的|专员|客服|"
    r"收件人|寄件人|经办人|代办人|委托人|监护人|负责人|"
    r"爱人|老公|老婆|丈夫|妻子|太太|父亲|母亲|爸爸|妈妈|儿子|女儿|这里是|给|向|替)(?P<sep>[是为叫:：\s]*)")
_LATIN_NAME = re.compile(r"[A-Z][A-Za-z'-]+(?:[ \t]+[A-Z][A-Za-z'-]+){1,2}\b")
_CN_CUE_BEFORE = re.compile(_CN_NAME_CUE.pattern + "$")
_CN_TITLE = re.compile(r"(?:先生|女士|小姐|老师|经理|阿姨|同志|客户)")  # ends a name
_CN_HONORIFIC = re.compile(r"(?:先生|女士|小姐|您好)")  # marks a customer's name (张伟您好 greets one)
_CN_NOT_GIVEN = frozenset("的是在了和与跟给说问想要不吗呢吧啊呀，。,.!！?？、；;：: \n")  # cannot start a given name
_CN_AFTER_NAME = frozenset("的是在说要想和与跟给已刚也都今昨来去请需因从对把被我你他她转汇打为")  # may follow a name
_CN_GIVEN_STOP = _CN_NOT_GIVEN | _CN_AFTER_NAME | frozenset("办申查丢转卡号先女小经老同阿还就本这那有没能会可个些")
# Words after a weak cue (客户余额..., 本人高度...) that start with a surname character but are no name.
_CN_NOT_NAME_WORDS = frozenset(
    "余额 金额 方便 高兴 高度 明天 明白 全部 全额 安全 成功 成为 文件 信用 信息 时间 时候 应该 原来 国内 国外 海外 平时 "
    "常用 于是 向您 和您 万一 石油 江湖 白天 田地 史上 龙卡 华为 车贷 房贷 房子 房屋 单位 管理 司机 强制 宁愿 卫生 程序 "
    "通过 那个 都是 来自 计划 门口 位置 元旦 利息 利率 经理 经营 关于 关联 包括 支付 支行 任何 任务 申请 申请人 周末 "
    "周一 周二 周三 周四 周五 周六 周日 何时 乐意 解决 解冻 能否 商户 商场 屈服 苗头 贾某 司法 艾滋 易于 杜绝 施工 "
    "谢谢 马上 黄金 曾经 许多 许可 朱古 林业 邮箱 代办 代理".split())
_CN_HAN = re.compile(r"[\u4e00-\u9fff]")

_EN_TOKEN = rf"[{_UP}](?:['’][{_UP}])?[{_LO}]+(?:[{_UP}][{_LO}]+)?(?:-[{_UP}][{_LO}]+)?"
_EN_NAME = rf"(?:[{_UP}]\.[ \t]*){{0,2}}{_EN_TOKEN}(?:[ \t]+{_EN_TOKEN}){{0,2}}"  # also A. Kowalski
_EN_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+"
_EN_SIGN_OFF = (r"(?:regards|sincerely|cheers|thanks|thank you|best|yours truly|yours faithfully|yours sincerely)"
                r"(?:[,!.]?[ \t]*\n\s*|,[ \t]*)")  # "Regards,\nJohn Smith" / "Thanks, John"
_EN_CUE_WORDS = (r"(?:my name is|my name's|name\s*:|account holder\s*:?|card ?holder\s*:?|signed\s*:?|"
                 r"(?:payee|beneficiary|recipient|account name)(?:\s+is|\s*:)?|on behalf of|from\s*:|husband|wife|son|daughter|mother|father|partner|"
                 r"(?:wire|transfer|payment|remittance|sent|send|paid|pay)(?:\s+[a-z]+)?\s+to|"
                 r"(?:wire|transfer|payment|remittance)\s+of\s+[£$€¥]?[\d][\d.,]*(?:\s+[a-z]{3})?\s+to)[,:]?\s+")
_EN_STRONG_CUE = re.compile(rf"\b(?i:{_EN_SIGN_OFF}|{_EN_CUE_WORDS})(?:{_EN_TITLE})?(?P<name>{_EN_NAME})")
_EN_WEAK_CUE = re.compile(
    rf"(?:\b(?i:i am|i['’]m|this is|it['’]s|dear|hi|hello|good (?:morning|afternoon|evening))\s+)"
    rf"(?P<title>{_EN_TITLE})?(?P<name>{_EN_NAME})")
_EN_PAYEE = re.compile(rf"\b(?i:paid|pay|sent|send|owe|transferred|wired)\s+(?P<name>{_EN_NAME})")
# "my name is kevin lee": lower-case names, only after the strongest cues and a known first name.
_EN_LOWER_NAME = re.compile(r"\b(?i:my name is|my name's|name\s*:|i am called)\s+(?P<first>[a-z]+)(?:[ \t]+(?P<last>[a-z]+))?")
_EN_LOWER_STOP = frozenset("and but or i im from with my the here calling speaking writing again please thanks is was "
                           "to at in on for about regarding sir madam".split())
_EN_NAME_AT = re.compile(rf"(?P<name>{_EN_NAME})")
_EN_AFTER_TITLE = re.compile(rf"\b{_EN_TITLE}(?P<name>{_EN_NAME})")
_EN_NOT_NAME = frozenset(
    "Sir Madam Bank Banking Card Cards Visa Mastercard UnionPay Amex Please Thanks Thank Hello Hi Dear The My "
    "Your Our This That Customer Service Support Team Manager Branch Account Online Mobile App Street Road "
    "Avenue Lane January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday Chinese English China Hong Kong London Today "
    "Yesterday Tomorrow Morning Regards Best Kind Sincerely Cheers Urgent Help Dispute Fraud Loan Mortgage "
    "Credit Debit Transfer Payment Statement Balance Fee Fees Yes No Not Just Also Still Sorry Okay Ok Have Will "
    "Can Could Would Should Let Looking Hope Any Is Are Do Does Did We They He She It And But So As If In On At For "
    "With From To Of Again Anyway Bye Good Great Appreciate Waiting Regarding".split())


# --------------------------------------------------------------------------- detectors
def _detect_email(work: str) -> list[tuple[int, int]]:
    return [m.span() for m in _EMAIL.finditer(work)]


def _detect_id_card(work: str) -> list[tuple[int, int]]:
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


def _detect_bank_card(work: str) -> list[tuple[int, int]]:
    accounts = [m.span() for m in _IBAN.finditer(work) if iban_valid(m.group())]
    accounts += [m.span() for m in _UK_ACCOUNT.finditer(work)]
    accounts += [m.span("number") for m in _ACCOUNT_NUMBER.finditer(work)]
    return _by_priority(accounts, _detect_card_numbers(work))


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


def _claim(taken: bytearray, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Keep the spans that overlap nothing in ``taken`` (leftmost, then longest, first) and mark them."""
    kept = []
    for s, e in sorted(spans, key=lambda x: (x[0], -x[1])):
        if e > s and taken.find(1, s, e) == -1:
            taken[s:e] = b"\x01" * (e - s)
            kept.append((s, e))
    return kept


def _by_priority(*groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge span lists; a span overlapping one from an earlier list is dropped."""
    taken = bytearray(max((e for group in groups for _, e in group), default=0))
    return [span for group in groups for span in _claim(taken, group)]


def _detect_phone(work: str) -> list[tuple[int, int]]:
    trunk = [m.span() for m in _TRUNK.finditer(work)
             if (9 if "(" in m.group() else 10) <= _digit_count(m.group()) <= 12 and re.search(r"[ )-]", m.group())]
    loose = [_strip_span(work, *m.span()) for m in _LOOSE_NUMBER.finditer(work)
             if 7 <= _digit_count(m.group()) <= 15
             and _PHONE_KEYWORD.search(work, max(0, m.start() - 24), m.start())]
    return _by_priority([m.span() for m in _CN_MOBILE.finditer(work)],
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


def _detect_address(work: str) -> list[tuple[int, int]]:
    return _detect_zh_address(work) + [m.span() for m in _EN_ADDRESS.finditer(work)]


def _cn_surname_at(work: str, pos: int) -> str | None:
    surname = next((s for s in CN_COMPOUND_SURNAMES if work.startswith(s, pos)), None)
    if surname is None and work[pos:pos + 1] in CN_SURNAMES:
        surname = work[pos]
    return surname


def _cn_name_at(work: str, pos: int, strong: bool) -> int | None:
    """End of a Chinese name starting at ``pos`` (right after a cue), or None.

    After a strong cue (我叫/姓名：) any two or three Han characters are taken;
    after a weak one (我是/客户/收款人...) the name must start with a known
    surname and either look like a name or be followed by a word boundary.
    """
    surname = _cn_surname_at(work, pos)
    if surname is None and not strong:
        return None
    end = pos + len(surname or "")
    for k in range(2 if surname else 3):
        ch = work[end:end + 1]
        if not ch or not _CN_HAN.match(ch) or ch in (_CN_GIVEN_STOP if k else _CN_NOT_GIVEN):
            break
        if _CN_TITLE.match(work, end):
            break
        end += 1
    if end - pos < 2:
        return None
    if strong:
        return end
    given, after = work[pos + len(surname):end], work[end:end + 1]
    hard_end = not after or not _CN_HAN.match(after)
    if work[pos:pos + 2] in _CN_NOT_NAME_WORDS:  # 余额低 no, 周一鸣， yes
        if not (len(given) == 2 and given[-1] in CN_GIVEN_NAME_CHARS and hard_end):
            return None
    plausible = all(c in CN_GIVEN_NAME_CHARS for c in given)
    boundary = hard_end or after in _CN_AFTER_NAME or _CN_TITLE.match(work, end)
    return end if plausible or boundary else None


def _cn_free_start(work: str, start: int) -> bool:
    """Whether a name may start at ``start``: not glued to a preceding word."""
    if start == 0 or not _CN_HAN.match(work[start - 1]) or work[start - 1] in _ZH_STOP:
        return True
    return _CN_CUE_BEFORE.search(work, max(0, start - 8), start) is not None


def _detect_cn_name(work: str) -> list[tuple[int, int]]:
    cued = []
    for cue in _CN_NAME_CUE.finditer(work):
        strong = bool(cue.group("strong")) and (bool(cue.group("sep").strip()) or cue.group("strong") == "我叫")
        latin = _LATIN_NAME.match(work, cue.end())  # 账户名是SIQI CHEN / 收款人 Wei Zhang
        end = latin.end() if latin else _cn_name_at(work, cue.end(), strong)
        if end is not None:
            cued.append((cue.end(), end))
    titled = []
    for title in _CN_HONORIFIC.finditer(work):  # 张伟先生 / 王女士: surname + up to two given-name chars
        for length in (4, 3, 2, 1):
            start = title.start() - length
            full = length >= 3  # surname + two given-name characters needs no word boundary before it
            if start < 0:
                continue
            name = work[start:title.start()]
            if (_plausible_cn_name(name) and (full or _cn_free_start(work, start))) or _greeted_cn_name(work, start, name):
                titled.append((start, title.start()))
                break
    cueless = []
    for start, ch in enumerate(work):  # cue-less 王建国: surname + two common given-name chars
        given = work[start + 1:start + 3]
        if ch in CN_SURNAMES and len(given) == 2 and all(c in CN_GIVEN_NAME_CHARS for c in given):
            if _cn_free_start(work, start) and work[start:start + 2] not in _CN_NOT_NAME_WORDS:
                cueless.append((start, start + 3))
    return _by_priority(cued, titled, cueless)


def _greeted_cn_name(work: str, start: int, name: str) -> bool:
    """孙一鸣您好 / 邱文博先生 opening a sentence: surname + two Han characters, any given name, right before an honorific."""
    surname = _cn_surname_at(name, 0)
    opens = start == 0 or not _CN_HAN.match(work[start - 1]) or work[start - 1] in _ZH_STOP
    return (surname is not None and len(name) - len(surname) == 2 and opens
            and all(_CN_HAN.match(c) and c not in _CN_NOT_GIVEN for c in name[len(surname):]))


def _plausible_cn_name(s: str) -> bool:
    surname = _cn_surname_at(s, 0)
    return surname is not None and len(s) - len(surname) <= 2 and all(c in CN_GIVEN_NAME_CHARS for c in s[len(surname):])


def _en_name_span(m: re.Match[str] | None, need_known: bool = False, min_tokens: int = 1) -> tuple[int, int] | None:
    """Span of the name tokens in ``m`` up to the first non-name word.

    Args:
        m: A match with a ``name`` group, or None.
        need_known: Require a common first name, or at least two tokens.
        min_tokens: Fewest name tokens to accept.
    """
    if m is None:
        return None
    kept = []
    for t in re.finditer(r"\S+", m.group("name")):
        if t.group() in _EN_NOT_NAME:
            break
        kept.append(t)
    if len(kept) < min_tokens or (need_known and kept[0].group() not in EN_FIRST_NAMES and len(kept) < 2):
        return None
    base = m.start("name")
    return base + kept[0].start(), base + kept[-1].end()


def _detect_en_name(work: str) -> list[tuple[int, int]]:
    cued = [s for m in _EN_STRONG_CUE.finditer(work) if (s := _en_name_span(m))]
    cued += [s for m in _EN_WEAK_CUE.finditer(work) if (s := _en_name_span(m, need_known=m.group("title") is None))]
    cued += [s for m in _EN_AFTER_TITLE.finditer(work) if (s := _en_name_span(m))]
    cued += [s for m in _EN_PAYEE.finditer(work) if (s := _en_name_span(m, min_tokens=2))]
    known = []
    for token in re.finditer(rf"\b{_EN_TOKEN}\b", work):  # Olivia Taylor: a common first name + surname
        if token.group() in EN_FIRST_NAMES:
            m = _EN_NAME_AT.match(work, token.start())
            s = _en_name_span(m)
            if s and s[1] > token.end():
                known.append(s)
    for m in _EN_LOWER_NAME.finditer(work):
        if m.group("first").capitalize() in EN_FIRST_NAMES:
            last = m.group("last")
            cued.append((m.start("first"), m.end("last") if last and last not in _EN_LOWER_STOP else m.end("first")))
    return _by_priority(cued, known)


def _detect_name(work: str) -> list[tuple[int, int]]:
    return _by_priority(_detect_cn_name(work), _detect_en_name(work))


_DETECTORS = (("EMAIL", _detect_email), ("ID_CARD", _detect_id_card), ("BANK_CARD", _detect_bank_card),
              ("PHONE", _detect_phone), ("ADDRESS", _detect_address), ("NAME", _detect_name))


def find_pii(text: str) -> list[Span]:
    """Find every PII span in ``text``, whatever types a caller will mask.

    Args:
        text: Raw message text.

    Returns:
        Non-overlapping ``(start, end, type)`` spans, sorted by start.
    """
    work = text.translate(_HALF_WIDTH)
    taken = bytearray(len(work))
    claimed: list[Span] = []
    for pii_type, detect in _DETECTORS:
        fresh = sorted(_claim(taken, detect(work)))  # drops overlaps with earlier detectors' spans
        if fresh:
            claimed += [(s, e, pii_type) for s, e in fresh]
            pieces, cursor = [], 0
            for s, e in fresh:  # blank the claimed spans so later detectors cannot see them
                pieces += [work[cursor:s], _BLOCK * (e - s)]
                cursor = e
            work = "".join(pieces) + work[cursor:]
    return sorted(claimed)


# --------------------------------------------------------------------------- public API
@dataclass
class DesensitizeResult:
    """Masked text and how many values of each PII type were masked.

    Attributes:
        text: The input with every detected PII value replaced by its placeholder.
        counts: Masked values per PII type name; all six keys, 0 if none.
    """

    text: str
    counts: dict[str, int]


_FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "NAME": ("name", "full_name", "first_name", "last_name", "surname", "given_name", "姓名", "名字", "户名", "持卡人"),
    "PHONE": ("phone", "mobile", "tel", "telephone", "phone_number", "mobile_number", "cell", "电话", "手机", "手机号"),
    "EMAIL": ("email", "e_mail", "mail", "email_address", "邮箱", "电子邮件", "电子邮箱"),
    "ID_CARD": ("id_card", "id_number", "id_no", "national_id", "identity_card", "身份证", "身份证号", "证件号"),
    "BANK_CARD": ("card_number", "card_no", "card", "account_number", "account_no", "卡号", "银行卡号", "账号"),
    "ADDRESS": ("address", "addr", "street_address", "home_address", "mailing_address", "地址", "住址"),
}
_FIELD_PREFIXES = ("customer_", "client_", "cust_", "holder_", "account_holder_", "contact_", "user_",
                   "home_", "billing_", "mailing_", "客户", "联系", "家庭", "持卡人")


def field_pii_type(column: str) -> str | None:
    """Name the PII type a column holds wholly, judged from its name, if clearly one.

    Args:
        column: A structured record's column name (``"phone"``, ``"客户姓名"``...).

    Returns:
        The PII type name, or None if the column is not clearly an identifier.
    """
    key = re.sub(r"[\s\-.]+", "_", column.strip().lower())
    candidates = [key] + [key[len(p):] for p in _FIELD_PREFIXES if key.startswith(p) and len(key) > len(p)]
    for pii_type, names in _FIELD_TYPES.items():
        if any(c in names for c in candidates):
            return pii_type
    return None


class Desensitizer:
    """Masks PII of the chosen types in free text and structured records."""

    def __init__(self, types: Iterable[str] = PII_TYPES) -> None:
        """Choose which PII types to mask.

        Args:
            types: PII type names from :data:`common.pii.PII_TYPES` (case-insensitive).
                Values of other types are still detected, so that they are not
                mistaken for an enabled type, but are left in the text.

        Raises:
            ConfigError: If a type is unknown or no type is given.
        """
        names = [types] if isinstance(types, str) else list(types)
        chosen = []
        for name in names:
            key = str(name).strip().upper()
            if key not in PII_TYPES:
                raise ConfigError(f"unknown PII type {name!r}; valid types are: {', '.join(PII_TYPES)}")
            chosen.append(key)
        if not chosen:
            raise ConfigError(f"no PII type to mask; choose from: {', '.join(PII_TYPES)}")
        self.types: frozenset[str] = frozenset(chosen)

    def detect(self, text: str) -> list[Span]:
        """Return the ``(start, end, type)`` spans of enabled PII types in ``text``.

        Raises:
            DataError: If ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise DataError(f"text to desensitize must be a string, got {type(text).__name__}")
        return [s for s in find_pii(text) if s[2] in self.types]

    def apply(self, text: str) -> DesensitizeResult:
        """Replace every detected PII value of the enabled types by its placeholder.

        Args:
            text: Raw message text.

        Returns:
            The masked text and per-type counts.

        Raises:
            DataError: If ``text`` is not a string.
        """
        counts = {t: 0 for t in PII_TYPES}
        pieces, cursor = [], 0
        for start, end, pii_type in self.detect(text):
            pieces += [text[cursor:start], PLACEHOLDERS[pii_type]]
            counts[pii_type] += 1
            cursor = end
        pieces.append(text[cursor:])
        return DesensitizeResult("".join(pieces), counts)

    def apply_fields(self, record: Mapping[str, str], text_fields: Iterable[str]) -> tuple[dict, dict[str, int]]:
        """Mask a structured record.

        Each field named in ``text_fields`` is masked like free text.  A field
        whose column name clearly is an identifier (see :func:`field_pii_type`)
        of an enabled type is replaced wholly by that type's placeholder, even
        if it is not listed, so a forgotten column cannot leak.  Other fields
        are copied unchanged.

        Args:
            record: Column name -> value.
            text_fields: Columns holding free text to scan.

        Returns:
            A new record and the per-type counts of masked values.

        Raises:
            DataError: If a listed field is missing or a listed free-text field is not a string.
        """
        fields = [text_fields] if isinstance(text_fields, str) else list(text_fields)
        missing = [f for f in fields if f not in record]
        if missing:
            raise DataError(f"record has no field(s) {', '.join(map(repr, missing))}; it has {', '.join(map(repr, record))}")
        out, counts = dict(record), {t: 0 for t in PII_TYPES}
        for column, value in record.items():
            whole = field_pii_type(str(column))
            if whole in self.types:
                if value is not None and str(value).strip():  # a phone stored as a number is still a phone
                    out[column], counts[whole] = PLACEHOLDERS[whole], counts[whole] + 1
            elif column in fields:
                if not isinstance(value, str):
                    raise DataError(f"field {column!r} must be a string to desensitize, got {type(value).__name__}")
                result = self.apply(value)
                out[column] = result.text
                for t, n in result.counts.items():
                    counts[t] += n
        return out, counts


def desensitize(text: str) -> DesensitizeResult:
    """Mask all PII types in ``text`` with a default :class:`Desensitizer`."""
    return _DEFAULT.apply(text)


_DEFAULT = Desensitizer()
