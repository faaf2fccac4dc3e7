"""Identifiers read aloud, spaced by OCR or answered after a question; IPv6 after a label's colon."""

from __future__ import annotations

import pytest

from common.privacy.desensitize import find_pii


def _types(text: str) -> dict[str, str]:
    return {text[s:e]: t for s, e, t in find_pii(text)}


@pytest.mark.parametrize("text, value, pii_type", [
    ("登录地址：240e:3b7:9c40:1a2::5e，请核实", "240e:3b7:9c40:1a2::5e", "IP_ADDRESS"),
    ("Sure, my social is 5 3 1, 4 0, 2 2 7 9 if you need it.", "5 3 1, 4 0, 2 2 7 9", "SSN"),
    ("号码是五三一七二零九，括号四。", "五三一七二零九，括号四", "MO_ID"),
    ("Agent: And your passport number, for the record?\nCaller: XK 5519023, Canadian.", "XK 5519023", "PASSPORT"),
    ("往来港澳通行证\n姓名 李 一 鸣\n证件号码 3 1 7 5 0 2 4 6\n", "3 1 7 5 0 2 4 6", "PERMIT"),
    ("医保个人编号 2 2 0 1 7 6 4 9 3 0 1 8\n", "2 2 0 1 7 6 4 9 3 0 1 8", "MEDICAL_INSURANCE"),
])
def test_spaced_spoken_and_answered_ids(text, value, pii_type):
    spans = find_pii(text)
    assert any(t == pii_type and s <= text.find(value) and e >= text.find(value) + len(value) - 2
               for s, e, t in spans), spans


def test_form_number_without_a_document_title_and_plain_numbers_stay():
    assert find_pii("证件号码 31750246") == []  # no title: the type is unknown, so the cue does not guess
    assert find_pii("I paid 3 1 2, 4 5, 6 7 8 9 pounds") == []  # no SSN cue
    assert find_pii("申请编号 20240501 已受理") == []  # a reference stays


@pytest.mark.parametrize("text, value", [
    ("姓名 王 小 明\n性别 男", "王 小 明"),
    ("户 名：司 马 红 英", "司 马 红 英"),
    ("申请人  彭  子  涵  ", "彭  子  涵"),
])
def test_ocr_spaced_chinese_names(text, value):
    start = text.find(value)
    assert (start, start + len(value), "NAME") in find_pii(text)


def test_ocr_spaced_form_labels_are_no_names():
    assert find_pii("单 位 地 址\n金 额 合 计") == []


@pytest.mark.parametrize("text, value", [
    ("补充：担保人韦国梁，退休教师。", "韦国梁"),
    ("记录|姓名=尉迟明|状态=正常", "尉迟明"),
    ("经办人意见：客户上官婷收入稳定。", "上官婷"),
    ("客户：我姓诸葛，单名一个亮字。", "诸葛"),
])
def test_more_chinese_name_cues_and_compound_surnames(text, value):
    start = text.find(value)
    assert (start, start + len(value), "NAME") in find_pii(text)


@pytest.mark.parametrize("text, value", [
    ("Payee: Cheung Siu Ming, HSBC", "Cheung Siu Ming"),
    ("护照上是ZHAO Yuxuan，请核对", "ZHAO Yuxuan"),
    ("Holder HUANG MEI LING signed below", "HUANG MEI LING"),
    ("Please ask Tsai Chia-Hui to call back.", "Tsai Chia-Hui"),
])
def test_romanized_chinese_names(text, value):
    start = text.find(value)
    assert any(s <= start and e >= start + len(value) and t == "NAME" for s, e, t in find_pii(text)), find_pii(text)


@pytest.mark.parametrize("text", ["SEE YOU SOON", "TOP UP NOW", "Long Term deposit", "Can I Get a refund?"])
def test_romanized_rule_leaves_phrases_and_places(text):
    assert [s for s in find_pii(text) if s[2] == "NAME"] == []


def test_all_caps_merchant_descriptors_are_no_romanized_names():
    assert [s for s in find_pii("CARD PURCHASE WISE NG 0412") if s[2] == "NAME"] == []


def test_japanese_romanized_names_from_faker_lists():
    text = "Transfer approved for Haruka Yamamoto yesterday."
    start = text.find("Haruka Yamamoto")
    assert (start, start + len("Haruka Yamamoto"), "NAME") in find_pii(text)


@pytest.mark.parametrize("text, value, pii_type", [
    ("Caller: Sure, K as in Kilo: K, six eight three five two one, A in brackets.", "K, six eight three five two one, A", "HK_ID"),
    ("HKID: Kilo, 6 8 3 5 2 1, bracket A, thanks", "Kilo, 6 8 3 5 2 1, bracket A", "HK_ID"),
    ("Taiwan: letter A, one two three four five six seven eight nine", "letter A, one two three four five six seven eight nine", "TW_ID"),
    ("Macau ID (1 3 2 0 5 4 9 (7)), is that enough?", "1 3 2 0 5 4 9 (7)", "MO_ID"),
    ("National Insurance? It's QQ 12 34 56 C.", "QQ 12 34 56 C", "SSN"),
])
def test_ids_read_aloud_with_spelled_letters_are_masked_whole(text, value, pii_type):
    start = text.find(value)
    assert any(t == pii_type and s <= start and e >= start + len(value) for s, e, t in find_pii(text)), find_pii(text)


def test_spelled_words_without_an_id_stay():
    assert find_pii("The Hotel California has 1234567 fans, bracket 3 of them") == []
    assert find_pii("Order 123456, 3 items for Apple") == []


@pytest.mark.parametrize("text, value", [
    # a misread or mistyped check digit that happens to pass Luhn: still an ID when grouped or cued as one
    ("身份证号是四四零三零五 一九九一 零七 一二 三五七二。", "四四零三零五 一九九一 零七 一二 三五七二"),
    ("证件号码 440305 1991 07 12 3572，请核对", "440305 1991 07 12 3572"),
    ("Resident ID 440305199107123572 on file", "440305199107123572"),
])
def test_resident_id_with_a_luhn_passing_wrong_check_digit(text, value):
    from stdnum import luhn
    from stdnum.cn import ric

    digits = "".join(ch for ch in "440305199107123572")
    assert luhn.is_valid(digits) and not ric.is_valid(digits)  # the class this test is about
    spans = find_pii(text)
    start = text.find(value)
    assert any(t == "ID_CARD" and s <= start and e >= start + len(value) for s, e, t in spans), spans


def test_a_card_number_stays_a_card():
    text = "卡号 6222 0212 3456 7890 128"
    assert [t for _, _, t in find_pii(text)] == ["BANK_CARD"]


@pytest.mark.parametrize("text, value, pii_type", [
    ("坐席：好的，出生日期呢？\n客户：nineteen eighty-seven, June 3rd。", "nineteen eighty-seven, June 3rd", "DATE_OF_BIRTH"),
    ("Date of birth: 0 4 JUL 1 9 8 8\nNationality: X", "0 4 JUL 1 9 8 8", "DATE_OF_BIRTH"),
    ("客服：您的身份证号码呢？\n客户：110101199003071237。", "110101199003071237", "ID_CARD"),
])
def test_answers_after_a_question_particle_and_spoken_or_ocr_dates_of_birth(text, value, pii_type):
    start = text.find(value)
    assert any(t == pii_type and s <= start and e >= start + len(value) for s, e, t in find_pii(text)), find_pii(text)


def test_a_spoken_date_that_is_no_birth_date_stays():
    text = "We can meet on June 3rd, or call me in twenty minutes."
    assert find_pii(text) == []
