"""The values a synthetic generator plants in text: PII in its real-world formats, and non-PII numbers.

Each maker draws one value from the caller's ``random.Random`` for a language
(``"en"`` or ``"zh"``): Chinese ID-card numbers with a valid check digit,
phone numbers (Chinese mobiles, US and UK numbers, in the ways people write
them), Luhn-valid bank cards, e-mail addresses, personal names, postal
addresses; and the numbers that are not PII and must survive
desensitization -- amounts, dates, times, reference numbers, card tails,
branch codes.  The message, dialogue and tabular generators
(:mod:`common.data.synthetic.messages`, :mod:`common.data.synthetic.dialogues`,
:mod:`common.data.synthetic.records`) all plant values made here, so a value
looks the same wherever it appears.  The makers consume ``rng`` in a fixed
order: equal seeds give equal values.
"""

from __future__ import annotations

import random

from common.privacy.pii import cn_id_check_digit, luhn_check_digit

# --------------------------------------------------------------------------- vocabularies
_CN_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡"
                     "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙"
                     "史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤") + ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "令狐")
_CN_GIVEN = ("伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 霞 平 刚 秀英 秀兰 桂英 建华 建国 志强 丽娟 "
             "晓明 海燕 子涵 梓轩 浩然 欣怡 雨桐 思远 一鸣 嘉怡 俊杰 文博 佳琪 婷婷 娜娜 明辉 国庆 红梅 玉兰 "
             "春生 德华 晓东 雪梅 宇航 泽宇 诗涵 志明 淑珍 振华 立新 慧敏").split()
_EN_FIRST = ("James John Robert Michael William David Richard Joseph Thomas Charles Daniel Matthew Anthony "
             "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Emily Olivia Emma "
             "Sophie Oliver Harry George Jack Amelia Laura Rachel Hannah Chloe Lucy Priya Ahmed").split()
_EN_LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Wilson Taylor Anderson Moore Martin "
            "Jackson White Harris Clark Lewis Walker Hall Young King Wright Evans Roberts Green Baker Hughes "
            "Edwards O'Brien Murphy Patel Khan Nguyen Chen Wang").split()
_PINYIN = ("Wei Zhang", "Xiuying Wang", "Na Li", "Min Liu", "Jing Chen", "Lei Yang", "Jun Zhao", "Yan Huang")
_CN_REGIONS = ("110101", "110105", "120101", "130102", "210102", "310104", "310115", "320102", "330106",
               "340104", "350203", "370202", "410105", "420106", "430103", "440106", "440305", "500103",
               "510104", "610113", "530102", "650102")
_CN_ADDR = (  # (province/municipality prefix, city, district, roads)
    ("", "上海市", "浦东新区", ("世纪大道", "张杨路", "陆家嘴环路")), ("", "北京市", "朝阳区", ("建国路", "望京街", "朝阳北路")),
    ("广东省", "深圳市", "南山区", ("科技园路", "深南大道", "南海大道")), ("浙江省", "杭州市", "西湖区", ("文三路", "天目山路")),
    ("四川省", "成都市", "锦江区", ("春熙路", "东大街")), ("湖北省", "武汉市", "洪山区", ("珞喻路", "光谷大道")),
    ("江苏省", "南京市", "鼓楼区", ("中山北路", "北京西路")), ("", "天津市", "和平区", ("南京路", "解放北路")),
    ("山东省", "青岛市", "市南区", ("香港中路", "东海西路")), ("陕西省", "西安市", "雁塔区", ("小寨东路", "长安南路")),
)
_EN_ADDR = ("221B Baker Street, London", "1600 Amphitheatre Parkway, Mountain View, CA 94043",
            "{n} Oak Avenue, Springfield, IL 62704", "{n} High Street, Manchester M1 1AE",
            "{n} Maple Drive, Austin, TX 78701", "{n} Elm Road, Cambridge CB2 1TN",
            "{n} Sunset Blvd, Los Angeles, CA 90028", "{n} Park Lane, Apt 5B, Seattle, WA 98101",
            "10 Downing Street, London SW1A 2AA", "{n} Queen Street West, Toronto")
_EMAIL_DOMAINS = {"zh": ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "gmail.com"),
                  "en": ("gmail.com", "outlook.com", "hotmail.com", "yahoo.co.uk", "icloud.com", "acme-corp.com")}
_MONTHS = ("January February March April May June July August September October November December").split()


# --------------------------------------------------------------------------- makers
def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_id_card(rng: random.Random, lang: str) -> str:
    """A Chinese resident ID-card number with a valid check digit (a final X sometimes typed as x)."""
    body = (rng.choice(_CN_REGIONS) + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}"
            f"{rng.randint(1, 28):02d}" + _digits(rng, 3))
    check = cn_id_check_digit(body)
    if check == "X" and rng.random() < 0.25:
        check = "x"  # people do type it in lower case
    return body + check


def _cn_mobile(rng: random.Random) -> str:
    num = "1" + rng.choice("3456789") + _digits(rng, 9)
    a, b, c = num[:3], num[3:7], num[7:]
    return rng.choice((num, f"{a} {b} {c}", f"{a}-{b}-{c}", f"+86 {num}", f"+86{num}", f"+86 {a} {b} {c}",
                       f"(+86) {a}-{b}-{c}"))


def make_phone(rng: random.Random, lang: str) -> str:
    """A phone number: a Chinese mobile for ``zh`` (and sometimes ``en``), else a US or UK number."""
    if lang == "zh" or rng.random() < 0.15:
        return _cn_mobile(rng)
    area, mid, last = rng.randint(201, 989), rng.randint(200, 999), _digits(rng, 4)
    uk = f"{rng.randint(1000, 9999)} {_digits(rng, 4)}"
    return rng.choice((f"+1 {area}-{mid}-{last}", f"({area}) {mid}-{last}", f"{area}-{mid}-{last}",
                       f"+1 ({area}) {mid}-{last}", f"{area}.{mid}.{last}", f"+44 20 {uk}",
                       f"+44 7{_digits(rng, 3)} {_digits(rng, 6)}", f"020 {uk}", f"07{_digits(rng, 3)} {_digits(rng, 6)}"))


def make_bank_card(rng: random.Random, lang: str) -> str:
    """A Luhn-valid card number (UnionPay, Visa, Mastercard), plain or in groups of four."""
    if rng.random() < (0.7 if lang == "zh" else 0.2):
        prefix, length = rng.choice(("622202", "622848", "621700", "622588", "623058", "621483")), rng.choice((16, 19))
    else:
        prefix, length = rng.choice(("4", "4", "51", "52", "53", "54", "55")), 16
    body = prefix + _digits(rng, length - 1 - len(prefix))
    num = body + luhn_check_digit(body)
    style = rng.random()
    if style < 0.4:
        return num
    sep = " " if style < 0.8 else "-"
    return sep.join(num[i:i + 4] for i in range(0, length, 4))


def make_email(rng: random.Random, lang: str) -> str:
    """An e-mail address; Chinese mailboxes are often a phone or QQ number."""
    style = rng.random()
    if style < 0.15:
        local = "1" + rng.choice("3456789") + _digits(rng, 9)   # phone number as mailbox, common in China
    elif style < 0.3:
        local = str(rng.randint(10**7, 10**10))                 # QQ number
    else:
        first, last = rng.choice(_EN_FIRST).lower(), rng.choice(_EN_LAST).lower().replace("'", "")
        local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}"))
    return f"{local}@{rng.choice(_EMAIL_DOMAINS[lang])}"


def make_name(rng: random.Random, lang: str) -> tuple[str, str]:
    """A personal name: (text as written, planted value) -- a title is not part of the value."""
    if lang == "zh":
        name = rng.choice(_CN_SURNAMES) + rng.choice(_CN_GIVEN)
        return name, name
    name = rng.choice(_PINYIN) if rng.random() < 0.1 else f"{rng.choice(_EN_FIRST)} {rng.choice(_EN_LAST)}"
    if rng.random() < 0.2:
        return f"{rng.choice(('Mr.', 'Ms.', 'Mrs.', 'Dr.'))} {name}", name
    return name, name


def make_address(rng: random.Random, lang: str) -> str:
    """A postal address: a Chinese district, road and number (flat optional), or an English street address."""
    if lang == "en":
        return rng.choice(_EN_ADDR).format(n=rng.randint(1, 9999))
    province, city, district, roads = rng.choice(_CN_ADDR)
    head = rng.choice((province + city + district, city + district, district))
    tail = rng.choice(("", f"{rng.randint(1, 30)}栋{rng.randint(1, 3)}单元{rng.randint(1, 30)}0{rng.randint(1, 4)}室",
                       f"{rng.randint(1, 20)}号楼{rng.randint(1, 25)}0{rng.randint(1, 6)}室"))
    return f"{head}{rng.choice(roads)}{rng.randint(1, 999)}号{tail}"


def make_amount(rng: random.Random, lang: str) -> str:
    """A money amount with its currency, as a customer writes it."""
    value = rng.choice((rng.randint(1, 999), rng.randint(1000, 99999), rng.randint(100000, 2000000)))
    cents = f"{rng.randint(0, 99):02d}"
    if lang == "zh":
        return rng.choice((f"{value}元", f"{value:,}.{cents}元", f"¥{value:,}.{cents}", f"{value}块", f"{rng.randint(2, 80)}万元"))
    return rng.choice((f"${value:,}.{cents}", f"${value:,}", f"£{value:,}", f"{value:,}.{cents} USD", f"€{value}"))


def make_date(rng: random.Random, lang: str) -> str:
    """A calendar date between 2019 and 2025, in one of the language's usual formats."""
    y, m, d = rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28)
    if lang == "zh":
        return rng.choice((f"{y}年{m}月{d}日", f"{y}-{m:02d}-{d:02d}", f"{m}月{d}日", f"{m}月{d}号", f"{y}/{m:02d}/{d:02d}"))
    return rng.choice((f"{y}-{m:02d}-{d:02d}", f"{_MONTHS[m - 1]} {d}, {y}", f"{d:02d}/{m:02d}/{y}",
                       f"{m:02d}/{d:02d}/{y}", f"{d} {_MONTHS[m - 1]} {y}"))


def make_time(rng: random.Random, lang: str) -> str:
    """A time of day."""
    h, mi = rng.randint(0, 23), rng.randint(0, 59)
    if lang == "zh":
        return rng.choice((f"{h}:{mi:02d}", f"下午{rng.randint(1, 11)}点{mi}分", f"上午{rng.randint(7, 11)}点"))
    return rng.choice((f"{h}:{mi:02d}", f"{rng.randint(1, 12)}:{mi:02d} {rng.choice(('AM', 'PM', 'pm'))}"))


def make_ref(rng: random.Random, lang: str) -> str:
    """A transaction or order reference: 8-12 digits, sometimes after ``TX`` or ``ORD-``."""
    length = rng.randint(8, 12)
    first = rng.choice("23456789") if length == 11 else rng.choice("123456789")  # 11 digits from 1 = a phone
    ref = first + _digits(rng, length - 1)
    return rng.choice((ref, ref, ref, f"TX{ref}", f"ORD-{ref}"))


def make_card_tail(rng: random.Random, lang: str) -> str:
    """The last four digits of a card, as written when a customer names a card by its tail."""
    return _digits(rng, 4)


def make_branch_code(rng: random.Random, lang: str) -> str:
    """A branch code: four digits starting with 0."""
    return "0" + _digits(rng, 3)
