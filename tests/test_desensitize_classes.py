"""Tests of classes of PII the detector (common.privacy.desensitize) learned after its first version.

Each case is one class of value, written for this file (never copied from the
independent evaluation set ``tests/data/pii_eval``): surnames that are also
everyday words, references named by a longer cue, bare digit runs that are no
phone, health-plan member numbers, and, further down, addresses, names,
employers and locations.
"""

from __future__ import annotations

import pytest

from common.privacy.desensitize import desensitize

MASKED = [
    # A known given name followed by a surname that is also an everyday or a country word.
    ("Good morning Harriet Green, your card is on its way.", "Good morning [NAME], your card is on its way."),
    ("Kind regards, Daniel Young", "Kind regards, [NAME]"),
    ("Good evening Laura Martin. The refund is done.", "Good evening [NAME]. The refund is done."),
    # Health-plan and member numbers after their cue.
    ("Member no. XQZ-4410-8821-33 was billed twice.", "Member no. [MEDICAL_INSURANCE] was billed twice."),
    ("Dental plan ID: DPX 55 019 2281", "Dental plan ID: [MEDICAL_INSURANCE]"),
]

KEPT = [
    "Your reference for this call is 3917264051.",
    "The case number of the dispute is 6620184739, please quote it.",
    "Quote ABC-7720391845 when you call.",
    "Visit branch 0250 or 0417 to pick up the card.",
    "We moved 4801239917 units of stock last year.",
    "网点柜台和东门的ATM都能办理，柜员会协助您。",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_classes_of_pii_are_masked(text: str, expected: str) -> None:
    assert desensitize(text).text == expected


@pytest.mark.parametrize("text", KEPT)
def test_references_codes_and_bare_numbers_survive(text: str) -> None:
    assert desensitize(text).text == text


ADDRESSES = [
    # Hong Kong: flat, floor, building, street, district.
    ("Send it to Flat D, 9/F, Lucky Court, 41 Shanghai Street, Yau Ma Tei, Kowloon. Thanks",
     "Send it to [ADDRESS]. Thanks"),
    # European street with the number after the name, postal code before the city.
    ("Meine Adresse: Lindenstraße 17, 10969 Berlin, Germany.", "Meine Adresse: [ADDRESS]."),
    ("Please write to Calle de Serrano 55, 3º A, 28006 Madrid.", "Please write to [ADDRESS]."),
    # US and UK lines over several lines, unit after the street.
    ("Address: 77 Maple Ave\nApt 3C\nDenver CO 80203", "Address: [ADDRESS]"),
    ("Flat 4, 19 Kingsley Road, Leeds LS6 2AB is my new home.", "[ADDRESS] is my new home."),
    # PRC: building, unit and room after the street; a line break inside; traditional characters.
    ("地址：辽宁省大连市中山区人民路23号金座大厦3期5号楼2单元1702室，谢谢", "地址：[ADDRESS]，谢谢"),
    ("寄到浙江省杭州市西湖区文三路\n90号2幢1101室", "寄到[ADDRESS]"),
    ("住在高雄市苓雅區四維三路6號8樓之2，電話", "住在[ADDRESS]，電話"),
    ("我家在幸福里小区7-3-502，离网点近", "我家在[ADDRESS]，离网点近"),
    ("快递放到3号楼1单元602就行", "快递放到[ADDRESS]就行"),
    ("老家是安徽省阜阳市临泉县城关镇前王村二组8号", "老家是[ADDRESS]"),
    # A bank's short name inside a street name is a street.
    ("请寄到上海市浦东新区民生路1188号", "请寄到[ADDRESS]"),
    # A building named without a building word, after a unit part or before a floor.
    ("Mail to Room 1203, 12/F, One Pacific, 88 Queensway Road, Admiralty.", "Mail to [ADDRESS]."),
    ("Delivery: Lee Garden Two 20/F, 28 Yun Ping Road", "Delivery: [ADDRESS]"),
    # A delivery point after a PRC address; a province before the city, with or without 自治区.
    ("包裹已到杭州市西湖区文三路90号东部软件园东门快递柜，取件码1-2-3", "包裹已到[ADDRESS]，取件码1-2-3"),
    ("寄到广州市天河区体育西路101号3号楼下驿站，谢谢", "寄到[ADDRESS]，谢谢"),
    ("地址：新疆维吾尔自治区乌鲁木齐市沙依巴克区友好北路88号", "地址：[ADDRESS]"),
    ("地址广西南宁市青秀区民族大道100号2栋", "地址[ADDRESS]"),
]


@pytest.mark.parametrize(("text", "expected"), ADDRESSES)
def test_addresses_with_their_unit_building_and_place_parts(text: str, expected: str) -> None:
    assert desensitize(text).text == expected


NAMES = [
    # Latin names glued to Chinese text (mixed zh/en), with or without a title.
    ("收款人Daniel Brooks，金额500元", "收款人[NAME]，金额500元"),
    ("贵宾客户Ms. Tse来电要求补卡", "贵宾客户[NAME]来电要求补卡"),
    # Two capitalized words after a strong cue, even when no list knows them.
    ("Best regards,\nTenzin Dorje", "Best regards,\n[NAME]"),
]


@pytest.mark.parametrize(("text", "expected"), NAMES)
def test_names_in_mixed_text_and_after_strong_cues(text: str, expected: str) -> None:
    assert desensitize(text).text == expected
