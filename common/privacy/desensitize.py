"""Branch-side PII detection and masking, applied to raw text before tokenization.

No named-entity model can be downloaded into a branch, so this is a rule
engine built on maintained libraries: :mod:`phonenumbers`, :mod:`stdnum`,
:mod:`schwifty`, :mod:`cn2an`, :mod:`jieba` and :mod:`ahocorasick`, with Faker's
locale name lists (:mod:`common.privacy.lexicons`).  Each detected value is
replaced by its typed placeholder (``[PHONE]`` ...; the vocabulary is
:data:`common.privacy.pii.PII_TYPES`).  The detector never looks at the
synthetic generator's answer key.

The text is first normalized (:mod:`common.privacy.normalize`: NFKC, Chinese
and English digits read aloud, values spaced out by OCR) and every span found
is mapped back to the original characters.  Detectors then run in a fixed
order; each claims its spans, so a later detector never sees, or masks
inside, text an earlier one took:

0. employers and precise locations (:mod:`common.privacy.detect_whereabouts`), cue-bound
   phrases that may hold a brand (the Apple Store at ...), so they run before brands are kept;
1. ``KEEP`` (:mod:`common.privacy.keep`): references after a reference cue
   (订单号, ticket ...) and bank products and brands (花呗, Apple Pay ...)
   are claimed first and never masked;
2. e-mail addresses, then identifiers named by a cue word of their type
   (:func:`common.privacy.detect_ids.detect_cued`);
3. IP addresses, resident IDs, self-checking ID formats, IBANs, accounts,
   bank cards, phones, licence plates, dates of birth
   (:mod:`common.privacy.detect_numbers`, :mod:`common.privacy.detect_ids`,
   :mod:`common.privacy.detect_personal`);
4. addresses (:mod:`common.privacy.detect_addresses`);
5. person names (:mod:`common.privacy.detect_names`).

This module is the engine and the public API: it normalizes, runs the
detectors in the order above, masks with typed placeholders and counts, and
masks structured records (identifier columns wholly).  Measured recall per
type on an independent set is in ``measured_recall.json`` beside this module
(``python bench/pii_eval.py`` rewrites it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from common.errors import ConfigError, DataError
from common.privacy.detect_addresses import detect_address
from common.privacy.detect_ids import detect_cued, detect_id_formats
from common.privacy.detect_names import detect_name
from common.privacy.detect_numbers import (detect_account, detect_bank_card, detect_email, detect_iban, detect_id_card,
                                           detect_phone)
from common.privacy.detect_personal import detect_birth_date, detect_ip, detect_plate
from common.privacy.detect_whereabouts import detect_whereabouts
from common.privacy.keep import KEEP, detect_keep
from common.privacy.normalize import normalize
from common.privacy.pii import PII_TYPES, PLACEHOLDERS
from common.privacy.spans import BLOCK, claim

Span = tuple[int, int, str]

_DETECTORS = (detect_whereabouts, detect_keep, detect_email, detect_cued, detect_ip, detect_id_card, detect_id_formats, detect_iban,
              detect_account, detect_bank_card, detect_phone, detect_plate, detect_birth_date, detect_address,
              detect_name)


def find_pii(text: str) -> list[Span]:
    """Find every PII span in ``text``, whatever types a caller will mask.

    Args:
        text: Raw message text.

    Returns:
        Non-overlapping ``(start, end, type)`` spans into ``text``, sorted by start.
    """
    norm = normalize(text)
    work = norm.text.replace(BLOCK, " ")
    taken = bytearray(len(work))
    claimed: list[Span] = []
    for detect in _DETECTORS:
        fresh = sorted(claim(taken, detect(work)))  # drops overlaps with earlier detectors' spans
        claimed += fresh
        blank = [span for span in fresh if span[2] != KEEP]  # kept words stay visible as context
        if blank:
            pieces, cursor = [], 0
            for s, e, _ in blank:  # blank the claimed spans so later detectors cannot see them
                pieces += [work[cursor:s], BLOCK * (e - s)]
                cursor = e
            work = "".join(pieces) + work[cursor:]
    spans: list[Span] = []
    for s, e, pii_type in sorted(claimed):
        if pii_type == KEEP:
            continue
        start, end = norm.to_original(s, e)
        if spans and start < spans[-1][1]:  # one input character expanded into two spans' characters
            start = spans[-1][1]
        if end > start:
            spans.append((start, end, pii_type))
    return spans


# --------------------------------------------------------------------------- public API
@dataclass
class DesensitizeResult:
    """Masked text and how many values of each PII type were masked.

    Attributes:
        text: The input with every detected PII value replaced by its placeholder.
        counts: Masked values per PII type name; every key of ``PII_TYPES``, 0 if none.
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
    "IBAN": ("iban", "iban_number"),
    "PASSPORT": ("passport", "passport_no", "passport_number", "护照号", "护照号码"),
    "SSN": ("ssn", "social_security_number", "ni_number", "nino", "社保号", "社保卡号"),
    "EMPLOYER": ("employer", "employer_name", "company_name", "工作单位", "单位名称"),
}
_FIELD_PREFIXES = ("customer_", "client_", "cust_", "holder_", "account_holder_", "contact_", "user_",
                   "home_", "billing_", "mailing_", "beneficiary_", "payee_", "guarantor_", "spouse_",
                   "客户", "联系", "家庭", "持卡人", "收款人", "担保人", "配偶")


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
