"""Check-digit functions for the independent PII evaluation set (tests/data/pii_eval).

Written from public format descriptions only (GB 11643-1999, ISO 7812 Luhn,
ISO 13616 IBAN, the Hong Kong and Taiwan ID schemes); they share nothing with the
detector under test. Pure python, no dependencies.
"""

from __future__ import annotations

import datetime as _dt
import re

# Chinese numerals as people read digits aloud (幺 = 1 on the phone, 两 = 2, 〇/零/洞 = 0).
_ZH_DIGITS = {
    "零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "二": "2", "两": "2",
    "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
    "叉": "X",
}
_FULLWIDTH = {chr(0xFF10 + i): str(i) for i in range(10)}
_FULLWIDTH.update({chr(0xFF21 + i): chr(ord("A") + i) for i in range(26)})
_FULLWIDTH.update({chr(0xFF41 + i): chr(ord("A") + i) for i in range(26)})


_EN_DIGITS = {w: str(i) for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))}
_EN_DIGITS["oh"] = "0"
_EN_WORD = re.compile(r"\b(" + "|".join(_EN_DIGITS) + r")\b", re.I)


def normalize(value: str) -> str:
    """Upper-case ASCII letters and digits only: drops separators, maps full-width, Chinese and spoken English digits."""
    value = _EN_WORD.sub(lambda m: _EN_DIGITS[m.group(1).lower()], value)
    out = []
    for ch in value:
        ch = _FULLWIDTH.get(ch, _ZH_DIGITS.get(ch, ch))
        if ch.isascii() and ch.isalnum():
            out.append(ch.upper())
    return "".join(out)


# --- PRC resident ID (GB 11643-1999) -------------------------------------------------
_GB_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB_CHECK = "10X98765432"


def gb11643_check_char(first17: str) -> str:
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"need 17 digits, got {first17!r}")
    return _GB_CHECK[sum(int(d) * w for d, w in zip(first17, _GB_WEIGHTS)) % 11]


def _valid_date(y: int, m: int, d: int) -> bool:
    try:
        _dt.date(y, m, d)
    except ValueError:
        return False
    return True


def valid_prc_id(value: str) -> bool:
    """18-digit ID with a valid check char and birth date, or an old 15-digit ID with a plausible date."""
    v = normalize(value)
    if len(v) == 18:
        if not (v[:17].isdigit() and (v[17].isdigit() or v[17] == "X")):
            return False
        y, m, d = int(v[6:10]), int(v[10:12]), int(v[12:14])
        return 1900 <= y <= 2024 and _valid_date(y, m, d) and gb11643_check_char(v[:17]) == v[17]
    if len(v) == 15:
        if not v.isdigit():
            return False
        y, m, d = 1900 + int(v[6:8]), int(v[8:10]), int(v[10:12])
        # Old IDs were issued 1984-1999, so the holder was born in the 20th century.
        return _valid_date(y, m, d) and v[0] in "1234568"
    return False


# --- Luhn (bank cards, IMEI) ---------------------------------------------------------
def luhn_ok(digits: str) -> bool:
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def luhn_check_digit(payload: str) -> str:
    for c in "0123456789":
        if luhn_ok(payload + c):
            return c
    raise AssertionError("unreachable")


def valid_bank_card(value: str) -> bool:
    v = normalize(value)
    return v.isdigit() and 16 <= len(v) <= 19 and luhn_ok(v)


def valid_imei(value: str) -> bool:
    v = normalize(value)
    return len(v) == 15 and v.isdigit() and luhn_ok(v)


# --- IBAN (ISO 13616, mod 97) --------------------------------------------------------
IBAN_LENGTHS = {
    "AE": 23, "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18,
    "FR": 27, "GB": 22, "GR": 27, "HU": 28, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15,
    "PL": 28, "PT": 25, "SA": 24, "SE": 24, "TR": 26,
}


def _iban_number(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s))


def iban_ok(value: str) -> bool:
    v = normalize(value)
    if len(v) < 15 or not v[:2].isalpha() or not v[2:4].isdigit():
        return False
    if IBAN_LENGTHS.get(v[:2], len(v)) != len(v):
        return False
    return _iban_number(v[4:] + v[:4]) % 97 == 1


def iban_check_digits(country: str, bban: str) -> str:
    return f"{98 - _iban_number(bban + country + '00') % 97:02d}"


# --- Hong Kong ID --------------------------------------------------------------------
def _hk_val(c: str) -> int:
    return 36 if c == " " else (ord(c) - 55 if c.isalpha() else int(c))


def hkid_check_char(body: str) -> str:
    """body: one or two letters + 6 digits, e.g. 'A123456'."""
    body = body.upper()
    if len(body) == 7:
        body = " " + body
    if not (len(body) == 8 and body[2:].isdigit()):
        raise ValueError(body)
    total = sum(_hk_val(c) * w for c, w in zip(body, range(9, 1, -1)))
    r = (11 - total % 11) % 11
    return "A" if r == 10 else str(r)


def valid_hkid(value: str) -> bool:
    v = normalize(value)
    m = re.fullmatch(r"([A-Z]{1,2}\d{6})([0-9A])", v)
    return bool(m) and hkid_check_char(m.group(1)) == m.group(2)


# --- Taiwan national ID --------------------------------------------------------------
_TW_LETTERS = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34, "J": 18,
    "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25, "S": 26, "T": 27,
    "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}


def _tw_sum(nine: str) -> int:
    n = _TW_LETTERS[nine[0]]
    digits = [n // 10, n % 10] + [int(c) for c in nine[1:]]
    return sum(d * w for d, w in zip(digits, (1, 9, 8, 7, 6, 5, 4, 3, 2, 1)))


def tw_check_digit(first9: str) -> str:
    first9 = first9.upper()
    return str((10 - _tw_sum(first9) % 10) % 10)


def valid_tw_id(value: str) -> bool:
    v = normalize(value)
    if not re.fullmatch(r"[A-Z][12]\d{8}", v):
        return False
    return (_tw_sum(v[:9]) + int(v[9])) % 10 == 0
