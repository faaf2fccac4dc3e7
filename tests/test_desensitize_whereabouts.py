"""EMPLOYER and LOCATION detection: cue words, legal suffixes, precise spans, kept brands."""

from __future__ import annotations

import pytest

from common.privacy.desensitize import desensitize


@pytest.mark.parametrize("text, value", [
    ("客户自述在青岛蓝帆远洋渔业有限公司担任会计。", "青岛蓝帆远洋渔业有限公司"),
    ("工作单位：昆明滇池云杉集团股份有限公司", "昆明滇池云杉集团股份有限公司"),
    ("She is employed by Oakhurst Pipe Fitters, monthly pay 3,000.", "Oakhurst Pipe Fitters"),
    ("Employer: Brindle Copper Works\nPhone:", "Brindle Copper Works"),
    ("我在Quillon Seafood Trading (Xiamen)任职三年。", "Quillon Seafood Trading (Xiamen)"),
    ("Payslip from Tamberlane Optics GmbH attached.", "Tamberlane Optics GmbH"),
])
def test_employer_is_masked_with_its_span(text, value):
    out = desensitize(text)
    assert value not in out.text and "[EMPLOYER]" in out.text
    assert out.counts["EMPLOYER"] == 1
    assert out.text == text.replace(value, "[EMPLOYER]")


@pytest.mark.parametrize("text, value", [
    ("我现在在宁波东站二号出口旁边，卡被吞了", "宁波东站二号出口旁边"),
    ("最近定位 22.5431, 114.0579。", "22.5431, 114.0579"),
    ("I'm stuck at Concourse B, Denver Airport Gate 41, please help", "Concourse B, Denver Airport Gate 41"),
    ("my wallet was stolen at the Westfield mall on Pitt Street.", "the Westfield mall on Pitt Street"),
])
def test_location_is_masked(text, value):
    out = desensitize(text)
    assert value not in out.text and out.counts["LOCATION"] == 1


@pytest.mark.parametrize("text", [
    "I'm at the ATM and it kept my card.",
    "I work for HSBC and want a second account.",
    "I just started working at Walmart, can I open an account?",
    "中国工商银行股份有限公司的转账手续费是多少？",
    "我在网上银行看不到余额宝的收益。",
    "The rate moved from 1.2345 to 1.2401 today.",
])
def test_everyday_bank_text_keeps_places_and_brands(text):
    out = desensitize(text)
    assert out.text == text, out.text
