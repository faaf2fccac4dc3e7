"""The name detector's precision guard: PII-free bank text keeps every word.

Written for this file (not taken from the evaluation set ``tests/data/pii_eval``):
customer questions in English and Chinese with no personal data, full of the
traps the name rules of version 2.1 could fall into -- products and brands
(花呗, 余额宝, Apple Pay, American Express), ordinary words made of surname
characters (商家, 小时, 老公, 高度, 东方), kinship words with no name (阿姨, 大哥),
capitalized English words that are no names (Summer Sale, Hong Kong, However,),
form labels with no value, and list items that are no names.  Plus Banking77,
real PII-free questions, where at most one text in 2,000 may get a placeholder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from common.privacy.desensitize import find_pii

PII_FREE = [
    # English: capitalized everyday words, places, products.
    "Hi, I was charged twice for the Summer Sale order, can you refund one?",
    "However, the transfer to my Hong Kong account never arrived.",
    "Thanks for your help! Apple Pay works again.",
    "Is there a fee for using American Express abroad?",
    "Dear Sir or Madam, please close my savings account.",
    "Hello Team, my card was declined at the ATM twice today.",
    "Yesterday, I tried Google Pay but it failed.",
    "Urgent! My card has been frozen since Monday.",
    "Please, can you tell me the exchange rate for Euro to Pound?",
    "Hey, is it possible to top up by Bank Transfer from New Zealand?",
    "Thank you. Grace period for the payment is how long?",
    "I want to order a new Visa Platinum card for my trip to Costa Rica.",
    "Surname: \nGiven names: \nDate: 2024-03-01",
    # Chinese: products, ordinary words that start with a surname character, kinship words alone.
    "我是商家，花呗收款怎么开通？",
    "余额宝转出到银行卡要几个小时到账？",
    "我老公的卡丢了，我能替他挂失吗？",
    "借呗的利息怎么算？提前还款有违约金吗？",
    "东方明珠附近有你们的网点吗？",
    "客户高度关注这次利率调整。",
    "阿姨您好，请问存款利率是多少？",
    "大哥，转账一直显示处理中怎么办？",
    "谢谢，问题已经解决了。",
    "小米手机能绑定云闪付吗？",
    "你好，\n我想咨询一下信用卡年费。\n\n谢谢",
    "理财产品有：天天利、月月盈、季季红三种。",
    "我在微信、支付宝、京东都绑了这张卡。",
    "请问Apple Store的分期支持哪些银行？",
    "客户经理说周一可以办理。",
    "昨天小区门口的ATM吞卡了。",
    "尊敬的客户，谢谢您常常使用手机银行。我是金融客户，高高兴兴来办卡。",
]


@pytest.mark.parametrize("text", PII_FREE)
def test_pii_free_bank_text_keeps_every_word(text: str) -> None:
    assert find_pii(text) == []


BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"


@pytest.mark.skipif(not BANKING77.exists(), reason="Banking77 is not in ../shared/data/banking77")
def test_banking77_gets_at_most_one_placeholder_per_2000_texts() -> None:
    with BANKING77.open(encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)][:4000]
    masked = [(text, spans) for text in texts if (spans := find_pii(text))]
    assert len(masked) <= len(texts) / 2000, masked[:5]
