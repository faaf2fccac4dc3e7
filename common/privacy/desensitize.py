"""Branch-side PII detection and masking, applied to raw text before tokenization.

No named-entity model can be downloaded into a branch, so this is a rule
engine: format regexes confirmed by checksums for numeric identifiers, and
context cues plus name/place vocabularies (:mod:`common.privacy.pii`) for names and
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

The detectors live in :mod:`common.privacy.detect_numbers` (1-4),
:mod:`common.privacy.detect_addresses` (5) and :mod:`common.privacy.detect_names` (6); span
claiming in :mod:`common.privacy.spans`.  This module is the engine and the
public API: it reads full-width text as ASCII, runs the detectors in the
order above, masks with typed placeholders and counts, and masks structured
records (identifier columns wholly).

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

from common.privacy.detect_addresses import detect_address
from common.privacy.detect_names import detect_name
from common.privacy.detect_numbers import detect_bank_card, detect_email, detect_id_card, detect_phone
from common.errors import ConfigError, DataError
from common.privacy.pii import PII_TYPES, PLACEHOLDERS
from common.privacy.spans import BLOCK, claim

Span = tuple[int, int, str]
# Chinese input methods often type full-width digits and letters (１３８…, ＠); detection sees
# them as ASCII.  The mapping is one character to one, so spans still index the original text.
_HALF_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E) if chr(0x21 + i).isalnum() or chr(0x21 + i) in "+-@.()"}
_HALF_WIDTH.update({0x3000: 0x20, ord(BLOCK): 0x20})


_DETECTORS = (("EMAIL", detect_email), ("ID_CARD", detect_id_card), ("BANK_CARD", detect_bank_card),
              ("PHONE", detect_phone), ("ADDRESS", detect_address), ("NAME", detect_name))


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
        fresh = sorted(claim(taken, detect(work)))  # drops overlaps with earlier detectors' spans
        if fresh:
            claimed += [(s, e, pii_type) for s, e in fresh]
            pieces, cursor = [], 0
            for s, e in fresh:  # blank the claimed spans so later detectors cannot see them
                pieces += [work[cursor:s], BLOCK * (e - s)]
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
            types: PII type names from :data:`common.privacy.pii.PII_TYPES` (case-insensitive).
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
