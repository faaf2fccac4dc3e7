"""The templates of synthetic customer messages: core sentences per intent, and PII clauses.

:mod:`common.data.synthetic.messages` writes a message as one core sentence
of its intent (from :data:`CORE_MESSAGES`) plus clauses that each carry one
PII value (from :data:`PII_CLAUSES`), in Chinese or English, then fills the
``{SLOT}`` placeholders with values from
:mod:`common.data.synthetic.planted_values`.
"""

# Per language and intent: the message's core sentences.
# Slots: PII {NAME} {PHONE} {ID_CARD} {BANK_CARD} {EMAIL} {ADDRESS};
# non-PII {AMOUNT} {DATE} {TIME} {REF} {TAIL} {BRANCH}.
CORE_MESSAGES: dict[str, dict[str, tuple[str, ...]]] = {
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
            "我的信用卡{BANK_CARD}在{DATE} {TIME}被盗刷了三笔，请马上冻结。",
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
PII_CLAUSES: dict[str, dict[str, tuple[str, ...]]] = {
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
