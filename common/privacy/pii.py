"""PII vocabulary and checksum validators shared across fedbank.

This module is the single definition of *which* kinds of personally
identifiable information (PII) fedbank knows about and of the typed
placeholder each kind is replaced with.  Both the synthetic data generator
(:mod:`common.data.synthetic.messages`) and the branch-side detector
(:mod:`common.privacy.desensitize`) use it, so a placeholder seen in training text
always means the same thing.

It also holds the pure checksum validators the two sides agree on:

* :func:`luhn_valid` / :func:`luhn_check_digit` -- the Luhn (mod 10) check
  used by payment card numbers (UnionPay, Visa, Mastercard, ...).
* :func:`cn_id_check_digit` / :func:`cn_id_valid` -- the check character of
  the 18-digit PRC resident identity card number (GB 11643-1999, ISO 7064
  MOD 11-2) and a plausibility check of its region and birth-date segments.
* :func:`iban_valid` -- the ISO 13616 mod-97 check of an IBAN.

It also holds the name and place lexicons the detector matches against.
"""

from __future__ import annotations

import datetime as _dt

from common.errors import DataError

PII_TYPES: tuple[str, ...] = (
    "ID_CARD", "PHONE", "BANK_CARD", "EMAIL", "NAME", "ADDRESS",
    "HK_ID", "MO_ID", "TW_ID", "PERMIT", "PASSPORT", "SSN", "MEDICAL_INSURANCE", "IBAN", "ACCOUNT",
    "DATE_OF_BIRTH", "LICENSE_PLATE", "IP_ADDRESS", "DEVICE_ID", "SOCIAL_ID", "EMPLOYER", "LOCATION")
"""The PII type names, in canonical order (the first six are the original vocabulary of the signed claim).

``ID_CARD`` is a PRC resident ID (18 or 15 digits, also the 81/82/83 residence
permits of Hong Kong, Macau and Taiwan residents); ``PERMIT`` a Mainland travel
permit (回乡证, 台胞证, 往来港澳通行证); ``SSN`` a social-security number (US SSN,
UK National Insurance, PRC 社保卡); ``ACCOUNT`` a bank account number that is
not a card or IBAN; ``SOCIAL_ID`` a WeChat/QQ/Alipay/Venmo account; ``EMPLOYER``
and ``LOCATION`` a person's employer and precise whereabouts.
"""

SYNTHETIC_TYPES: tuple[str, ...] = PII_TYPES[:6]
"""The types the synthetic generators plant (:mod:`common.data.synthetic`)."""

DETECTOR_VERSION = "2.2"
"""Version of the branch's detector; the measured recall (``measured_recall.json``) is for this version."""

PLACEHOLDERS: dict[str, str] = {name: f"[{name}]" for name in PII_TYPES}
"""Typed placeholder that replaces a detected value of each PII type."""

CN_PROVINCE_CODES: frozenset[str] = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)
"""First two digits of every PRC administrative division code (GB/T 2260)."""

# --------------------------------------------------------------------------- lexicons
# Name and place vocabularies the detectors (common.privacy.detect_names, common.privacy.detect_addresses) match.  The
# synthetic generator deliberately keeps its own, smaller lists, so that recall measured
# on generated data is not recall on the detector's own vocabulary.

CN_COMPOUND_SURNAMES: tuple[str, ...] = tuple(
    "欧阳 司马 诸葛 上官 东方 皇甫 慕容 令狐 尉迟 夏侯 公孙 长孙 宇文 司徒 端木 独孤 南宫 西门 轩辕 呼延 澹台 万俟 闻人 赫连".split())
"""Two-character (compound) Chinese surnames."""

CN_SURNAMES: frozenset[str] = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫"
    "孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童"
    "凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连"
    "芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖"
    "巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权"
    "强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘"
    "亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉"
    "植衡富尧闭由")
"""Single-character Chinese surnames, most common first."""

CN_GIVEN_NAME_CHARS: frozenset[str] = frozenset(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉萍红玲芬燕彩春菊兰凤洁梅琳素云莲雪荣爱香月媛瑞佳嘉琼"
    "珍莉晶妍茜秋珊莎锦青倩婷婉娴瑾颖露瑶怡雁蓓丹蓉君琴蕊薇菁梦岚婕馨韵艺咏卿聪澜纯悦昭冰爽茗羽欣滢筠柔"
    "凝晓欢霄枫芸菲伊宜舒荔妮宝程恒鸿桦剑娇晴睿烁威雯萱彦宇雨忠宗曼紫逸贤蝶菡翠毅俊峰辉志义兴良海波贵福"
    "龙元祥才武彬富顺信子昌康星岩茂进林坚彪博诚敬震振壮思群豪邦承乐绍功松善厚庆民友裕河哲江浩亮政谦奇翰"
    "朗伯宏若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰建致树炎德泰盛雄琛钧冠策腾楠榕航弘轩涵然桐远鸣琪秀淑立梓诗慧国生新东")
"""Characters common in Chinese given names."""

EN_FIRST_NAMES: frozenset[str] = frozenset(
    "James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew Anthony "
    "Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan Jacob "
    "Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Alexander Patrick "
    "Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Zachary Douglas Peter Kyle Noah Ethan Jeremy Walter "
    "Christian Keith Roger Terry Austin Sean Gerald Carl Harold Dylan Arthur Lawrence Jordan Jesse Bryan Billy "
    "Bruce Gabriel Joe Logan Alan Juan Albert Willie Elijah Wayne Randy Vincent Liam Oliver Harry Charlie Oscar "
    "Leo Alfie Freddie Archie Theo Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen "
    "Lisa Nancy Betty Sandra Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah "
    "Stephanie Rebecca Sharon Laura Cynthia Dorothy Amy Kathleen Angela Shirley Emma Brenda Pamela Nicole Anna "
    "Samantha Katherine Christine Debra Rachel Carolyn Janet Maria Olivia Heather Helen Catherine Diane Julie "
    "Victoria Joyce Lauren Kelly Christina Ruth Joan Virginia Judith Evelyn Hannah Andrea Megan Cheryl "
    "Jacqueline Madison Teresa Abigail Sophia Martha Sara Gloria Janice Kathryn Ann Isabella Judy Charlotte "
    "Julia Grace Amber Alice Jean Denise Frances Danielle Marilyn Natalie Beverly Diana Brittany Theresa Kayla "
    "Alexis Doris Lori Tiffany Sophie Amelia Isla Ava Mia Lily Chloe Ella Lucy Ruby Poppy Priya Ahmed "
    "Mohammed Muhammad Ali Fatima Aisha Raj Arjun Ananya Wei Li Jing Carlos Luis Miguel Pedro Diego Javier Pablo "
    "Sofia Lucia Ana Elena Carmen Isabel Marco Luca Giulia Francesca Giovanni Omar Yusuf Hassan Ibrahim Layla Zainab "
    "Priya Rahul Amit Sanjay Deepak Anjali Hiroshi Yuki Kenji Haruto Sakura Minh Linh Ivan Olga Dmitri Anastasia "
    "Pierre Jean-Pierre Camille Louis Hans Klaus Sven Lars Ingrid Astrid Kwame Chinedu Ngozi Tunde Femi".split())
"""Common first names in English-language messages (no words like May or Will)."""

CN_PLACE_NAMES: tuple[str, ...] = tuple(
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 四川 "
    "贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门 深圳 广州 杭州 南京 苏州 成都 武汉 西安 "
    "青岛 大连 厦门 宁波 长沙 郑州 沈阳 哈尔滨 长春 济南 合肥 福州 昆明 南宁 贵阳 南昌 太原 石家庄 呼和浩特 兰州 "
    "乌鲁木齐 拉萨 银川 西宁 海口 三亚 无锡 佛山 东莞 珠海 温州 烟台 常州 徐州 绍兴 嘉兴 金华 泉州 中山 惠州".split())
"""Chinese provinces and major cities, without their 省/市 suffix."""

_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK_CHARS = "10X98765432"
_EARLIEST_BIRTH_YEAR = 1900


def _require_digits(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise DataError(f"{what} must be a string of ASCII digits, got {value!r}")


def luhn_check_digit(partial: str) -> str:
    """Compute the Luhn check digit to append to ``partial``.

    Args:
        partial: The card number without its final check digit (ASCII digits).

    Returns:
        The single check digit, as a one-character string.

    Raises:
        DataError: If ``partial`` is empty or not made of ASCII digits.
    """
    _require_digits(partial, "Luhn payload")
    total = 0
    # Walking right to left, the digit next to the (future) check digit is doubled.
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    """Tell whether ``digits`` passes the Luhn (mod 10) check.

    Args:
        digits: A candidate number made of ASCII digits only (no separators).

    Returns:
        True if it has at least two digits and its last digit is the correct
        Luhn check digit; False otherwise (including for non-digit input).
    """
    if not isinstance(digits, str) or len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    return luhn_check_digit(digits[:-1]) == digits[-1]


def cn_id_check_digit(first17: str) -> str:
    """Compute the check character of an 18-digit PRC resident ID number.

    Implements GB 11643-1999 (ISO 7064 MOD 11-2): the weighted sum of the
    first 17 digits modulo 11 indexes ``"10X98765432"``.

    Args:
        first17: The first 17 digits of the ID number.

    Returns:
        One of ``"0"``-``"9"`` or ``"X"`` (a check value of 10).

    Raises:
        DataError: If ``first17`` is not exactly 17 ASCII digits.
    """
    _require_digits(first17, "ID number body")
    if len(first17) != 17:
        raise DataError(f"ID number body must have 17 digits, got {len(first17)}")
    total = sum(int(ch) * w for ch, w in zip(first17, _CN_ID_WEIGHTS))
    return _CN_ID_CHECK_CHARS[total % 11]


def cn_id_birth_date_plausible(yyyymmdd: str, today: _dt.date | None = None) -> bool:
    """Tell whether an 8-digit ``YYYYMMDD`` segment is a plausible birth date.

    Args:
        yyyymmdd: The birth-date segment of an ID number (digits 7-14).
        today: Reference date (defaults to today); births after it are rejected.

    Returns:
        True if the segment is a real calendar date between 1900-01-01 and today.
    """
    if len(yyyymmdd) != 8 or not yyyymmdd.isascii() or not yyyymmdd.isdigit():
        return False
    try:
        born = _dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return _EARLIEST_BIRTH_YEAR <= born.year and born <= (today or _dt.date.today())


def cn_id_structure_plausible(id18: str) -> bool:
    """Tell whether an 18-character ID has a known province code and a plausible birth date.

    This ignores the check character, so it also accepts numbers with a
    mistyped final digit.

    Args:
        id18: 17 digits followed by a digit or ``X``/``x``.

    Returns:
        True if the shape, province code and birth-date segment are plausible.
    """
    if not isinstance(id18, str) or len(id18) != 18:
        return False
    body, last = id18[:17], id18[17]
    if not (body.isascii() and body.isdigit()) or last not in "0123456789Xx":
        return False
    return body[:2] in CN_PROVINCE_CODES and cn_id_birth_date_plausible(body[6:14])


def cn_id_valid(id18: str) -> bool:
    """Tell whether ``id18`` is a valid 18-character PRC resident ID number.

    Checks the shape (17 digits + digit or ``X``, case-insensitive), the
    province code, that digits 7-14 form a plausible birth date, and the
    MOD 11-2 check character.

    Args:
        id18: The candidate ID number without separators.

    Returns:
        True if every check passes, False otherwise.
    """
    if not cn_id_structure_plausible(id18):
        return False
    return cn_id_check_digit(id18[:17]) == id18[17].upper()


def iban_valid(iban: str) -> bool:
    """Tell whether ``iban`` is a well-formed IBAN with a correct ISO 13616 check (mod 97).

    Args:
        iban: Candidate IBAN; spaces are ignored, letters may be either case.

    Returns:
        True if it has a country code, two check digits, 11-30 alphanumerics
        and its mod-97 remainder is 1.
    """
    if not isinstance(iban, str):
        return False
    compact = iban.replace(" ", "").upper()
    if not (15 <= len(compact) <= 34 and compact.isascii() and compact.isalnum()
            and compact[:2].isalpha() and compact[2:4].isdigit()):
        return False
    return int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])) % 97 == 1
