"""The values a synthetic generator plants in text: PII in its real-world formats, and non-PII numbers.

Each maker draws one value from the caller's ``random.Random`` for a language
(``"en"`` or ``"zh"``): Chinese ID-card numbers with a valid check digit
(:mod:`stdnum`), phone numbers (Chinese mobiles, US and UK numbers, in the ways
people write them), Luhn-valid bank cards, and personal names, postal addresses
and e-mail addresses from Faker's ``zh_CN``, ``en_US`` and ``en_GB`` providers
(not from the detector's own lists: Faker draws from the caller's ``rng``); and the numbers that are not PII and must survive
desensitization -- amounts, dates, times, reference numbers, card tails,
branch codes.  The message, dialogue and tabular generators
(:mod:`common.data.synthetic.messages`, :mod:`common.data.synthetic.dialogues`,
:mod:`common.data.synthetic.records`) all plant values made here, so a value
looks the same wherever it appears.  The makers consume ``rng`` in a fixed
order: equal seeds give equal values.
"""

from __future__ import annotations

import random
from functools import lru_cache

from faker import Faker

from stdnum import luhn
from stdnum.iso7064 import mod_11_2

# --------------------------------------------------------------------------- vocabularies
_CN_REGIONS = ("110101", "110105", "120101", "130102", "210102", "310104", "310115", "320102", "330106",
               "340104", "350203", "370202", "410105", "420106", "430103", "440106", "440305", "500103",
               "510104", "610113", "530102", "650102")
_EN_LOCALES = ("en_US", "en_GB")
_TITLES = ("Mr.", "Ms.", "Mrs.", "Dr.")


@lru_cache(maxsize=None)
def _faker(locale: str) -> Faker:
    """One Faker per locale; each draw binds it to the caller's ``rng`` (:func:`_fake`)."""
    return Faker(locale)


def _fake(rng: random.Random, locale: str) -> Faker:
    """Faker's ``locale`` providers drawing from ``rng``: the stream's seed fixes every value."""
    fake = _faker(locale)
    fake.random = rng
    return fake
_MONTHS = ("January February March April May June July August September October November December").split()


# --------------------------------------------------------------------------- makers
def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_id_card(rng: random.Random, lang: str) -> str:
    """A Chinese resident ID-card number with a valid check digit (a final X sometimes typed as x)."""
    body = (rng.choice(_CN_REGIONS) + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}"
            f"{rng.randint(1, 28):02d}" + _digits(rng, 3))
    check = mod_11_2.calc_check_digit(body)  # the PRC ID check (ISO 7064 mod 11-2)
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
    num = body + luhn.calc_check_digit(body)
    style = rng.random()
    if style < 0.4:
        return num
    sep = " " if style < 0.8 else "-"
    return sep.join(num[i:i + 4] for i in range(0, length, 4))


def make_email(rng: random.Random, lang: str) -> str:
    """An e-mail address from Faker's providers; Chinese mailboxes are often a phone or QQ number."""
    style = rng.random()
    if style < 0.15:
        local = "1" + rng.choice("3456789") + _digits(rng, 9)   # phone number as mailbox, common in China
    elif style < 0.3:
        local = str(rng.randint(10**7, 10**10))                 # QQ number
    else:
        local = _fake(rng, "zh_CN" if lang == "zh" else rng.choice(_EN_LOCALES)).user_name()
    fake = _fake(rng, "zh_CN" if lang == "zh" else rng.choice(_EN_LOCALES))
    return f"{local}@{fake.free_email_domain() if rng.random() < 0.8 else fake.domain_name()}"


def make_name(rng: random.Random, lang: str) -> tuple[str, str]:
    """A personal name from Faker's ``zh_CN``, ``en_US`` or ``en_GB`` providers: (text as written, planted value).

    A title is not part of the value; one English name in ten is a romanized Chinese name (``Xiuying Wang``).
    """
    if lang == "zh":
        name = _fake(rng, "zh_CN").name()
        return name, name
    if rng.random() < 0.1:
        name = _fake(rng, "zh_CN").romanized_name()
    else:
        fake = _fake(rng, rng.choice(_EN_LOCALES))
        name = f"{fake.first_name()} {fake.last_name()}"
    if rng.random() < 0.2:
        return f"{rng.choice(_TITLES)} {name}", name
    return name, name


def make_address(rng: random.Random, lang: str) -> str:
    """A postal address from Faker's providers: a Chinese province, city, district, street and number
    (building and flat optional), or a US or UK street address with its town and postcode."""
    if lang == "en":
        locale = rng.choice(_EN_LOCALES)
        fake = _fake(rng, locale)
        street = fake.street_address().replace("\n", ", ")
        if locale == "en_US":
            return f"{street}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}"
        return f"{street}, {fake.city()} {fake.postcode()}"
    fake = _fake(rng, "zh_CN")
    province, city, district = fake.province(), fake.city(), fake.district() + "区"
    head = rng.choice((province + city + district, city + district, district))
    tail = rng.choice(("", f"{rng.randint(1, 30)}栋{rng.randint(1, 3)}单元{rng.randint(1, 30)}0{rng.randint(1, 4)}室",
                       f"{rng.randint(1, 20)}号楼{rng.randint(1, 25)}0{rng.randint(1, 6)}室"))
    return f"{head}{fake.street_name()}{rng.randint(1, 999)}号{tail}"


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
