"""Tests of the classes of person name the detector learned in version 2.1 (common.privacy.detect_names*).

Each case is one class, written for this file (never copied from the independent
evaluation set ``tests/data/pii_eval``): titles and kinship titles that belong to the
name, possessives, given names missing from Faker's lists before a listed surname or
after an initial, everyday-word given names before a surname, accented spellings,
form labels, Tibetan names, kinship-titled and nickname Chinese names, signatures,
list members, rare dictionary words after a role cue, English names inside Chinese
text, vocatives and user names; a surname repeated as the first given-name character (2.2).
"""

from __future__ import annotations

import pytest

from common.privacy.desensitize import desensitize

MASKED = [
    # English: the title is part of the name; a possessive ends it.
    ("Please call Mrs. Pemberton back today.", "Please call [NAME] back today."),
    ("Transfer for Uncle Desmond's surgery", "Transfer for [NAME]'s surgery"),
    ("Reimburse Grandma Ottoline for the groceries", "Reimburse [NAME] for the groceries"),
    # Given names Faker does not list, before a surname it does, or after an initial.
    ("Caller: It's Chukwudi Okonkwo calling about my loan.", "Caller: It's [NAME] calling about my loan."),
    ("Deposit - March - K. Fairweather", "Deposit - March - [NAME]"),
    # An everyday word as the given name, before a listed surname.
    ("Best regards,\nHope Mensah", "Best regards,\n[NAME]"),
    # Accents and Irish particles; an exclamation mark after the greeting.
    ("Hello! Aoibheann Ní Cheallaigh here, my card is blocked.", "Hello! [NAME] here, my card is blocked."),
    ("Thanks, Seán.", "Thanks, [NAME]."),
    ("I'm Willem van der Meulen, the account holder.", "I'm [NAME], the account holder."),
    # Form labels, key=value and ALL-CAPS fields.
    ("first_name=Radoslaw; last_name=Zielinski; city=Gdansk", "first_name=[NAME]; last_name=[NAME]; city=Gdansk"),
    ("Surname: TRAN\nGiven names: THANH HUONG", "Surname: [NAME]\nGiven names: [NAME]"),
    ("teller Brianna was very helpful", "teller [NAME] was very helpful"),
    # Chinese: Tibetan names, kinship titles, nicknames, compound surnames.
    ("格桑达瓦昨天来过电话，说卡被吞了。", "[NAME]昨天来过电话，说卡被吞了。"),
    ("帮我给王阿姨转两千块生活费", "帮我给[NAME]转两千块生活费"),
    ("还志刚哥 上个月的房租", "还[NAME] 上个月的房租"),
    ("借小蒋的钱已经还了", "借[NAME]的钱已经还了"),
    ("上官婉清学费5000", "[NAME]学费5000"),
    # A signature line; list members; rare words after a role cue; 被 + name.
    ("您好：\n请帮我开具存款证明。\n\n钟雨桐\n2024年3月", "您好：\n请帮我开具存款证明。\n\n[NAME]\n2024年3月"),
    ("本次参训员工：韩志伟、石晓峰、滕子京三人。", "本次参训员工：[NAME]、[NAME]、[NAME]三人。"),
    ("客户雷鸣来电要求修改预留手机号", "客户[NAME]来电要求修改预留手机号"),
    ("他的卡被林建平拿走了", "他的卡被[NAME]拿走了"),
    ("保证人邵明轩，已面签。", "保证人[NAME]，已面签。"),
    ("职工姓名:邓 佳 怡 个人账号:88", "职工姓名:[NAME] 个人账号:88"),
    ("好的，滕先生，已为您登记。", "好的，[NAME]先生，已为您登记。"),
    # A surname repeated as the first given-name character, between a cue and a role word.
    ("尊敬的林林燕女士，您的账单已出。", "尊敬的[NAME]女士，您的账单已出。"),
    ("收款人黄黄莺，金额500元", "收款人[NAME]，金额500元"),
    # English names inside Chinese text; a romanized surname with a Chinese honorific.
    ("给Kevin转500块", "给[NAME]转500块"),
    ("联系人: Amanda 刘", "联系人: [NAME]"),
    ("请Chan小姐明天来签字", "请[NAME]小姐明天来签字"),
    # A vocative opening a message; a user name made of a given name and a surname.
    ("Harold, please send me the sort code.", "[NAME], please send me the sort code."),
    ('{"login": "agnieszka.wozniak"}', '{"login": "[NAME]"}'),
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_name_classes_are_masked(text: str, expected: str) -> None:
    assert desensitize(text).text == expected
