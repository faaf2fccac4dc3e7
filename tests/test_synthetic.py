"""Tests of the PII vocabulary/validators (common.privacy.pii) and the synthetic generator (common.data.synthetic.messages)."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from common.data.synthetic.message_templates import CORE_MESSAGES
from common.errors import ConfigError, DataError
from common.privacy.pii import (PII_TYPES, PLACEHOLDERS, SYNTHETIC_TYPES, cn_id_check_digit, cn_id_valid, iban_valid, luhn_check_digit,
                        luhn_valid)
from common.data.synthetic.messages import INTENTS, PlantedPII, SyntheticRecord, generate_records


# --------------------------------------------------------------------------- common.privacy.pii
def test_pii_types_and_placeholders() -> None:
    assert PII_TYPES[:6] == SYNTHETIC_TYPES == ("ID_CARD", "PHONE", "BANK_CARD", "EMAIL", "NAME", "ADDRESS")
    assert PLACEHOLDERS == {t: f"[{t}]" for t in PII_TYPES}


@pytest.mark.parametrize(("number", "valid"), [
    ("4111111111111111", True), ("5105105105105100", True), ("378282246310005", True), ("79927398713", True),
    ("4111111111111112", False), ("1234567812345678", False), ("", False), ("4111-1111-1111-1111", False),
])
def test_luhn_valid(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_luhn_check_digit() -> None:
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("411111111111111") == "1"
    with pytest.raises(DataError):
        luhn_check_digit("12a4")


@pytest.mark.parametrize(("first17", "check"), [
    ("11010519491231002", "X"), ("44030519900101123", "X"), ("11010119900307777", "4"), ("31011519660209839", "2"),
])
def test_cn_id_check_digit(first17: str, check: str) -> None:
    assert cn_id_check_digit(first17) == check


def test_cn_id_check_digit_rejects_bad_input() -> None:
    for bad in ("1101051949123100", "1101051949123100X", "110105194912310021"):
        with pytest.raises(DataError):
            cn_id_check_digit(bad)


def _with_check(first17: str) -> str:
    return first17 + cn_id_check_digit(first17)


@pytest.mark.parametrize(("id18", "valid"), [
    ("11010519491231002X", True), ("11010519491231002x", True), ("110101199003077774", True),
    ("110101199003077775", False),                   # wrong check digit
    (_with_check("11010119901307777"), False),       # month 13
    (_with_check("99010119900307777"), False),       # no such province
    (_with_check("11010129900307777"), False),       # born in the future
    ("11010119900307777", False), ("11010119900307777Y", False), (None, False),
])
def test_cn_id_valid(id18: str, valid: bool) -> None:
    assert cn_id_valid(id18) is valid


@pytest.mark.parametrize(("iban", "valid"), [
    ("GB29 NWBK 6016 1331 9268 19", True), ("DE89370400440532013000", True), ("gb29nwbk60161331926819", True),
    ("GB29 NWBK 6016 1331 9268 18", False), ("GB29", False), (None, False),
])
def test_iban_valid(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid


# --------------------------------------------------------------------------- generator
def test_generation_is_deterministic_per_seed_and_leaves_global_random_alone() -> None:
    state = random.getstate()
    first = generate_records(300, seed=11)
    assert random.getstate() == state
    assert generate_records(300, seed=11) == first
    assert generate_records(300, seed=12) != first


def test_record_shape_labels_and_languages() -> None:
    records = generate_records(1000, seed=3)
    assert all(isinstance(r, SyntheticRecord) for r in records)
    assert {r.label for r in records} == set(INTENTS)
    assert 6 <= len(INTENTS) <= 10
    langs = Counter(r.lang for r in records)
    assert set(langs) == {"en", "zh"} and 400 < langs["zh"] < 600
    assert {r.lang for r in generate_records(50, seed=1, zh_fraction=0.0)} == {"en"}
    assert {r.lang for r in generate_records(50, seed=1, zh_fraction=1.0)} == {"zh"}


def test_each_record_plants_one_to_four_pii_values_that_appear_in_its_text() -> None:
    for r in generate_records(1000, seed=5):
        assert 1 <= len(r.pii) <= 4
        assert all(isinstance(p, PlantedPII) and p.type in PII_TYPES for p in r.pii)
        assert all(p.value in r.text for p in r.pii)
        assert all(n in r.text for n in r.non_pii_numbers)


def test_every_pii_type_is_planted_in_both_languages() -> None:
    seen = {(r.lang, p.type) for r in generate_records(2000, seed=8) for p in r.pii}
    assert seen == {(lang, t) for lang in ("en", "zh") for t in SYNTHETIC_TYPES}


def test_templates_are_varied_per_intent_and_language() -> None:
    for lang in ("en", "zh"):
        for intent in INTENTS:
            assert len(set(CORE_MESSAGES[lang][intent])) >= 6, (lang, intent)


def _planted(records: list[SyntheticRecord], pii_type: str) -> list[str]:
    return [p.value for r in records for p in r.pii if p.type == pii_type]


def test_planted_id_cards_are_valid_and_include_x_check_digits() -> None:
    ids = _planted(generate_records(3000, seed=21), "ID_CARD")
    assert ids and all(cn_id_valid(v) for v in ids)
    assert any(v[-1] in "Xx" for v in ids)


def test_planted_bank_cards_pass_luhn_with_real_network_prefixes_and_formats() -> None:
    cards = _planted(generate_records(3000, seed=22), "BANK_CARD")
    digits = [re.sub(r"[ -]", "", c) for c in cards]
    assert all(luhn_valid(d) and len(d) in (16, 19) for d in digits)
    assert all(d.startswith("62") or d[0] == "4" or d[:2] in {"51", "52", "53", "54", "55"} for d in digits)
    assert {d[0] for d in digits} >= {"4", "5", "6"}
    assert any(" " in c for c in cards) and any("-" in c for c in cards) and any(c.isdigit() for c in cards)


def test_planted_phones_emails_names_addresses_look_real() -> None:
    records = generate_records(3000, seed=23)
    phones = _planted(records, "PHONE")
    cn_mobile = re.compile(r"^(?:\(?\+86\)?[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}$")
    assert any(cn_mobile.match(p) for p in phones) and any(p.startswith(("+1", "(")) for p in phones)
    assert any(p.startswith("+44") for p in phones)
    assert all(re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", e) for e in _planted(records, "EMAIL"))
    names = _planted(records, "NAME")
    assert any(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", n) for n in names)
    assert any(re.fullmatch(r"[A-Z][a-z']+ [A-Z][A-Za-z']+", n) for n in names)
    addresses = _planted(records, "ADDRESS")
    assert any(re.search(r"[区县].*[路街道].*\d+号", a) for a in addresses)
    assert any(re.search(r"\d+\w* [A-Z]\w+ (Street|Avenue|Parkway|Road|Drive|Blvd|Lane)", a) for a in addresses)


def test_non_pii_numbers_cover_amounts_dates_times_and_references() -> None:
    numbers = [n for r in generate_records(2000, seed=24) for n in r.non_pii_numbers]
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2}", n) for n in numbers)
    assert any(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", n) for n in numbers)
    assert any(re.search(r"\d{1,3}(,\d{3})+\.\d{2}", n) for n in numbers)
    assert any(n.endswith("元") for n in numbers)
    assert any(re.fullmatch(r"\d{8,12}", n) for n in numbers)
    assert any(re.fullmatch(r"\d{1,2}:\d{2}", n) for n in numbers)


@pytest.mark.parametrize(("n", "zh_fraction"), [(-1, 0.5), (10, 1.5), (10, -0.1)])
def test_bad_generator_arguments_are_config_errors(n: int, zh_fraction: float) -> None:
    with pytest.raises(ConfigError):
        generate_records(n, seed=0, zh_fraction=zh_fraction)
