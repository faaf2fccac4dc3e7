"""Structured records (credit applicants, card transactions) to model text, at the branch.

The model stays a sequence classifier over text, so a record is *serialized*
to ``"field: value; field: value; ..."`` -- but only after it is made safe:

1. **direct identifiers are dropped**: the columns named in ``data.id-columns``
   and every column whose name says it holds an identifier wholly
   (:func:`common.privacy.desensitize.field_pii_type`: ``customer_name``, ``phone``,
   ``card_number``, ``id_number``, ``email``, ``address``...), even if it is
   listed in ``data.field-columns`` -- a forgotten column cannot leak;
2. **quasi-identifiers are generalized**: age to bands (``25-34``), birth
   year or date to a decade (``1980s``), postcodes to their first three
   characters (``SW1*``), or dropped (``data.quasi-columns``; by default
   chosen from the column name);
3. **every remaining value is masked like free text** by the branch's
   :class:`~common.privacy.desensitize.Desensitizer`, the same detector a chat
   message goes through: a clerk's ``remark`` or ``note`` column with a name,
   phone, ID or address in it keeps its words and loses the values
   (``Customer [NAME] called from [PHONE]``); coded and numeric columns
   (German Credit's ``A11``, amounts) come through untouched;
4. codes may be turned into words (``data.value-map``: ``A11`` ->
   ``checking < 0 DM``), which helps a pretrained base;
5. the kept fields are written in a fixed order with readable names
   (``CheckingAccountStatus`` -> ``checking account status``).

``pii_counts`` counts the identifier values dropped (by type, where the
column name gives one) plus the PII masked inside values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.config.files import read_json_setting
from common.config.run import RunConfig
from common.config.sections import QUASI_RULES
from common.privacy.desensitize import Desensitizer, field_pii_type
from common.errors import ConfigError
from common.privacy.pii import PII_TYPES

AGE_BANDS = ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))
UNKNOWN = "unknown"
ANY_COLUMN = "*"

# Column names (normalized: lower case, words joined by '_') that hold a quasi-identifier.
_QUASI_BY_NAME = (
    ("age-band", re.compile(r"^(?:.*_)?age(?:_years?|_yrs)?$|年龄")),
    ("decade", re.compile(r"birth|(?:^|_)dob(?:_|$)|出生")),
    ("prefix3", re.compile(r"(?:^|_)(?:zip|zipcode|zip_code|postcode|post_code|postal_code)(?:_|$)|邮编|邮政编码")),
)


def normalize_column(name: str) -> str:
    """``CheckingAccountStatus`` / ``merchant-category`` -> ``checking_account_status`` / ``merchant_category``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", str(name).strip())
    return re.sub(r"[\s\-.]+", "_", spaced).lower().strip("_")


def readable_column(name: str) -> str:
    """The field name as written in the serialized text: ``CreditAmount`` -> ``credit amount``."""
    return normalize_column(name).replace("_", " ")


def quasi_rule_for(column: str) -> str | None:
    """The generalization a column needs, judged from its name (None: not a quasi-identifier)."""
    key = normalize_column(column)
    for rule, pattern in _QUASI_BY_NAME:
        if pattern.search(key):
            return rule
    return None


def _number(value: str) -> float | None:
    try:
        return float(str(value).strip().replace(",", ""))
    except ValueError:
        return None


def generalize(value: str, rule: str) -> str | None:
    """``value`` generalized by ``rule``; None means drop the field."""
    if rule == "drop":
        return None
    text = str(value).strip()
    if rule == "age-band":
        age = _number(text)
        if age is None or age < 0 or age > 130:
            return UNKNOWN
        for upper, band in AGE_BANDS:
            if age < upper:
                return band
        return "65+"
    if rule == "decade":
        years = re.findall(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", text)
        return f"{years[0][:3]}0s" if years else UNKNOWN
    if rule == "prefix3":
        compact = re.sub(r"\s+", "", text)
        return f"{compact[:3]}*" if compact else UNKNOWN
    raise ConfigError(f"unknown generalization rule {rule!r}: use one of {', '.join(QUASI_RULES)}")


# --------------------------------------------------------------------------- value maps
# UCI Statlog German Credit attribute codes (german.names), shortened.
GERMAN_CREDIT_CODES: dict[str, str] = {
    "A11": "< 0 DM", "A12": "0-200 DM", "A13": ">= 200 DM or salary assigned", "A14": "no checking account",
    "A30": "no credits taken or all paid back", "A31": "all credits at this bank paid back",
    "A32": "existing credits paid back so far", "A33": "delay in paying off in the past",
    "A34": "critical account or credits at other banks",
    "A40": "new car", "A41": "used car", "A42": "furniture or equipment", "A43": "radio or television",
    "A44": "domestic appliances", "A45": "repairs", "A46": "education", "A47": "vacation", "A48": "retraining",
    "A49": "business", "A410": "others",
    "A61": "< 100 DM", "A62": "100-500 DM", "A63": "500-1000 DM", "A64": ">= 1000 DM", "A65": "unknown or none",
    "A71": "unemployed", "A72": "< 1 year", "A73": "1-4 years", "A74": "4-7 years", "A75": ">= 7 years",
    "A91": "male, divorced or separated", "A92": "female, divorced, separated or married", "A93": "male, single",
    "A94": "male, married or widowed", "A95": "female, single",
    "A101": "none", "A102": "co-applicant", "A103": "guarantor",
    "A121": "real estate", "A122": "building society savings or life insurance", "A123": "car or other",
    "A124": "unknown or none",
    "A141": "bank", "A142": "stores", "A143": "none",
    "A151": "rent", "A152": "own", "A153": "for free",
    "A171": "unemployed or unskilled non-resident", "A172": "unskilled resident", "A173": "skilled employee or official",
    "A174": "management, self-employed or highly qualified",
    "A191": "none", "A192": "yes, registered under the customer's name",
    "A201": "yes", "A202": "no",
}
BUILTIN_VALUE_MAPS = {"german-credit": {ANY_COLUMN: GERMAN_CREDIT_CODES}}


def read_value_map(spec: str) -> dict[str, dict[str, str]]:
    """``data.value-map``: '' (none), a built-in name, or a JSON file ``{column: {code: text}}`` ('*' = any column)."""
    spec = spec.strip()
    if not spec:
        return {}
    if spec in BUILTIN_VALUE_MAPS:
        return BUILTIN_VALUE_MAPS[spec]
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"data.value-map '{spec}' is neither a built-in map ({', '.join(BUILTIN_VALUE_MAPS)}) nor a JSON file")
    data = read_json_setting("data.value-map", path, "{column: {code: text}}")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"data.value-map file '{spec}' must hold a JSON object {{column: {{code: text}}}}")
    return {str(c): {str(k): str(v) for k, v in m.items()} for c, m in data.items()}


# --------------------------------------------------------------------------- the pipeline
@dataclass(frozen=True)
class RecordPipeline:
    """Drop identifiers, generalize quasi-identifiers, mask values, serialize.

    Attributes:
        fields: columns to keep, in this order; None = every column of the
            record in its own order (identifiers still dropped).
        id_columns: columns always dropped.
        quasi: column -> rule ('' = from the column name); None = by column name for every column.
        value_map: column (or '*') -> code -> text.
    """

    fields: tuple[str, ...] | None = None
    id_columns: frozenset[str] = frozenset()
    quasi: Mapping[str, str] | None = None
    value_map: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def identifier_type(self, column: str) -> str | None:
        """'' for an explicit id column of no known type, the PII type for a named one, None to keep."""
        named = field_pii_type(str(column))
        if named is not None:
            return named
        return "" if column in self.id_columns else None

    def rule_for(self, column: str) -> str | None:
        """The generalization rule of ``column`` (None: keep as is)."""
        if self.quasi is None:
            return quasi_rule_for(column)
        if column not in self.quasi:
            return None
        return self.quasi[column] or quasi_rule_for(column)

    def apply(self, record: Mapping[str, object], desensitizer: Desensitizer, cache: dict | None = None) -> tuple[dict[str, str], dict[str, int]]:
        """The safe record (kept fields, generalized, masked) and the PII counts of this record."""
        counts = {t: 0 for t in PII_TYPES}
        columns: Iterable[str] = self.fields if self.fields is not None else record.keys()
        kept: dict[str, str] = {}
        cache = {} if cache is None else cache
        for column in record:  # identifiers are counted even when they are not asked for
            kind = self.identifier_type(column)
            if kind and str(record[column] or "").strip():
                counts[kind] += 1
        for column in columns:
            if self.identifier_type(column) is not None:
                continue
            raw = record.get(column)
            value = "" if raw is None else str(raw).strip()
            rule = self.rule_for(column)
            if rule is not None:
                generalized = generalize(value, rule)
                if generalized is None:
                    continue
                value = generalized
            if value not in cache:
                result = desensitizer.apply(value)
                cache[value] = (result.text, {t: n for t, n in result.counts.items() if n})
            value, found = cache[value]
            for t, n in found.items():
                counts[t] += n
            mapped = self.value_map.get(column, {}).get(value) or self.value_map.get(ANY_COLUMN, {}).get(value)
            kept[column] = mapped or value
        return kept, counts

    def serialize(self, kept: Mapping[str, str]) -> str:
        """``field: value; field: value`` with readable field names."""
        return "; ".join(f"{readable_column(c)}: {v if v != '' else UNKNOWN}" for c, v in kept.items())

    def render(self, records: Sequence[Mapping[str, object]], desensitizer: Desensitizer | None = None) -> tuple[list[str], dict[str, int]]:
        """Safe serialized texts of ``records`` and the total PII counts."""
        desensitizer = desensitizer or Desensitizer()
        totals = {t: 0 for t in PII_TYPES}
        cache: dict = {}
        texts = []
        for record in records:
            kept, counts = self.apply(record, desensitizer, cache)
            texts.append(self.serialize(kept))
            for t, n in counts.items():
                totals[t] += n
        return texts, totals


def pipeline_for(cfg: RunConfig, extra_id_columns: Iterable[str] = ()) -> RecordPipeline:
    """The record pipeline ``cfg`` asks for (``extra_id_columns``: a generator's own identifiers)."""
    t = cfg.task
    fields = t.field_list
    for column, rule in (t.quasi_rules or {}).items():
        if not rule and quasi_rule_for(column) is None:
            raise ConfigError(f"data.quasi-columns names '{column}' without a rule and its name gives none: "
                              f"write '{column}=RULE' with RULE one of {', '.join(QUASI_RULES)}")
    return RecordPipeline(
        fields=tuple(fields) if fields is not None else None,
        id_columns=frozenset(t.id_list) | frozenset(extra_id_columns),
        quasi=t.quasi_rules,
        value_map=read_value_map(t.value_map),
    )
