"""Seeded generator of synthetic bank customer-service messages with planted PII.

fedbank cannot ship real customer conversations, so tests, simulations and
benchmarks train and evaluate on messages made here.  Each
:class:`SyntheticRecord` is one message a customer might send a bank branch,
in Chinese or English, labelled with one of :data:`INTENTS`.  The generator
plants 1-4 PII values (ID cards, phones, bank cards, e-mails, names,
addresses) in the real-world formats they take, plus non-PII numbers
(amounts, dates, times, reference numbers, card tails, branch codes), and
records both, so that the desensitizer can be scored on what it must remove
and on what it must keep.

Generation is deterministic per seed: all randomness flows from one
``random.Random(seed)`` instance, never the global random state.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.errors import ConfigError
from common.privacy.pii import cn_id_check_digit, luhn_check_digit

INTENTS: tuple[str, ...] = (
    "card_lost", "transfer_failed", "balance_inquiry", "loan_application",
    "fraud_report", "update_contact", "card_activation", "fee_dispute",
)


@dataclass(frozen=True)
class PlantedPII:
    """One PII value planted in a message.

    Attributes:
        type: A PII type name from :data:`common.privacy.pii.PII_TYPES`.
        value: The value exactly as it appears in the text (titles excluded).
    """

    type: str
    value: str


@dataclass(frozen=True)
class SyntheticRecord:
    """One synthetic customer message and its answer key.

    Attributes:
        text: The message.
        label: Its intent, one of :data:`INTENTS`.
        lang: ``"en"`` or ``"zh"``.
        pii: The PII values planted in ``text``.
        non_pii_numbers: Number-bearing strings planted that are not PII
            (amounts, dates, times, references, card tails, branch codes),
            exactly as they appear in ``text``.
    """

    text: str
    label: str
    lang: str
    pii: tuple[PlantedPII, ...]
    non_pii_numbers: tuple[str, ...]


# --------------------------------------------------------------------------- templates
# Slots: PII {NAME} {PHONE} {ID_CARD} {BANK_CARD} {EMAIL} {ADDRESS};
# non-PII {AMOUNT} {DATE} {TIME} {REF} {TAIL} {BRANCH}.
_CORE: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "card_lost": (
            "我的银行卡丢了，卡号是{BANK_CARD}，麻烦尽快帮我挂失。",
            "{DATE}下午在商场把储蓄卡弄丢了，尾号{TAIL}，请帮我冻结。",
            "钱包被偷了，里面有一张你们行的信用卡，需要紧急挂失。",
            "卡找不到了，最后一次用是{DATE}{TIME}，消费了{AMOUNT}，现在想办理挂失补卡。",
            "我爱人{NAME}的借记卡不见了，能不能代办挂失？",
            "卡丢在出租车上了，卡号{BANK_CARD}，怕被盗刷，先帮我止付一下。",
            "请问银行卡遗失后补办要多久？我的卡尾号{TAIL}。",
        ),
        "transfer_failed": (
            "{DATE}给对方转账{AMOUNT}失败了，流水号{REF}，钱也没退回来。",
            "我用手机银行转了{AMOUNT}到{BANK_CARD}，一直显示处理中，怎么回事？",
            "转账提示收款人户名不符，收款人是{NAME}，确认没填错。",
            "跨行汇款失败了，订单号{REF}，金额{AMOUNT}，请帮忙查一下原因。",
            "昨天{TIME}转账被退回，说账户状态异常，我的卡没有问题啊。",
            "给我妈转的{AMOUNT}没到账，交易时间是{DATE}{TIME}，麻烦核实。",
            "{DATE}给{NAME}转了{AMOUNT}，对方说一直没收到。",
        ),
        "balance_inquiry": (
            "想查一下卡里还剩多少钱，卡号{BANK_CARD}。",
            "请问我尾号{TAIL}的账户余额是多少？{DATE}之后有没有入账？",
            "手机银行显示余额{AMOUNT}，和我算的对不上，能帮我核对吗？",
            "帮我查下余额和最近三笔交易明细，谢谢。",
            "工资应该{DATE}发，到现在余额还是{AMOUNT}，是不是没到账？",
            "我想打印一份{DATE}到现在的流水，顺便看看余额。",
        ),
        "loan_application": (
            "我想申请一笔{AMOUNT}的个人消费贷款，需要准备什么材料？",
            "房贷申请提交了，申请编号{REF}，想问问审批进度。",
            "请问经营贷最多能贷多少？我的店开在{ADDRESS}。",
            "我叫{NAME}，想办理公积金贷款，月收入大概{AMOUNT}。",
            "车贷是{DATE}提交的，到现在还没有消息，编号{REF}。",
            "想咨询一下装修贷的利率，打算贷{AMOUNT}，分36期。",
        ),
        "fraud_report": (
            "刚收到短信说我的卡在境外消费了{AMOUNT}，不是我本人操作的！",
            "有人冒充你们客服给我打电话，要我提供验证码，我没给，想举报。",
            "我的信用卡{BANK_CARD}在{DATE}{TIME}被盗刷了三笔，请马上冻结。",
            "发现一笔{AMOUNT}的陌生扣款，交易单号{REF}，我从来没去过那家商户。",
            "有个自称银行经理的人加我微信，说可以提额，要我先转{AMOUNT}手续费，这是诈骗吧？",
            "账户里少了{AMOUNT}，我怀疑手机被植入了木马，怎么办？",
        ),
        "update_contact": (
            "我换了手机号，新号码是{PHONE}，请帮我更新预留手机号。",
            "麻烦把我的通讯地址改成{ADDRESS}。",
            "邮箱换成{EMAIL}了，以后对账单发这个邮箱。",
            "我想修改预留信息，身份证号{ID_CARD}，新手机{PHONE}。",
            "搬家了，新地址是{ADDRESS}，信用卡账单请寄到这里。",
            "原来的手机号停用了，怎么在线更改绑定的号码？",
        ),
        "card_activation": (
            "新卡收到了，卡号{BANK_CARD}，怎么激活？",
            "信用卡激活时提示身份信息不符，我的身份证是{ID_CARD}。",
            "请问新办的借记卡要去柜台激活吗？我是在编号{BRANCH}的网点办的。",
            "激活码短信一直收不到，手机号是{PHONE}。",
            "{DATE}寄到的卡，尾号{TAIL}，激活后多久能用？",
            "我在网上激活卡片失败了三次，现在被锁住了。",
        ),
        "fee_dispute": (
            "这个月被扣了{AMOUNT}的年费，我记得是免年费的。",
            "为什么{DATE}扣了一笔{AMOUNT}的短信服务费？我没开通过。",
            "跨行取款手续费收了{AMOUNT}，流水号{REF}，请解释一下。",
            "卡号{BANK_CARD}的账户管理费扣了好几次，申请退还。",
            "分期手续费比说好的高，合同编号{REF}，我要投诉。",
            "小额账户管理费不是取消了吗？怎么还扣了{AMOUNT}。",
        ),
    },
    "en": {
        "card_lost": (
            "I lost my debit card, number {BANK_CARD}. Please block it right away.",
            "My wallet was stolen on {DATE} and my credit card ending in {TAIL} was in it.",
            "Can't find my card anywhere. The last purchase was {AMOUNT} at {TIME} yesterday. I need a replacement.",
            "I think I left my card at a restaurant. Could you freeze card {BANK_CARD} until I find it?",
            "My husband {NAME} lost his card this morning, can I report it for him?",
            "How long does a replacement card take? I reported the old one lost on {DATE}.",
        ),
        "transfer_failed": (
            "My transfer of {AMOUNT} on {DATE} failed, reference {REF}, and the money has not come back.",
            "I sent {AMOUNT} to card {BANK_CARD} but it still shows pending.",
            "The wire to {NAME} was rejected with 'name mismatch'. Transaction ID {REF}.",
            "Why did my international transfer fail? It was {AMOUNT} sent at {TIME}.",
            "A payment to my landlord bounced back on {DATE}. Please look into order {REF}.",
            "Online banking says my transfer could not be processed. I tried three times today.",
            "I paid {NAME} {AMOUNT} on {DATE} and the payment came back.",
        ),
        "balance_inquiry": (
            "What's the current balance on my account ending {TAIL}?",
            "Could you tell me the available balance on card {BANK_CARD}?",
            "My app shows a balance of {AMOUNT}, which doesn't look right after my deposit on {DATE}.",
            "Please send me a statement with all transactions since {DATE}.",
            "How much do I have left in my savings account? I'd like to know before {TIME} today.",
            "Has my salary been credited? The balance is still {AMOUNT}.",
        ),
        "loan_application": (
            "I'd like to apply for a personal loan of {AMOUNT}. What documents do I need?",
            "I submitted a mortgage application on {DATE}, reference {REF}. Any update?",
            "What is the interest rate for a car loan of {AMOUNT} over 5 years?",
            "I want to borrow {AMOUNT} to renovate my home at {ADDRESS}.",
            "Can I get pre-approved for a home loan? My annual income is about {AMOUNT}.",
            "Application {REF} for a small business loan has been pending since {DATE}.",
        ),
        "fraud_report": (
            "There is a charge of {AMOUNT} on my card that I did not make! Please freeze card {BANK_CARD}.",
            "Someone called pretending to be from your bank and asked for my PIN. I want to report it.",
            "I got a text saying my account was locked and asking me to click a link. Is this a scam?",
            "Unauthorized transaction {REF} for {AMOUNT} on {DATE}. I never visited that merchant.",
            "My card was skimmed at an ATM at {TIME}. Three withdrawals I don't recognise.",
            "I received an email claiming to be from you asking me to verify my account. Looks like phishing.",
        ),
        "update_contact": (
            "I have a new phone number: {PHONE}. Please update my profile.",
            "Please change my mailing address to {ADDRESS}.",
            "My email has changed to {EMAIL}, please send statements there from now on.",
            "I moved recently. New address is {ADDRESS}, and my mobile is {PHONE}.",
            "How do I update the phone number linked to my online banking?",
            "Please update my contact email to {EMAIL} and remove the old one.",
        ),
        "card_activation": (
            "I just received my new card {BANK_CARD}. How do I activate it?",
            "The activation code never arrived on my phone {PHONE}.",
            "Activation failed three times and now my card is locked. Can you help?",
            "Do I need to visit branch {BRANCH} to activate my debit card?",
            "My new card ending in {TAIL} arrived on {DATE}. When can I start using it?",
            "Card activation asks for my ID number but I'm a foreign customer. What should I enter?",
        ),
        "fee_dispute": (
            "I was charged an annual fee of {AMOUNT} but my card is supposed to be fee-free.",
            "Why was there a {AMOUNT} overdraft fee on {DATE}? I had enough money.",
            "Please refund the ATM fee for transaction {REF}. It was {AMOUNT}.",
            "There's a monthly maintenance fee on card {BANK_CARD} that nobody told me about.",
            "The foreign transaction fee on my purchase at {TIME} seems too high.",
            "I want to dispute the late fee charged on {DATE}; I paid before the due date.",
        ),
    },
}

# Extra sentences that carry one PII value.  NAME clauses open the message, except the
# "SIGN:" ones, which close it as a signature.
_CLAUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "NAME": ("您好，我是{NAME}。", "我叫{NAME}，", "本人{NAME}，", "客户{NAME}，", "姓名：{NAME}。",
                 "你好，我的名字是{NAME}，", "持卡人{NAME}。"),
        "PHONE": ("我的手机号是{PHONE}。", "联系电话：{PHONE}", "有问题请打{PHONE}联系我。",
                  "回电请拨{PHONE}。", "手机{PHONE}，随时可以联系。", "方便的话回个电话：{PHONE}"),
        "ID_CARD": ("我的身份证号是{ID_CARD}。", "身份证：{ID_CARD}", "证件号码{ID_CARD}。",
                    "本人身份证号码为{ID_CARD}。"),
        "BANK_CARD": ("卡号是{BANK_CARD}。", "涉及的卡：{BANK_CARD}", "银行卡号{BANK_CARD}。"),
        "EMAIL": ("我的邮箱是{EMAIL}。", "资料可以发到{EMAIL}。", "邮箱：{EMAIL}"),
        "ADDRESS": ("我住在{ADDRESS}。", "我的地址是{ADDRESS}。", "新卡请寄到{ADDRESS}。"),
    },
    "en": {
        "NAME": ("Hi, this is {NAME}.", "My name is {NAME}.", "Hello, I'm {NAME}.", "Dear Sir or Madam, I am {NAME}.",
                 "Account holder: {NAME}.", "SIGN:\nRegards,\n{NAME}", "SIGN:\nThanks, {NAME}"),
        "PHONE": ("You can reach me at {PHONE}.", "My phone number is {PHONE}.", "Call me back on {PHONE}.",
                  "Mobile: {PHONE}"),
        "ID_CARD": ("My Chinese ID number is {ID_CARD}.", "ID: {ID_CARD}"),
        "BANK_CARD": ("Card number: {BANK_CARD}.", "The card is {BANK_CARD}."),
        "EMAIL": ("Email me at {EMAIL}.", "My email is {EMAIL}."),
        "ADDRESS": ("I live at {ADDRESS}.", "My address is {ADDRESS}.", "Please mail the card to {ADDRESS}."),
    },
}

# --------------------------------------------------------------------------- vocab
_CN_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡"
                     "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙"
                     "史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤") + ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "令狐")
_CN_GIVEN = ("伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 霞 平 刚 秀英 秀兰 桂英 建华 建国 志强 丽娟 "
             "晓明 海燕 子涵 梓轩 浩然 欣怡 雨桐 思远 一鸣 嘉怡 俊杰 文博 佳琪 婷婷 娜娜 明辉 国庆 红梅 玉兰 "
             "春生 德华 晓东 雪梅 宇航 泽宇 诗涵 志明 淑珍 振华 立新 慧敏").split()
_EN_FIRST = ("James John Robert Michael William David Richard Joseph Thomas Charles Daniel Matthew Anthony "
             "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Emily Olivia Emma "
             "Sophie Oliver Harry George Jack Amelia Laura Rachel Hannah Chloe Lucy Priya Ahmed").split()
_EN_LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Wilson Taylor Anderson Moore Martin "
            "Jackson White Harris Clark Lewis Walker Hall Young King Wright Evans Roberts Green Baker Hughes "
            "Edwards O'Brien Murphy Patel Khan Nguyen Chen Wang").split()
_PINYIN = ("Wei Zhang", "Xiuying Wang", "Na Li", "Min Liu", "Jing Chen", "Lei Yang", "Jun Zhao", "Yan Huang")
_CN_REGIONS = ("110101", "110105", "120101", "130102", "210102", "310104", "310115", "320102", "330106",
               "340104", "350203", "370202", "410105", "420106", "430103", "440106", "440305", "500103",
               "510104", "610113", "530102", "650102")
_CN_ADDR = (  # (province/municipality prefix, city, district, roads)
    ("", "上海市", "浦东新区", ("世纪大道", "张杨路", "陆家嘴环路")), ("", "北京市", "朝阳区", ("建国路", "望京街", "朝阳北路")),
    ("广东省", "深圳市", "南山区", ("科技园路", "深南大道", "南海大道")), ("浙江省", "杭州市", "西湖区", ("文三路", "天目山路")),
    ("四川省", "成都市", "锦江区", ("春熙路", "东大街")), ("湖北省", "武汉市", "洪山区", ("珞喻路", "光谷大道")),
    ("江苏省", "南京市", "鼓楼区", ("中山北路", "北京西路")), ("", "天津市", "和平区", ("南京路", "解放北路")),
    ("山东省", "青岛市", "市南区", ("香港中路", "东海西路")), ("陕西省", "西安市", "雁塔区", ("小寨东路", "长安南路")),
)
_EN_ADDR = ("221B Baker Street, London", "1600 Amphitheatre Parkway, Mountain View, CA 94043",
            "{n} Oak Avenue, Springfield, IL 62704", "{n} High Street, Manchester M1 1AE",
            "{n} Maple Drive, Austin, TX 78701", "{n} Elm Road, Cambridge CB2 1TN",
            "{n} Sunset Blvd, Los Angeles, CA 90028", "{n} Park Lane, Apt 5B, Seattle, WA 98101",
            "10 Downing Street, London SW1A 2AA", "{n} Queen Street West, Toronto")
_EMAIL_DOMAINS = {"zh": ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "gmail.com"),
                  "en": ("gmail.com", "outlook.com", "hotmail.com", "yahoo.co.uk", "icloud.com", "acme-corp.com")}
_MONTHS = ("January February March April May June July August September October November December").split()


# --------------------------------------------------------------------------- value makers
def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _make_id_card(rng: random.Random, lang: str) -> str:
    body = (rng.choice(_CN_REGIONS) + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}"
            f"{rng.randint(1, 28):02d}" + _digits(rng, 3))
    check = cn_id_check_digit(body)
    if check == "X" and rng.random() < 0.25:
        check = "x"  # people do type it in lower case
    return body + check


def _cn_mobile(rng: random.Random) -> str:
    num = "1" + rng.choice("3456789") + _digits(rng, 9)
    a, b, c = num[:3], num[3:7], num[7:]
    return rng.choice((num, f"{a} {b} {c}", f"{a}-{b}-{c}", f"+86 {num}", f"+86{num}", f"+86 {a} {b} {c}",
                       f"(+86) {a}-{b}-{c}"))


def _make_phone(rng: random.Random, lang: str) -> str:
    if lang == "zh" or rng.random() < 0.15:
        return _cn_mobile(rng)
    area, mid, last = rng.randint(201, 989), rng.randint(200, 999), _digits(rng, 4)
    uk = f"{rng.randint(1000, 9999)} {_digits(rng, 4)}"
    return rng.choice((f"+1 {area}-{mid}-{last}", f"({area}) {mid}-{last}", f"{area}-{mid}-{last}",
                       f"+1 ({area}) {mid}-{last}", f"{area}.{mid}.{last}", f"+44 20 {uk}",
                       f"+44 7{_digits(rng, 3)} {_digits(rng, 6)}", f"020 {uk}", f"07{_digits(rng, 3)} {_digits(rng, 6)}"))


def _make_bank_card(rng: random.Random, lang: str) -> str:
    if rng.random() < (0.7 if lang == "zh" else 0.2):
        prefix, length = rng.choice(("622202", "622848", "621700", "622588", "623058", "621483")), rng.choice((16, 19))
    else:
        prefix, length = rng.choice(("4", "4", "51", "52", "53", "54", "55")), 16
    body = prefix + _digits(rng, length - 1 - len(prefix))
    num = body + luhn_check_digit(body)
    style = rng.random()
    if style < 0.4:
        return num
    sep = " " if style < 0.8 else "-"
    return sep.join(num[i:i + 4] for i in range(0, length, 4))


def _make_email(rng: random.Random, lang: str) -> str:
    style = rng.random()
    if style < 0.15:
        local = "1" + rng.choice("3456789") + _digits(rng, 9)   # phone number as mailbox, common in China
    elif style < 0.3:
        local = str(rng.randint(10**7, 10**10))                 # QQ number
    else:
        first, last = rng.choice(_EN_FIRST).lower(), rng.choice(_EN_LAST).lower().replace("'", "")
        local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}"))
    return f"{local}@{rng.choice(_EMAIL_DOMAINS[lang])}"


def _make_name(rng: random.Random, lang: str) -> tuple[str, str]:
    """Return (text as written, planted value) -- a title is not part of the value."""
    if lang == "zh":
        name = rng.choice(_CN_SURNAMES) + rng.choice(_CN_GIVEN)
        return name, name
    name = rng.choice(_PINYIN) if rng.random() < 0.1 else f"{rng.choice(_EN_FIRST)} {rng.choice(_EN_LAST)}"
    if rng.random() < 0.2:
        return f"{rng.choice(('Mr.', 'Ms.', 'Mrs.', 'Dr.'))} {name}", name
    return name, name


def _make_address(rng: random.Random, lang: str) -> str:
    if lang == "en":
        return rng.choice(_EN_ADDR).format(n=rng.randint(1, 9999))
    province, city, district, roads = rng.choice(_CN_ADDR)
    head = rng.choice((province + city + district, city + district, district))
    tail = rng.choice(("", f"{rng.randint(1, 30)}栋{rng.randint(1, 3)}单元{rng.randint(1, 30)}0{rng.randint(1, 4)}室",
                       f"{rng.randint(1, 20)}号楼{rng.randint(1, 25)}0{rng.randint(1, 6)}室"))
    return f"{head}{rng.choice(roads)}{rng.randint(1, 999)}号{tail}"


def _make_amount(rng: random.Random, lang: str) -> str:
    value = rng.choice((rng.randint(1, 999), rng.randint(1000, 99999), rng.randint(100000, 2000000)))
    cents = f"{rng.randint(0, 99):02d}"
    if lang == "zh":
        return rng.choice((f"{value}元", f"{value:,}.{cents}元", f"¥{value:,}.{cents}", f"{value}块", f"{rng.randint(2, 80)}万元"))
    return rng.choice((f"${value:,}.{cents}", f"${value:,}", f"£{value:,}", f"{value:,}.{cents} USD", f"€{value}"))


def _make_date(rng: random.Random, lang: str) -> str:
    y, m, d = rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28)
    if lang == "zh":
        return rng.choice((f"{y}年{m}月{d}日", f"{y}-{m:02d}-{d:02d}", f"{m}月{d}日", f"{m}月{d}号", f"{y}/{m:02d}/{d:02d}"))
    return rng.choice((f"{y}-{m:02d}-{d:02d}", f"{_MONTHS[m - 1]} {d}, {y}", f"{d:02d}/{m:02d}/{y}",
                       f"{m:02d}/{d:02d}/{y}", f"{d} {_MONTHS[m - 1]} {y}"))


def _make_time(rng: random.Random, lang: str) -> str:
    h, mi = rng.randint(0, 23), rng.randint(0, 59)
    if lang == "zh":
        return rng.choice((f"{h}:{mi:02d}", f"下午{rng.randint(1, 11)}点{mi}分", f"上午{rng.randint(7, 11)}点"))
    return rng.choice((f"{h}:{mi:02d}", f"{rng.randint(1, 12)}:{mi:02d} {rng.choice(('AM', 'PM', 'pm'))}"))


def _make_ref(rng: random.Random, lang: str) -> str:
    length = rng.randint(8, 12)
    first = rng.choice("23456789") if length == 11 else rng.choice("123456789")  # 11 digits from 1 = a phone
    ref = first + _digits(rng, length - 1)
    return rng.choice((ref, ref, ref, f"TX{ref}", f"ORD-{ref}"))


def _as_written(make: Callable[[random.Random, str], str]) -> Callable[[random.Random, str], tuple[str, str]]:
    """Adapt a maker whose planted value is exactly the text it writes."""
    def written_and_value(rng: random.Random, lang: str) -> tuple[str, str]:
        value = make(rng, lang)
        return value, value
    return written_and_value


# Each PII maker returns (text as written, planted value).
_PII_MAKERS = {
    "ID_CARD": _as_written(_make_id_card), "PHONE": _as_written(_make_phone),
    "BANK_CARD": _as_written(_make_bank_card), "EMAIL": _as_written(_make_email),
    "NAME": _make_name, "ADDRESS": _as_written(_make_address),
}
_NON_PII_MAKERS = {
    "AMOUNT": _make_amount, "DATE": _make_date, "TIME": _make_time, "REF": _make_ref,
    "TAIL": lambda rng, lang: _digits(rng, 4), "BRANCH": lambda rng, lang: "0" + _digits(rng, 3),
}
_SLOT = re.compile(r"\{([A-Z_]+)\}")


def make_pii(pii_type: str, rng: random.Random, lang: str) -> tuple[str, str]:
    """Make one PII value of ``pii_type`` (from :data:`common.privacy.pii.PII_TYPES`), for other generators.

    Returns:
        ``(text as written, planted value)``; they differ only for names written with a title.
    """
    return _PII_MAKERS[pii_type](rng, lang)


def make_non_pii(kind: str, rng: random.Random, lang: str) -> str:
    """Make one non-PII number of ``kind`` (AMOUNT, DATE, TIME, REF, TAIL or BRANCH), for other generators."""
    return _NON_PII_MAKERS[kind](rng, lang)


# --------------------------------------------------------------------------- assembly
class _Filler:
    """Fills template slots for one record and keeps its answer key."""

    def __init__(self, rng: random.Random, lang: str) -> None:
        self.rng, self.lang = rng, lang
        self.pii: list[PlantedPII] = []
        self.numbers: list[str] = []

    def fill(self, template: str) -> str:
        return _SLOT.sub(self._value, template)

    def _value(self, match: re.Match[str]) -> str:
        slot = match.group(1)
        if slot in _PII_MAKERS:
            written, value = _PII_MAKERS[slot](self.rng, self.lang)
            self.pii.append(PlantedPII(slot, value))
            return written
        written = _NON_PII_MAKERS[slot](self.rng, self.lang)
        self.numbers.append(written)
        return written


def _make_record(rng: random.Random, lang: str, label: str | None = None) -> SyntheticRecord:
    """One message: an intent's core sentence plus PII clauses up to 1-4 PII values in all.

    ``label``: the intent to write; ``None`` draws it uniformly (from ``rng``).
    """
    if label is None:
        label = rng.choice(INTENTS)
    core = rng.choice(_CORE[lang][label])
    in_core = set(_SLOT.findall(core)) & set(_PII_MAKERS)
    wanted = rng.randint(1, 4)
    spare = [t for t in _PII_MAKERS if t not in in_core]
    extra = rng.sample(spare, max(0, wanted - len(in_core)))  # random order, distinct types
    clauses = {t: rng.choice(_CLAUSES[lang][t]) for t in extra}
    opener = clauses.pop("NAME", None)
    signature = None
    if opener and opener.startswith("SIGN:"):
        signature, opener = opener[len("SIGN:"):], None
    parts = ([opener] if opener else []) + [core] + list(clauses.values())
    filler = _Filler(rng, lang)
    sep = "" if lang == "zh" else " "
    text = sep.join(filler.fill(p) for p in parts)
    if signature:
        text += filler.fill(signature)
    return SyntheticRecord(text, label, lang, tuple(filler.pii), tuple(filler.numbers))


def generate_records(n: int, seed: int, zh_fraction: float = 0.5) -> list[SyntheticRecord]:
    """Generate ``n`` synthetic customer messages, deterministically for ``seed``.

    Args:
        n: Number of records (>= 0).
        seed: Seed of the private random generator; equal seeds give equal output.
        zh_fraction: Probability that a record is in Chinese (0..1).

    Returns:
        The records, each with 1-4 planted PII values and its non-PII numbers.

    Raises:
        ConfigError: If ``n`` is negative or ``zh_fraction`` is outside [0, 1].
    """
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"number of synthetic records must be a non-negative integer, got {n!r}")
    check_zh_fraction(zh_fraction)
    rng = random.Random(seed)
    return [_make_record(rng, "zh" if rng.random() < zh_fraction else "en") for _ in range(n)]


def check_zh_fraction(zh_fraction: float) -> None:
    """Raise ConfigError unless ``zh_fraction`` (share of Chinese records) is a number in [0, 1]."""
    if not isinstance(zh_fraction, (int, float)) or not 0.0 <= zh_fraction <= 1.0:
        raise ConfigError(f"zh_fraction must be between 0 and 1, got {zh_fraction!r}")


def generate_labelled_records(labels: Sequence[str], rng: random.Random, zh_fraction: float = 0.5) -> list[SyntheticRecord]:
    """One synthetic message per entry of ``labels``, of that intent, drawn from ``rng``.

    The messages are made exactly as :func:`generate_records` makes them (language,
    template, 1-4 planted PII values), only the intent is given instead of drawn,
    so a caller that decided the label mix (a branch's Dirichlet label skew, a
    stratified held-out set) gets records of those labels from its own stream.

    Raises:
        ConfigError: a label is not one of :data:`INTENTS`, or ``zh_fraction`` is outside [0, 1].
    """
    unknown = sorted(set(labels) - set(INTENTS))
    if unknown:
        raise ConfigError(f"synthetic intents are {', '.join(INTENTS)}; got {unknown[0]!r}")
    check_zh_fraction(zh_fraction)
    return [_make_record(rng, "zh" if rng.random() < zh_fraction else "en", label) for label in labels]
