"""Detector for NAME: Chinese names found by their position and shape rather than by a cue word.

:mod:`common.privacy.detect_names` finds names after cues, before honorifics and
with common given-name characters.  This module adds the classes those rules
miss, each judged with jieba's dictionary (a word jieba knows as something
other than a name, or a frequent one, is an ordinary word):

* Tibetan names: two of the common Tibetan name elements (扎西, 卓玛, 次仁 ...)
  written together (扎西顿珠, 次仁央金); Tibetan names have no surname, so
  the surname rules never see them;
* kinship-titled names: a surname before 阿姨/叔叔/大爷/哥/姐 ... (王阿姨,
  蔺叔), a two-character given name before 哥/姐 (建军哥); the title is masked too;
* compound surnames that are no common word, with two given-name characters (欧阳若溪);
* nicknames: 老/小 + a surname (老刘, 小吴) that is no dictionary word (小米, 老公);
* a reduplicated given name used as a form of address at the start of a line (琪琪，);
* a signature: a line that holds only a surname and a given name, after the
  first line of a letter (``...\\n唐可欣\\n180...``);
* list members: an item of a 、-separated list whose neighbour is a name (季文涛、简思琪、佟大为).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from types import ModuleType

from common.privacy.lexicons import CN_COMPOUND_SURNAMES, CN_GIVEN_CHARS, CN_SURNAMES

# Common elements of Tibetan personal names (each a two-character transcription).
_TIBETAN = ("扎西 次仁 卓玛 央金 顿珠 白玛 央宗 格桑 达瓦 尼玛 多吉 拉姆 措姆 平措 旦增 丹增 洛桑 罗布 德吉 曲珍 边巴 "
            "普布 米玛 巴桑 索朗 索南 拉巴 次旦 强巴 益西 贡布 桑珠 仁增 嘎玛 才旦 卓嘎 德庆 群培 加措 嘉措 晋美 土登 朗杰 "
            "措吉 玉珍 拉珍 旺堆 旺姆 仁青 次珍 泽仁 泽旺 央拉 达娃 琼达 拉宗 梅朵 格列 多杰 次央 白珍 旺杰 贡嘎").split()
_TIBETAN_NAME = re.compile(f"(?:{'|'.join(_TIBETAN)}){{2,3}}")
_KIN = re.compile(r"阿姨|叔叔|阿叔|大爷|大妈|大娘|奶奶|爷爷|婆婆|大哥|大姐|姐姐|哥哥|叔|姨|哥|姐|伯|婶|嫂")
_FREE_BEFORE = frozenset("的了是在我你他她与及到从把给请向为于这那和跟同让找问被由替帮叫户人")  # may precede a name
_AFTER_WORD = frozenset("的了是在说也都就还已又让给跟和把被来去要会能呢吧啊呀，。,.!！?？、；;：: \n")
_NICK = re.compile(r"[老小阿]([\u4e00-\u9fff])")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LINE_NAME = re.compile(r"(?m)^[ \t]*(?:[\u4e00-\u9fff]{2,6}部[ \t]+)?([\u4e00-\u9fff]{2,4})[ \t]*$")
_CLOSINGS = frozenset("此致 敬礼 祝好 顺祝 商祺 谢谢 多谢 感谢 您好 你好 附件 如下 落款 签名".split())
_LIST_ITEM = re.compile(r"[\u4e00-\u9fff]{2,4}")
_COMPOUND = frozenset(CN_COMPOUND_SURNAMES)


@functools.cache
def jieba_loaded() -> tuple[ModuleType, ModuleType]:
    """``jieba`` and ``jieba.posseg``, their dictionary loaded: on first use, so that a process that never sees
    Chinese text (an English branch, the CLI, the ServerApp) does not spend 1.5 s of CPU loading it."""
    import jieba
    from jieba import posseg

    jieba.setLogLevel(logging.WARNING)  # no 'Building prefix dict' lines on a command's stderr
    jieba.dt.check_initialized()  # FREQ is replaced, not filled, when jieba loads: read it only after this
    return jieba, posseg


class _Dictionary:
    """A read-only view of one of jieba's dictionaries, which loads jieba on the first lookup."""

    def __init__(self, table: Callable[[], dict]) -> None:
        self._table = table

    def get(self, word: str, default=None):
        return self._table().get(word, default)

    def __getitem__(self, word: str):
        return self._table()[word]


TAGS = _Dictionary(lambda: jieba_loaded()[1].dt.word_tag_tab)  # word -> part of speech
_FREQ = _Dictionary(lambda: jieba_loaded()[0].dt.FREQ)  # word -> frequency (0 for words it knows only as pieces)
_COMMON = 300  # a word jieba has seen this often is an ordinary word, not a name


def word_freq(word: str) -> int:
    """How often jieba's dictionary has seen ``word`` (0 if it is no word of its own)."""
    return _FREQ.get(word, 0)


def _word(word: str) -> bool:
    """Whether jieba knows ``word`` as a word in its own right."""
    return _FREQ.get(word, 0) > 0


def _surname(text: str) -> str | None:
    two = text[:2]
    if two in CN_COMPOUND_SURNAMES:
        return two
    return text[:1] if text[:1] in CN_SURNAMES else None


def tibetan_names(work: str) -> list[tuple[int, int]]:
    return [m.span() for m in _TIBETAN_NAME.finditer(work)]


def kin_titled(work: str) -> list[tuple[int, int]]:
    """王阿姨, 蔺叔, 建军哥: a surname, or a two-character given name, with a kinship title."""
    spans = []
    for m in _KIN.finditer(work):
        s = m.start()
        one = work[s - 1:s] if s else ""
        alone = len(m.group()) > 1 or (work[m.end():m.end() + 1] or " ") in _AFTER_WORD and _free_before(work, s - 1)
        if one and one in CN_SURNAMES and alone and not _word(one + m.group()) and not _word(work[s - 2:s + 1]):
            spans.append((s - 1, m.end()))
            continue
        given = work[max(0, s - 2):s]
        if (len(given) == 2 and m.group() in ("哥", "姐") and all(c in CN_GIVEN_CHARS for c in given)
                and _FREQ.get(given, 0) < _COMMON and not _word(given[1] + m.group())):
            spans.append((s - 2, m.end()))
    return spans


def nicknames(work: str) -> list[tuple[int, int]]:
    """老刘, 小吴: 老/小/阿 and a surname, neither half of a longer dictionary word (小米, 老公, 小王子)."""
    spans = []
    for m in _NICK.finditer(work):
        s, ch = m.start(), m.group(1)
        if ch not in CN_SURNAMES or (_word(m.group()) and (not _is_name_tag(m.group()) or _FREQ[m.group()] >= _COMMON)):
            continue  # 小米, 老公: words
        if _word(work[s - 1:s + 1]) or _word(work[s + 1:s + 3]) or _word(work[s + 1:s + 4]):
            continue  # 大小王: 大小; 小金库: 金库
        spans.append((s, s + 2))
    return spans


def _is_name_tag(word: str) -> bool:
    return TAGS.get(word, "").startswith("nr")


def _free_before(work: str, pos: int) -> bool:
    return pos <= 0 or not _HAN.match(work[pos - 1]) or work[pos - 1] in _FREE_BEFORE


def compound_surname_names(work: str) -> list[tuple[int, int]]:
    """欧阳若溪生活费: a compound surname that is no common word (东方, 第五, 西门 are) and two more characters."""
    spans = []
    for i in range(len(work) - 3):
        two = work[i:i + 2]
        if two in _COMPOUND and _FREQ.get(two, 0) < 800 and not TAGS.get(two, "").startswith(("m", "s")) \
                and all(_HAN.match(c) and c not in _AFTER_WORD for c in work[i + 2:i + 4]) and _free_before(work, i) \
                and _FREQ.get(work[i + 3:i + 5], 0) < _COMMON:  # 上官婷收入: 收入 is a word, the name is 上官婷
            spans.append((i, i + 4))
    return spans


def address_forms(work: str) -> list[tuple[int, int]]:
    """琪琪，... : a reduplicated given-name character opening a line, followed by punctuation."""
    spans = []
    for m in re.finditer(r"(?m)^[ \t]*(([\u4e00-\u9fff])\2)(?=[，,!！:：\s])", work):
        if m.group(2) in CN_GIVEN_CHARS and _FREQ.get(m.group(1), 0) < 100:
            spans.append(m.span(1))
    return spans


def signatures(work: str) -> list[tuple[int, int]]:
    """A line after the first holding only a name (the signature of a letter), surname first."""
    spans = []
    for m in _LINE_NAME.finditer(work):
        name = m.group(1)
        surname = _surname(name)
        if m.start() == 0 or surname is None or len(name) == len(surname) or name in _CLOSINGS:
            continue
        if _word(name) and _FREQ[name] >= _COMMON:
            continue
        if all(_HAN.match(c) for c in name) and len(name) - len(surname) <= 2:
            spans.append(m.span(1))
    return spans


def list_members(work: str, found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Items of a 、-separated list next to a name found, of a name's shape (a surname and one or two characters)."""
    spans: list[tuple[int, int]] = []
    queue, seen = list(found), set(found)
    while queue:
        s, e = queue.pop()
        items = []
        if work[e:e + 1] == "、":
            items.append(_item_after(work, e + 1))
        if s >= 1 and work[s - 1] == "、":
            items.append(_item_before(work, s - 1))
        for item in items:
            if item and item not in seen and not (_word(work[item[0]:item[1]]) and _FREQ[work[item[0]:item[1]]] >= _COMMON):
                seen.add(item)
                spans.append(item)
                queue.append(item)
    return spans


_ITEM_STOP = frozenset("、的了是在和与及等们")


def _item_after(work: str, pos: int) -> tuple[int, int] | None:
    surname = _surname(work[pos:pos + 2])
    if surname is None:
        return None
    end = pos + len(surname)
    while end < pos + len(surname) + 2 and _HAN.match(work[end:end + 1] or " ") and work[end] not in _ITEM_STOP:
        end += 1
    return (pos, end) if end - pos > len(surname) else None


def _item_before(work: str, end: int) -> tuple[int, int] | None:
    for length in (3, 2):
        start = end - length
        if start >= 0 and all(_HAN.match(c) and c not in _ITEM_STOP for c in work[start:end]) and _surname(work[start:end]):
            return start, end
    return None
