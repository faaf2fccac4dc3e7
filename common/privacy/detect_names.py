"""Detector for NAME: Chinese and English person names.

Chinese: surname (:data:`common.privacy.pii.CN_SURNAMES`, compound surnames) +
given name after a cue (我是/我叫/姓名/客户/收款人...), before an honorific
(先生/女士/您好), or cue-less with common given-name characters.  English:
names after cues (my name is, Hi/Dear, Regards, paid to...), after
Mr./Ms./Dr., or starting with a common first name
(:data:`common.privacy.pii.EN_FIRST_NAMES`).
"""

from __future__ import annotations

import re

from common.privacy.detect_addresses import LOWER_CHARS, UPPER_CHARS, ZH_STOP
from common.privacy.pii import CN_COMPOUND_SURNAMES, CN_GIVEN_NAME_CHARS, CN_SURNAMES, EN_FIRST_NAMES
from common.privacy.spans import by_priority

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

_EN_TOKEN = rf"[{UPPER_CHARS}](?:['’][{UPPER_CHARS}])?[{LOWER_CHARS}]+(?:[{UPPER_CHARS}][{LOWER_CHARS}]+)?(?:-[{UPPER_CHARS}][{LOWER_CHARS}]+)?"
_EN_NAME = rf"(?:[{UPPER_CHARS}]\.[ \t]*){{0,2}}{_EN_TOKEN}(?:[ \t]+{_EN_TOKEN}){{0,2}}"  # also A. Kowalski
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
    if start == 0 or not _CN_HAN.match(work[start - 1]) or work[start - 1] in ZH_STOP:
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
    return by_priority(cued, titled, cueless)


def _greeted_cn_name(work: str, start: int, name: str) -> bool:
    """孙一鸣您好 / 邱文博先生 opening a sentence: surname + two Han characters, any given name, right before an honorific."""
    surname = _cn_surname_at(name, 0)
    opens = start == 0 or not _CN_HAN.match(work[start - 1]) or work[start - 1] in ZH_STOP
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
    return by_priority(cued, known)


def detect_name(work: str) -> list[tuple[int, int, str]]:
    return [(s, e, "NAME") for s, e in by_priority(_detect_cn_name(work), _detect_en_name(work))]

