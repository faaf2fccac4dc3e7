"""Tests of the branch-side PII detector and masker (common.privacy.desensitize).

Table-driven cases cover every PII type in both languages and in the
formats customers really write; further tables check that non-PII numbers
survive.  The acceptance test measures recall and non-PII survival on the
synthetic generator's output, and a set of hand-written messages the
generator never produces guards against a detector tuned to templates.
"""

from __future__ import annotations

import pytest

from common.privacy.desensitize import Desensitizer, DesensitizeResult, desensitize, field_pii_type
from common.errors import ConfigError, DataError
from common.privacy.pii import PII_TYPES, PLACEHOLDERS, SYNTHETIC_TYPES
from common.data.synthetic.messages import SyntheticRecord, generate_records

# --------------------------------------------------------------------------- one PII type per case
MASKED = [
    # ID cards: valid check digit, X / x check digit, grouped, mistyped check digit (310115...8391 should end in 2).
    ("ID_CARD", "我的身份证号是110101199003077774。", "我的身份证号是[ID_CARD]。"),
    ("ID_CARD", "身份证：11010519491231002X", "身份证：[ID_CARD]"),
    ("ID_CARD", "证件号码 44030519900101123x 已过期", "证件号码 [ID_CARD] 已过期"),
    ("ID_CARD", "ID number 110101 19900307 7774, please verify.", "ID number [ID_CARD], please verify."),
    ("ID_CARD", "My Chinese ID is 310115196602098391.", "My Chinese ID is [ID_CARD]."),
    ("ID_CARD", "身份证１１０１０５１９４９１２３１００２Ｘ（全角）", "身份证[ID_CARD]（全角）"),
    # Phones: PRC mobiles in every spelling, landlines, US / UK / international.
    ("PHONE", "手机13812345678，随时联系。", "手机[PHONE]，随时联系。"),
    ("PHONE", "电话138 1234 5678", "电话[PHONE]"),
    ("PHONE", "回电请拨138-1234-5678。", "回电请拨[PHONE]。"),
    ("PHONE", "我的号码是+86 13912345678", "我的号码是[PHONE]"),
    ("PHONE", "联系：+8613912345678", "联系：[PHONE]"),
    ("PHONE", "有事打(+86) 139-1234-5678找我", "有事打[PHONE]找我"),
    ("PHONE", "座机010-12345678，分机无", "座机[PHONE]，分机无"),
    ("PHONE", "公司电话0755-86001234", "公司电话[PHONE]"),
    ("PHONE", "Call me on +1 415-555-0132 please.", "Call me on [PHONE] please."),
    ("PHONE", "My number is (415) 555-0132.", "My number is [PHONE]."),
    ("PHONE", "Reach me at 415.555.0132 tonight.", "Reach me at [PHONE] tonight."),
    ("PHONE", "London office: +44 20 7946 0958.", "London office: [PHONE]."),
    ("PHONE", "mobile 07700 900123", "mobile [PHONE]"),
    ("PHONE", "WhatsApp +971 50 123 4567", "WhatsApp [PHONE]"),
    ("PHONE", "Tel: 8765 4321", "Tel: [PHONE]"),
    ("PHONE", "手机１３８１２３４５６７８，谢谢", "手机[PHONE]，谢谢"),
    # Bank cards: UnionPay / Visa / Mastercard / Amex, 15-19 digits, contiguous or grouped.
    ("BANK_CARD", "卡号6222021234567890123挂失", "卡号[BANK_CARD]挂失"),
    ("BANK_CARD", "卡号：6217 0001 2345 6789 012，户名", "卡号：[BANK_CARD]，户名"),
    ("BANK_CARD", "card 4111 1111 1111 1111 was stolen", "card [BANK_CARD] was stolen"),
    ("BANK_CARD", "Mastercard 5425-2334-3010-9903 charged twice", "Mastercard [BANK_CARD] charged twice"),
    ("BANK_CARD", "amex 3782 822463 10005 blocked", "amex [BANK_CARD] blocked"),
    ("BANK_CARD", "The card is 5105105105105100.", "The card is [BANK_CARD]."),
    ("BANK_CARD", "帮忙查一下 6225 7612 3456 7899 这张卡", "帮忙查一下 [BANK_CARD] 这张卡"),  # mistyped, card-shaped
    ("ACCOUNT", "Please transfer 500 to my savings account 12345678 by Friday.",
     "Please transfer 500 to my savings account [ACCOUNT] by Friday."),
    ("BANK_CARD", "收款账号：6214830123456789", "收款账号：[BANK_CARD]"),
    # E-mails, including a phone number used as the mailbox name.
    ("EMAIL", "邮箱：zhangwei88@qq.com", "邮箱：[EMAIL]"),
    ("EMAIL", "发到13812345678@163.com就行", "发到[EMAIL]就行"),
    ("EMAIL", "Email me at john.smith@example.co.uk.", "Email me at [EMAIL]."),
    ("EMAIL", "Email: JOHN.DOE@GMAIL.COM", "Email: [EMAIL]"),
    # Names: Chinese cues, compound surnames, honorifics; English cues, titles, sign-offs.
    ("NAME", "您好，我是张伟，想挂失。", "您好，我是[NAME]，想挂失。"),
    ("NAME", "我叫王秀英想查余额", "我叫[NAME]想查余额"),
    ("NAME", "本人欧阳娜娜，卡丢了", "本人[NAME]，卡丢了"),
    ("NAME", "户名：诸葛亮，开户行：西湖支行", "户名：[NAME]，开户行：西湖支行"),
    ("NAME", "收款人是付晓东，确认没填错", "收款人是[NAME]，确认没填错"),
    ("NAME", "我老公王建国的信用卡被冻结了", "我老公[NAME]的信用卡被冻结了"),
    ("NAME", "请联系李建华先生处理", "请联系[NAME]先生处理"),
    ("NAME", "本人周一鸣，想查余额", "本人[NAME]，想查余额"),
    ("NAME", "My name is Jennifer O'Brien and I can't log in.", "My name is [NAME] and I can't log in."),
    ("NAME", "Hi, this is Matthew Wright.", "Hi, this is [NAME]."),
    ("NAME", "I'm Olivia, and my card is blocked.", "I'm [NAME], and my card is blocked."),
    ("NAME", "Could Mrs. Patel call me back?", "Could [NAME] call me back?"),
    ("NAME", "Thanks for your help.\nRegards,\nEmily Watson", "Thanks for your help.\nRegards,\n[NAME]"),
    ("NAME", "Kind regards,\nThomas Müller", "Kind regards,\n[NAME]"),
    ("NAME", "The wire to Sarah Connor failed.", "The wire to [NAME] failed."),
    ("NAME", "I paid Wei Zhang last week.", "I paid [NAME] last week."),
    # Addresses: Chinese unit chains with building/room numbers; English street forms.
    ("ADDRESS", "我住在上海市浦东新区世纪大道100号。", "我住在[ADDRESS]。"),
    ("ADDRESS", "寄到广东省深圳市南山区科技园路18号3栋2单元1201室，谢谢", "寄到[ADDRESS]，谢谢"),
    ("ADDRESS", "地址：北京市海淀区中关村大街27号院3号楼502，快递", "地址：[ADDRESS]，快递"),
    ("ADDRESS", "我家在朝阳区建国路88号", "我家在[ADDRESS]"),
    ("ADDRESS", "I live at 221B Baker Street, London.", "I live at [ADDRESS]."),
    ("ADDRESS", "Send it to 1600 Amphitheatre Parkway, Mountain View, CA 94043 please",
     "Send it to [ADDRESS] please"),
    ("ADDRESS", "My address: 1234 W 5th St, Apt 2, Chicago, IL 60601", "My address: [ADDRESS]"),
    ("ADDRESS", "moving to 10 Downing Street, London SW1A 2AA next month", "moving to [ADDRESS] next month"),
]


@pytest.mark.parametrize(("pii_type", "text", "expected"), MASKED, ids=[f"{c[0]}-{i}" for i, c in enumerate(MASKED)])
def test_each_pii_type_and_format_is_masked_with_its_placeholder(pii_type: str, text: str, expected: str) -> None:
    result = desensitize(text)
    assert result.text == expected
    assert result.counts[pii_type] == 1
    assert sum(result.counts.values()) == 1


# --------------------------------------------------------------------------- non-PII must survive
KEPT = [
    "订单号202405061234已经付款了，金额是12800元，流水号8829301122。",
    "本人于2023年12月1日在ATM机取款500元，机器吞卡，网点号0571。",
    "上个月还款日是15号，我3月15号已经还了8,000元，为什么还显示逾期？",
    "您尾号6688的卡于2024年5月6日14:23消费人民币1,288.00元。",
    "交易流水号：20240615000123456789，金额￥88.00，下午3点20分",
    "请问一下房贷利率是多少？我打算贷款100万，期限30年，利率3.85%。",
    "我用手机银行转了1746548块，一直显示处理中。",
    "验证码是839201，请勿泄露。",
    "账单日是每月5号，最后还款日是每月23号。",
    "I noticed a charge of $1,249.99 on 2024-02-14 with reference 5512839201.",
    "Card ending 4821 was declined at 14:05 for $23.50. Order #88123401.",
    "Statement from 2023-01-01 to 12/31/2023 please, about 1,200.00 GBP at 9:30am.",
    "Transaction 20240301998877 of £5,000 on 3 March 2024, branch 0457.",
    "My PIN 1234 was blocked after 3 attempts on 2024/05/01.",
    "Grace period ends on June 30, 2024. The rate went from 4.5% to 5.25%.",
]


@pytest.mark.parametrize("text", KEPT)
def test_non_pii_numbers_survive_unchanged(text: str) -> None:
    result = desensitize(text)
    assert result.text == text
    assert sum(result.counts.values()) == 0


COMMON_WORDS = [
    "余额不足时会扣多少手续费？方便的话告诉我一下。",
    "高兴地告诉你们，问题已经解决了，谢谢金经理。",
    "我是新客户，想开一张储蓄卡，需要带什么？",
    "我是来办理信用卡分期的，分12期。",
    "转账提示收款人户名不符，确认没填错。",
    "客户周一来办理业务可以吗？",
    "请问一下，上海市浦东新区有几个网点？我在万达广场的ATM取了钱。",
    "I'm Calling about my card. It was swallowed by the ATM at Oxford Street.",
    "Hello Customer Service, I want to close my account. Visa Platinum fee is $95.",
    "I am Very upset about the fees. Please call back.",
]


@pytest.mark.parametrize("text", COMMON_WORDS)
def test_ordinary_words_that_look_like_names_or_places_survive(text: str) -> None:
    assert desensitize(text).text == text


# --------------------------------------------------------------------------- realistic messages
HAND_WRITTEN = [
    ("您好，我是李娜，身份证110101199003077774，手机号13912345678，上周在朝阳区建国路88号的网点办的卡。",
     "您好，我是[NAME]，身份证[ID_CARD]，手机号[PHONE]，上周在[ADDRESS]的网点办的卡。"),
    ("你好 我叫欧阳娜娜 卡号 6228480402564890018 昨天晚上被刷了两笔 一笔3000 一笔2999.99",
     "你好 我叫[NAME] 卡号 [BANK_CARD] 昨天晚上被刷了两笔 一笔3000 一笔2999.99"),
    ("麻烦帮我查一下，我老公王建国的信用卡4392 2500 1234 5678是不是被冻结了？他电话是021-68881234。",
     "麻烦帮我查一下，我老公[NAME]的信用卡[BANK_CARD]是不是被冻结了？他电话是[PHONE]。"),
    ("请把对账单寄到广州市天河区天河路385号太古汇一座2801室，收件人陈小明，电话 020-38831234。",
     "请把对账单寄到[ADDRESS]，收件人[NAME]，电话 [PHONE]。"),
    ("转给王秀英的3,000元显示失败，交易时间10:15，交易编号TX9981234567。",
     "转给[NAME]的3,000元显示失败，交易时间10:15，交易编号TX9981234567。"),
    ("Dear team,\nI noticed a charge of $1,249.99 on 2024-02-14 with reference 5512839201.\nRegards,\nEmily Watson",
     "Dear team,\nI noticed a charge of $1,249.99 on 2024-02-14 with reference 5512839201.\nRegards,\n[NAME]"),
    ("This is Dr. Rajesh Kumar, account holder. Please send the statement to rajesh.kumar@example.org.",
     "This is [NAME], account holder. Please send the statement to [EMAIL]."),
    ("你好，我姓刘，叫刘德明，卡在武汉光谷那边的ATM被吞了，卡号尾号是3321，手机18971234567",
     "你好，我姓刘，叫[NAME]，卡在武汉光谷那边的ATM被吞了，卡号尾号是3321，手机[PHONE]"),
    ("老师您好，我妈妈叫赵桂兰，存折密码忘了，要本人来吗？她身份证是420102195503124426",
     "老师您好，我妈妈叫[NAME]，存折密码忘了，要本人来吗？她身份证是[ID_CARD]"),
    ("户主：张三丰，地址：湖南省长沙市岳麓区麓山南路2号", "户主：[NAME]，地址：[ADDRESS]"),
    ("转账备注写的是“房租 6月”，收款方是李小龙，卡号6214 8301 2345 6789",
     "转账备注写的是“房租 6月”，收款方是[NAME]，卡号[BANK_CARD]"),
    ("hi my name is kevin lee and my card got declined", "hi my name is [NAME] and my card got declined"),
    ("Contact: Dr. A. Kowalski, about the overdraft.", "Contact: [NAME], about the overdraft."),
    ("We run a bakery at 17 Church Lane, Oxford OX1 4AA; the business account is 20-30-40 12345678.",
     "We run a bakery at [ADDRESS]; the business account is [ACCOUNT]."),
    ("Please pay into GB29 NWBK 6016 1331 9268 19 by Friday.", "Please pay into [IBAN] by Friday."),
    ("The recipient is Lukas Weber, IBAN DE44 5001 0517 5407 3249 31.", "The recipient is [NAME], IBAN [IBAN]."),
    ("Hi, this is Jessica Patel. I sent €1317282 to the wrong account on 2024-03-15.",
     "Hi, this is [NAME]. I sent €1317282 to the wrong account on 2024-03-15."),
    ("Call me at +1 415 555 0132 or email jsmith@acme.com — John Smith",
     "Call me at [PHONE] or email [EMAIL] — [NAME]"),
    ("My wife, Maria Garcia, is a joint holder; our card 4111-1111-1111-1111 expired on 03/24.",
     "My wife, [NAME], is a joint holder; our card [BANK_CARD] expired on 03/24."),
]


@pytest.mark.parametrize(("text", "expected"), HAND_WRITTEN)
def test_hand_written_messages_the_generator_never_produces(text: str, expected: str) -> None:
    assert desensitize(text).text == expected


# --------------------------------------------------------------------------- API behaviour
def test_counts_cover_all_types_and_count_each_value() -> None:
    result = desensitize("我是张伟，手机13812345678，备用139-1234-5678，邮箱a@b.com")
    assert isinstance(result, DesensitizeResult)
    assert set(result.counts) == set(PII_TYPES)
    assert result.counts == {**{t: 0 for t in PII_TYPES}, "PHONE": 2, "EMAIL": 1, "NAME": 1}


def test_masking_is_idempotent_and_never_touches_placeholders() -> None:
    once = desensitize("My name is John Smith, card 4111 1111 1111 1111, phone (415) 555-0132.")
    twice = desensitize(once.text)
    assert twice.text == once.text
    assert sum(twice.counts.values()) == 0
    assert desensitize(" ".join(PLACEHOLDERS.values())).text == " ".join(PLACEHOLDERS.values())


def test_overlapping_digit_runs_go_to_the_most_specific_type() -> None:
    # An 18-digit ID also fits card lengths; a phone-number mailbox also fits a phone.
    text = "ID 11010519491231002X, mail 13812345678@163.com"
    assert desensitize(text).text == "ID [ID_CARD], mail [EMAIL]"


def test_disabled_types_are_left_verbatim_and_not_retyped() -> None:
    only_phone = Desensitizer(["PHONE"])
    result = only_phone.apply("mail 13812345678@163.com or call 13912345678, I'm John Smith")
    assert result.text == "mail 13812345678@163.com or call [PHONE], I'm John Smith"
    assert result.counts["EMAIL"] == 0 and result.counts["PHONE"] == 1


def test_unknown_type_is_a_config_error_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"SWIFT.*ID_CARD, PHONE, BANK_CARD, EMAIL, NAME, ADDRESS, HK_ID"):
        Desensitizer(["PHONE", "SWIFT"])
    with pytest.raises(ConfigError):
        Desensitizer([])
    assert Desensitizer("phone").types == frozenset({"PHONE"})


def test_non_string_text_is_a_data_error() -> None:
    with pytest.raises(DataError):
        desensitize(12345)  # type: ignore[arg-type]


@pytest.mark.parametrize(("column", "pii_type"), [
    ("name", "NAME"), ("Customer Name", "NAME"), ("客户姓名", "NAME"), ("mobile", "PHONE"), ("联系电话", "PHONE"),
    ("email", "EMAIL"), ("邮箱", "EMAIL"), ("id_card", "ID_CARD"), ("身份证号", "ID_CARD"), ("card_number", "BANK_CARD"),
    ("卡号", "BANK_CARD"), ("home_address", "ADDRESS"), ("地址", "ADDRESS"),
    ("branch_name", None), ("text", None), ("label", None), ("amount", None),
])
def test_identifier_columns_are_recognised_by_name(column: str, pii_type: str | None) -> None:
    assert field_pii_type(column) == pii_type


def test_apply_fields_masks_text_and_replaces_identifier_columns_wholly() -> None:
    record = {"姓名": "张三", "phone": 13812345678, "text": "我叫李四，卡号6222021234567890123丢了",
              "label": "card_lost", "branch_name": "Pudong 0231"}
    out, counts = Desensitizer().apply_fields(record, ["text"])
    assert out == {"姓名": "[NAME]", "phone": "[PHONE]", "text": "我叫[NAME]，卡号[BANK_CARD]丢了",
                   "label": "card_lost", "branch_name": "Pudong 0231"}
    assert counts == {**{t: 0 for t in PII_TYPES}, "PHONE": 1, "BANK_CARD": 1, "NAME": 2}
    assert record["姓名"] == "张三"  # the input is not modified


def test_apply_fields_rejects_missing_or_non_text_fields() -> None:
    with pytest.raises(DataError, match="'body'"):
        Desensitizer().apply_fields({"text": "hi"}, ["body"])
    with pytest.raises(DataError, match="'text'"):
        Desensitizer().apply_fields({"text": 3}, ["text"])


# --------------------------------------------------------------------------- acceptance on synthetic data
def measure(records: list[SyntheticRecord], desensitizer: Desensitizer | None = None) -> dict[str, float]:
    """Recall per PII type and non-PII survival of ``desensitizer`` on ``records``.

    A planted PII value counts as caught if its string no longer appears in
    the output; a non-PII number survives if its string still appears.

    Returns:
        ``{type: recall}`` for every PII type, plus ``"non_pii_survival"``.
    """
    desensitizer = desensitizer or Desensitizer()
    planted = {t: 0 for t in SYNTHETIC_TYPES}
    caught = {t: 0 for t in SYNTHETIC_TYPES}
    numbers = survived = 0
    for record in records:
        out = desensitizer.apply(record.text).text
        for pii in record.pii:
            planted[pii.type] += 1
            caught[pii.type] += pii.value not in out
        numbers += len(record.non_pii_numbers)
        survived += sum(n in out for n in record.non_pii_numbers)
    figures = {t: caught[t] / planted[t] for t in SYNTHETIC_TYPES if planted[t]}
    figures["non_pii_survival"] = survived / numbers
    return figures


@pytest.mark.parametrize("seed", [7, 2024, 31337])
def test_acceptance_recall_and_non_pii_survival_on_synthetic_records(seed: int) -> None:
    figures = measure(generate_records(2000, seed=seed))
    print(f"\nseed {seed}: " + ", ".join(f"{k}={v:.4f}" for k, v in figures.items()))
    assert set(SYNTHETIC_TYPES) <= set(figures)
    for pii_type in SYNTHETIC_TYPES:
        assert figures[pii_type] >= 0.99, (pii_type, figures[pii_type])
    assert figures["non_pii_survival"] >= 0.95


# --------------------------------------------------------------------------- the one desensitize-and-render step

def test_render_masks_texts_records_and_both_sides_of_a_dialogue_with_one_count() -> None:
    from common.privacy.records import RecordPipeline
    from common.privacy.render import Renderer

    texts = ["call me on 13812345678", "my email is li.wei@qq.com"]
    replies = ["I will call 13812345678 back", "noted"]
    dialogue = Renderer().render(texts, responses=replies)
    assert dialogue.texts == [desensitize(t).text for t in texts]
    assert dialogue.responses == [desensitize(r).text for r in replies]
    assert dialogue.counts == {**{t: 0 for t in PII_TYPES}, "PHONE": 2, "EMAIL": 1}
    assert Renderer().render(texts).responses is None
    # A record corpus may hold plain-text rows (the audit's canaries): those are masked as text.
    mixed = Renderer(RecordPipeline()).render([None, texts[0]], [{"phone": "13812345678", "note": "ok"}, None])
    assert mixed.texts == ["note: ok", desensitize(texts[0]).text] and mixed.counts["PHONE"] == 2
    with pytest.raises(ValueError, match="record pipeline"):
        Renderer().render([None], [{"note": "ok"}])


def test_jieba_loads_at_the_first_chinese_text_not_at_import():
    """A process that never sees Chinese text (an English branch, the CLI, the ServerApp) never loads jieba's
    dictionary (1.5 s of CPU); the first Chinese text loads it and its names are masked as before."""
    import subprocess
    import sys

    script = ("import sys\n"
              "from common.privacy.desensitize import desensitize\n"
              "print('jieba' in sys.modules)\n"
              "print(desensitize('My name is John Smith, card 4111 1111 1111 1111').text)\n"
              "print('jieba' in sys.modules)\n"
              "print(desensitize('客户王建国来办理业务').text)\n"
              "print('jieba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    before, english, after_english, chinese, after_chinese = out.stdout.splitlines()
    assert (before, after_english, after_chinese) == ("False", "False", "True")
    assert "John" not in english and "王建国" not in chinese and "[NAME]" in chinese
