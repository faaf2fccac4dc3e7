"""Detector for NAME: Chinese and English person names.

Chinese: surname (:data:`common.privacy.pii.CN_SURNAMES`, compound surnames) +
given name after a cue (我是/我叫/姓名/客户/收款人...), before an honorific
(先生/女士/您好), or cue-less with common given-name characters; names spaced
out by OCR (姓名 李 建 国) likewise.  English:
names after cues (my name is, Hi/Dear, Regards, paid to...), after
Mr./Ms./Dr., or starting with a common first name
(:data:`common.privacy.pii.EN_FIRST_NAMES`); romanized Chinese names
(``Chan Tai Man``, ``WANG Xiaohong``): :mod:`common.privacy.detect_names_romanized`.
"""

from __future__ import annotations

import re

from common.privacy.detect_addresses import ZH_STOP
from common.privacy.detect_names_en import detect_en_name, with_titles
from common.privacy.detect_names_mixed import detect_mixed_name
from common.privacy.detect_names_romanized import detect_romanized_name
from common.privacy.detect_names_zh import (TAGS, address_forms, compound_surname_names, jieba_loaded, kin_titled, list_members,
                                            nicknames, signatures, tibetan_names, word_freq)
from common.privacy.lexicons import CN_COMPOUND_SURNAMES, CN_SURNAMES
from common.privacy.lexicons import CN_GIVEN_CHARS as CN_GIVEN_NAME_CHARS
from common.privacy.spans import by_priority

_RARE = 300  # a dictionary word seen less often than this may be a name after a cue (客户高远, 客户雷霆)
_DOT_NAME = re.compile(r"[\u4e00-\u9fff]{2,6}[·•・.][\u4e00-\u9fff]{2,8}")  # 阿依古丽·买买提, 约翰·史密斯


def _ordinary_word(word: str, opening: bool = True) -> bool:
    """A word (or, with ``opening``, a word opening it) that jieba knows as something other than a name (商家, 银行卡)."""
    rare_compound = word[:2] in _COMPOUND and word_freq(word[:2]) < 800  # 欧阳 opens names; 东方 opens 东方明珠
    for piece in (word, word[:2]) if opening and not rare_compound else (word,):
        tag = TAGS.get(piece)
        if tag is not None and not tag.startswith("nr"):
            return True
    return False


def _cued_word(word: str) -> bool:
    """After a cue, a word jieba knows as a common noun, verb, place word ... (我是商家), not a proper name (金洋 is ns)."""
    tag = TAGS.get(word)
    return (tag is not None and tag[0] in "nvsatfdrmqpculi" and not tag.startswith(("nr", "ns", "nz", "nt"))
            and (len(word) < 2 or word_freq(word) >= _RARE or word in _CN_NOT_NAME_WORDS))


def _jieba_names(work: str) -> list[tuple[int, int]]:
    """Person names jieba's part-of-speech tagger finds, starting with a known surname; adjacent pieces merged."""
    spans, pos = [], 0
    for word, flag in jieba_loaded()[1].cut(work):
        start, pos = pos, pos + len(word)
        if not flag.startswith("nr"):
            continue
        if spans and spans[-1][1] == start and pos - spans[-1][0] <= 4:
            spans[-1] = (spans[-1][0], pos)
        else:
            spans.append((start, pos))
    return [(s, e) for s, e in spans if 2 <= e - s <= 4 and (surname := _cn_surname_at(work, s))
            and not _ordinary_word(work[s:e]) and work[s:e] not in _CN_NOT_NAME_WORDS
            and not any(c in _CN_GIVEN_STOP for c in work[s + len(surname):e])
            and any(c in CN_GIVEN_NAME_CHARS for c in work[s + len(surname):e])]

# --------------------------------------------------------------------------- names
_CN_NAME_CUE = re.compile(
    r"(?:(?P<strong>我叫|我姓名是|姓名|名字|户名|户主|中文名|英文名|曾用名|别名|小名)|我是|本人|持卡人|开户人|客户|联系人|收款人|"
    r"付款人|申请人|借款人|收款方|付款方|叫|尊敬的|专员|客服|员工|职工|同事|"
    r"收件人|寄件人|经办人|代办人|委托人|监护人|负责人|担保人|保证人|抵押人|出质人|投保人|被保险人|受益人|承租人|出租人|"
    r"代理人|法定代表人|车主|业主|房东|房主|共同借款人|自称|我姓|"
    r"爱人|老公|老婆|丈夫|妻子|太太|父亲|母亲|爸爸|妈妈|我爸|我妈|儿子|女儿|这里是|给|向|替)"
    r"(?P<sep>[）)】]?[是为叫=:：\s\"'“”]*)")
_LATIN_NAME = re.compile(r"[A-Z][A-Za-z'-]+(?:[ \t]+[A-Z][A-Za-z'-]+){1,2}\b")
_CN_CUE_BEFORE = re.compile(_CN_NAME_CUE.pattern + "$")
_CN_TITLE = re.compile(r"(?:先生|女士|小姐|老师|经理|阿姨|同志|客户)")  # ends a name
_CN_HONORIFIC = re.compile(r"(?:先生|女士|小姐|您好)")  # marks a customer's name (张伟您好 greets one)
_CN_PARTICLES = frozenset("吗呢吧啊呀了的么嘛哦")  # a sentence ends, no given name
_CN_NAME_CLOSE = re.compile(r"[，。,.!！?？；;、\s]|$")
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
_COMPOUND = frozenset(CN_COMPOUND_SURNAMES)
_CN_BEFORE_NAME = frozenset("被由和跟同让请找问帮陪及或")  # 被左建平借走: a preposition before a name





def _cn_surname_at(work: str, pos: int) -> str | None:
    if work[pos:pos + 2] in _COMPOUND:
        return work[pos:pos + 2]
    return work[pos] if work[pos:pos + 1] in CN_SURNAMES else None


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
    if surname and _CN_HAN.match(work[end:end + 1]) and work[end] not in _CN_PARTICLES and _CN_NAME_CLOSE.match(work, end + 1) \
            and work[pos:end + 1] not in _CN_NOT_NAME_WORDS:
        return end + 1  # 姓名：周想。 a one-character given name that is also a word, closed by punctuation
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
        four = work[pos:pos + 5]
        if len(four) >= 4 and all(_CN_HAN.match(c) for c in four[:4]) and not _CN_HAN.match(four[4:] or " "):
            return pos + 4  # 姓名：白玛央宗 / 欧阳若溪: four characters ending the field
        return end
    given, after = work[pos + len(surname):end], work[end:end + 1]
    hard_end = not after or not _CN_HAN.match(after)
    if work[pos:pos + 2] in _CN_NOT_NAME_WORDS:  # 余额低 no, 周一鸣， yes
        if not (len(given) == 2 and given[-1] in CN_GIVEN_NAME_CHARS and hard_end):
            return None
    boundary = hard_end or after in _CN_AFTER_NAME or _CN_TITLE.match(work, end)
    if all(c in CN_GIVEN_NAME_CHARS for c in given) or boundary:
        return end
    if len(given) == 2 and given[0] in CN_GIVEN_NAME_CHARS and len(surname) == 2:
        return end - 1  # 司徒敏收入: a compound surname with a one-character given name
    word = next(iter(jieba_loaded()[0].cut(work[pos:pos + 8], HMM=False)), "")  # 客户高远来办: jieba's word boundary
    if len(surname) < len(word) <= 3 and word_freq(word) < _RARE and word not in _CN_NOT_NAME_WORDS:
        return pos + len(word)
    return None


def _cn_free_start(work: str, start: int) -> bool:
    """Whether a name may start at ``start``: not glued to a preceding word."""
    if start == 0 or not _CN_HAN.match(work[start - 1]) or work[start - 1] in ZH_STOP or work[start - 1] in _CN_BEFORE_NAME:
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
    for start, ch in enumerate(work):  # cue-less 王建国 / 欧阳若溪: surname + two common given-name chars
        surname = _cn_surname_at(work, start)
        given = work[start + len(surname or "."):start + len(surname or ".") + 2]
        if surname and len(given) == 2 and all(c in CN_GIVEN_NAME_CHARS for c in given):
            if _cn_free_start(work, start) and work[start:start + 2] not in _CN_NOT_NAME_WORDS:
                cueless.append((start, start + len(surname) + 2))
    cued = [(s, e) for s, e in cued if not _cued_word(work[s:e])]
    dotted = [m.span() for m in _DOT_NAME.finditer(work)]
    jieba_found = _jieba_names(work) if _CN_HAN.search(work) else []
    titled = [(s, e) for s, e in titled if e - s == 1 or not _cued_word(work[s:e])]  # 容先生: a surname alone
    cueless = [(s, e) for s, e in cueless if not _ordinary_word(work[s:e])]
    framed = {span for span in cued + titled if _framed_reduplicated(work, *span)}
    found = [(s, e) for s, e in by_priority(tibetan_names(work), dotted, compound_surname_names(work), cued, _spaced_cn_names(work), titled,
                                            kin_titled(work), cueless, jieba_found, nicknames(work), signatures(work))
             if work[s] != work[s + 1] or (s, e) in framed]  # 谢谢, 常常: a reduplicated word, not surname + name
    found = by_priority(found, address_forms(work))
    found = by_priority(found, list_members(work, found))
    names = {work[s:e] for s, e in found if e - s >= 2}
    again = [m.span() for name in names for m in re.finditer(re.escape(name), work)]  # every later mention
    return by_priority(found, again)


# A name spaced out by OCR (姓名 李 建 国): two to four single Han characters, each apart from the next.
# The next field's label may follow (职工姓名:黄 晓 明 个人账号), but not a fifth single character.
_SPACED_HAN = re.compile(r"(?<![\u4e00-\u9fff])[\u4e00-\u9fff](?:[ \t]{1,3}[\u4e00-\u9fff](?![\u4e00-\u9fff])){1,3}"
                         r"(?![ \t]{0,3}[\u4e00-\u9fff](?![\u4e00-\u9fff]))")


def _spaced_cn_names(work: str) -> list[tuple[int, int]]:
    """OCR-spaced names: a known surname first; after a name cue on the line, or with common given-name characters."""
    spans = []
    for m in _SPACED_HAN.finditer(work):
        name = re.sub(r"[ \t]", "", m.group())
        surname = _cn_surname_at(name, 0)
        if surname is None or len(name) == len(surname) or _ordinary_word(name) or name in _CN_NOT_NAME_WORDS:
            continue
        given = name[len(surname):]
        line = re.sub(r"[ \t]", "", work[work.rfind("\n", 0, m.start()) + 1:m.start()])
        if _CN_CUE_BEFORE.search(line):
            if not any(c in _CN_NOT_GIVEN for c in given):
                spans.append(m.span())
        elif all(c in CN_GIVEN_NAME_CHARS and c not in _CN_GIVEN_STOP for c in given):
            spans.append(m.span())
    return spans


def _framed_reduplicated(work: str, start: int, end: int) -> bool:
    """尊敬的金金凤客户: a surname repeated as the first given-name character, closed by a title or punctuation.

    Neither pair may be a common word (谢谢, 常常, 金融 are), and only a cue or an
    honorific before it and a role word or a sentence end after it make it a name.
    """
    return (end - start == 3 and work[start] in CN_SURNAMES and word_freq(work[start:start + 2]) < _RARE
            and not _cued_word(work[start + 1:end])  # 金金融客户: 金融 is a word
            and bool(_CN_TITLE.match(work, end) or _CN_HONORIFIC.match(work, end) or _CN_NAME_CLOSE.match(work, end)))


def _greeted_cn_name(work: str, start: int, name: str) -> bool:
    """孙一鸣您好 / 邱文博先生 opening a sentence: surname + two Han characters, any given name, right before an honorific."""
    surname = _cn_surname_at(name, 0)
    opens = start == 0 or not _CN_HAN.match(work[start - 1]) or work[start - 1] in ZH_STOP
    return (surname is not None and len(name) - len(surname) == 2 and opens
            and all(_CN_HAN.match(c) and c not in _CN_NOT_GIVEN for c in name[len(surname):]))


def _plausible_cn_name(s: str) -> bool:
    surname = _cn_surname_at(s, 0)
    return surname is not None and len(s) - len(surname) <= 2 and all(c in CN_GIVEN_NAME_CHARS for c in s[len(surname):])


def detect_name(work: str) -> list[tuple[int, int, str]]:
    return by_priority([(s, e, "NAME") for s, e in _detect_cn_name(work)],
                       with_titles(work, detect_romanized_name(work)), detect_mixed_name(work),
                       with_titles(work, detect_en_name(work)))

