"""Synthetic dialogue exchanges: per language and topic, a customer's message and the agent's answer to it.

:mod:`common.data.synthetic.dialogues` picks one exchange of the dialogue's
topic, wraps each side in phrases from
:mod:`common.data.synthetic.dialogue_phrases` and fills the ``{SLOT}``
placeholders: PII ``{NAME}`` (the customer), ``{OTHER}`` (a third party),
``{PHONE}`` ``{ID_CARD}`` ``{BANK_CARD}`` ``{EMAIL}`` ``{ADDRESS}``; non-PII
``{AMOUNT}`` ``{DATE}`` ``{TIME}`` ``{REF}`` ``{BRANCH}``, ``{CASE}`` (the
agent's case number) and ``{TAIL}`` (the tail of the dialogue's card).  A slot
written on both sides holds the same value.
"""

# Per language and topic: exchanges, each a customer message and the agent's answer to it.
EXCHANGES: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "en": {
        "card_lost": (
            ("I lost my debit card {BANK_CARD} somewhere downtown this afternoon. Can you block it right away?",
             "I'm sorry to hear that. Card {BANK_CARD} is now permanently blocked, so no new payments can go "
             "through. A replacement will be posted to {ADDRESS} within 5-7 working days."),
            ("My wallet was stolen on {DATE} and my credit card ending in {TAIL} was in it. Please cancel it.",
             "I'm sorry about your wallet. The credit card ending in {TAIL} has been cancelled, and nothing has "
             "been charged to it since {DATE}. Your case number is {CASE}."),
            ("I can't find my card anywhere. The last purchase I made was {AMOUNT} at {TIME}. I need a replacement.",
             "I've cancelled the card and ordered a replacement, which normally arrives within a week. The "
             "{AMOUNT} purchase at {TIME} was the last transaction, so nothing else has been taken."),
            ("I think I left my card in a taxi last night. Could you freeze card {BANK_CARD} until I find it?",
             "I've placed a temporary freeze on card {BANK_CARD}. If it turns up you can unfreeze it in the app; "
             "otherwise let us know and we'll send a new card to {ADDRESS}."),
            ("My partner {OTHER} lost their card this morning. Can I report it on their behalf?",
             "Thank you for letting us know. I've placed a temporary block on the card; to cancel it for good, "
             "the account holder, {OTHER}, will need to confirm the request. Case {CASE}."),
            ("How long does a replacement card take? Please send the new one to {ADDRESS}.",
             "A replacement card usually takes 5-7 working days. I've ordered it to {ADDRESS}, and your PIN stays "
             "the same."),
        ),
        "card_activation": (
            ("I just received my new card {BANK_CARD}. How do I activate it?",
             "You can activate card {BANK_CARD} in the app under Cards > Activate, or by making a chip-and-PIN "
             "purchase in any shop."),
            ("The activation code never arrived on my phone {PHONE}.",
             "I've resent the activation code to {PHONE}. It is valid for 10 minutes; if it doesn't arrive, please "
             "check that your phone can receive texts from short codes."),
            ("Activation failed three times and now my card is locked. Can you help?",
             "I've reset the activation attempts on the card ending in {TAIL}. Please try again in the app; we'll "
             "text the code to {PHONE}."),
            ("Do I need to visit branch {BRANCH} to activate my debit card?",
             "There's no need to visit branch {BRANCH}. Debit cards activate automatically with your first PIN "
             "transaction at any of our ATMs."),
            ("My new card ending in {TAIL} arrived on {DATE}. When can I start using it?",
             "Your card ending in {TAIL} is active and ready to use. Contactless payments start working after "
             "your first chip-and-PIN purchase."),
            ("The activation page asks for my ID number. Is it {ID_CARD} or my passport number?",
             "Please enter the ID number we have on file, {ID_CARD}, exactly as written, including any final X."),
        ),
        "transfer_failed": (
            ("My transfer of {AMOUNT} on {DATE} failed, reference {REF}, and the money has not come back.",
             "I've checked transfer {REF}. It was returned by the receiving bank, and the {AMOUNT} will be back in "
             "your account within 2 working days."),
            ("I sent {AMOUNT} to card {BANK_CARD} but it still shows pending.",
             "Transfers to card {BANK_CARD} can take up to 24 hours when sent outside business hours. Yours is "
             "still in progress, reference {CASE}."),
            ("The wire to {OTHER} was rejected with 'name mismatch'. Transaction ID {REF}.",
             "The payment to {OTHER} was rejected because the name did not match the receiving account. Please "
             "check the spelling with the payee and send it again; no fee was charged for transaction {REF}."),
            ("Why did my international transfer fail? It was {AMOUNT}, sent at {TIME}.",
             "The transfer of {AMOUNT} went over your daily limit for international payments, so it was not sent. "
             "You can raise the limit in the app or split the payment."),
            ("A payment to my landlord bounced back on {DATE}. Please look into order {REF}.",
             "I've raised an investigation with the beneficiary bank for order {REF}, case {CASE}. We'll update "
             "you on {PHONE} as soon as we hear back."),
            ("I paid {OTHER} {AMOUNT} on {DATE} and the payment came back.",
             "The payment of {AMOUNT} to {OTHER} came back because the account number was incomplete. The money "
             "is back in your account and you can resend it from your transfer history."),
        ),
        "balance_inquiry": (
            ("What's the current balance on my account ending {TAIL}?",
             "The available balance on the account ending in {TAIL} is {AMOUNT}, including today's pending "
             "transactions."),
            ("Could you tell me the available balance on card {BANK_CARD}?",
             "For your security I can't read balances out over chat, but I've texted the balance of card "
             "{BANK_CARD} to {PHONE}."),
            ("My app shows a balance of {AMOUNT}, which doesn't look right after my deposit on {DATE}.",
             "The deposit on {DATE} is still being cleared, so it isn't included in the {AMOUNT} yet. It should "
             "show by tomorrow morning."),
            ("Has my salary been credited? The balance is still {AMOUNT}.",
             "Your salary hasn't arrived yet. Payments from employers usually land before 9 am; if it isn't there "
             "tomorrow, please check with your payroll team."),
            ("How much do I have left in my savings account? I need to know before {TIME} today.",
             "Your savings balance is {AMOUNT}. Interest is paid on the last working day of each month."),
        ),
        "loan_question": (
            ("I'd like to apply for a personal loan of {AMOUNT}. What documents do I need?",
             "For a personal loan of {AMOUNT} we need photo ID, your last three payslips and three months of bank "
             "statements. You can upload them in the app."),
            ("I submitted a mortgage application on {DATE}, reference {REF}. Any update?",
             "Application {REF} is with our underwriters and a valuation of {ADDRESS} has been booked. We expect a "
             "decision within 5 working days."),
            ("What is the interest rate for a car loan of {AMOUNT} over 5 years?",
             "Car loans of {AMOUNT} currently start at 6.9% APR over 60 months. The rate you are offered depends on "
             "your credit history; I've emailed a quote to {EMAIL}."),
            ("I want to borrow {AMOUNT} to renovate my home at {ADDRESS}.",
             "A home improvement loan of {AMOUNT} is possible. A lending specialist will call you on {PHONE} within "
             "two working days, case {CASE}."),
            ("Can I get pre-approved for a home loan? My annual income is about {AMOUNT}.",
             "Yes. I've sent a pre-approval form to {EMAIL}. Once it's returned, a mortgage adviser will call you "
             "to go through the figures."),
        ),
        "fraud_report": (
            ("There's a charge of {AMOUNT} on my card that I did not make! Please freeze card {BANK_CARD}.",
             "I've frozen card {BANK_CARD} and opened fraud case {CASE}. The {AMOUNT} will be provisionally "
             "refunded while we investigate."),
            ("Someone called pretending to be from your bank and asked for my PIN. I want to report it.",
             "Thank you for reporting it. We never ask for your PIN or one-time codes. I've flagged the call and "
             "added extra security to your profile."),
            ("I got a text saying my account was locked and asking me to click a link. Is this a scam?",
             "Yes, that text is a phishing attempt. Please don't click the link. If you entered any details, call "
             "us immediately so we can block the card ending in {TAIL}."),
            ("Unauthorized transaction {REF} for {AMOUNT} on {DATE}. I never visited that merchant.",
             "I've disputed transaction {REF} for {AMOUNT}. A new card will be sent to {ADDRESS}, and our fraud "
             "team may call you on {PHONE}."),
            ("My card was skimmed at an ATM at {TIME}. There are three withdrawals I don't recognise.",
             "The card ending in {TAIL} is blocked. I've logged the three ATM withdrawals under case {CASE}; you'll "
             "hear from us within 10 working days."),
        ),
        "address_change": (
            ("I moved last week. Please change my mailing address to {ADDRESS}.",
             "Done. Your mailing address is now {ADDRESS}. Statements from next month will go there."),
            ("Can you update my address? The new one is {ADDRESS}.",
             "Thank you. For security, I've sent a one-time code to {PHONE}; once you confirm it, the change to "
             "{ADDRESS} will take effect."),
            ("My statements are still going to my old flat. I now live at {ADDRESS}.",
             "Sorry about that. I've updated your address to {ADDRESS} and sent a confirmation letter there. The "
             "old address has been removed from all your accounts."),
            ("I'm moving on {DATE}. How do I change the address on my account?",
             "You can change it yourself in the app under Profile, or I can schedule the change for {DATE}. Until "
             "then, post goes to the address we have on file, {ADDRESS}."),
            ("Please send all letters to {ADDRESS} from now on. My ID number is {ID_CARD}.",
             "I've verified ID {ID_CARD} and updated your correspondence address to {ADDRESS}."),
        ),
        "contact_update": (
            ("I have a new phone number: {PHONE}. Please update my profile.",
             "Your mobile number has been updated to {PHONE}. Security codes will go to this number from now on."),
            ("My email has changed to {EMAIL}. Please send statements there from now on.",
             "I've changed your email to {EMAIL}. You'll receive a confirmation message there shortly, and "
             "statements will follow from next month."),
            ("How do I update the phone number linked to my online banking?",
             "You can change it in the app under Profile > Contact details. The number we have on file is {PHONE}; "
             "you'll need it to confirm the change."),
            ("Please update my contact email to {EMAIL} and remove the old one.",
             "Done. Statements will now be sent to {EMAIL}, and the old address has been removed."),
            ("I lost my old SIM. My new mobile is {PHONE} and I can't receive codes.",
             "For your security the change takes 24 hours to complete. After that, codes will go to {PHONE}; until "
             "then you can log in with your card reader."),
        ),
        "fee_dispute": (
            ("I was charged an annual fee of {AMOUNT} but my card is supposed to be fee-free.",
             "You're right, the annual fee on the card ending in {TAIL} should have been waived. I've refunded "
             "{AMOUNT}; it will show within 3 working days."),
            ("Why was there a {AMOUNT} overdraft fee on {DATE}? I had enough money.",
             "The overdraft fee was charged because a payment cleared before your deposit on {DATE}. As a goodwill "
             "gesture I've refunded the {AMOUNT}."),
            ("Please refund the ATM fee for transaction {REF}. It was {AMOUNT}.",
             "I've refunded the {AMOUNT} ATM fee for transaction {REF}. The refund reference is {CASE}."),
            ("There's a monthly maintenance fee on card {BANK_CARD} that nobody told me about.",
             "The maintenance fee applies when the balance falls below the minimum. I've sent the fee schedule for "
             "card {BANK_CARD} to {EMAIL}."),
            ("I want to dispute the late fee charged on {DATE}; I paid before the due date.",
             "I've raised a review of the late fee charged on {DATE}, case {CASE}. If your payment reached us "
             "before the due date, the fee will be reversed."),
        ),
        "statement_request": (
            ("Please send me a statement with all transactions since {DATE}.",
             "I've emailed your statements since {DATE} to {EMAIL}. The file is password-protected with your date "
             "of birth."),
            ("I need bank statements for the last six months for my visa application. Can you email them to "
             "{EMAIL}?",
             "Six months of statements have been sent to {EMAIL}, request number {CASE}. Each page is stamped for "
             "visa use."),
            ("Could you post a paper statement for card {BANK_CARD} to {ADDRESS}?",
             "A paper statement for card {BANK_CARD} will be posted to {ADDRESS} within 5 working days."),
            ("Where can I download my statements? I need the one for {DATE}.",
             "You can download statements in the app under Accounts > Statements, going back seven years, "
             "including the one for {DATE}."),
            ("I need a stamped statement for account ending {TAIL} for a mortgage application.",
             "A stamped statement for the account ending in {TAIL} is ready for collection at branch {BRANCH}. "
             "Please bring photo ID."),
        ),
    },
    "zh": {
        "card_lost": (
            ("我的银行卡丢了，卡号是{BANK_CARD}，麻烦马上帮我挂失。",
             "非常抱歉给您带来不便。卡号{BANK_CARD}已办理挂失，挂失后该卡无法再进行任何交易，新卡将在7个工作日内寄送至{ADDRESS}。"),
            ("钱包昨天在地铁上被偷了，里面有张尾号{TAIL}的信用卡，怎么挂失？",
             "已为您挂失尾号{TAIL}的信用卡，挂失编号{CASE}。补卡可在手机银行申请，免费邮寄到家。"),
            ("卡找不到了，最后一次用是{DATE}，刷了{AMOUNT}，现在想挂失补办。",
             "收到。您的卡片已冻结，最后一笔交易为{DATE}消费{AMOUNT}，之后没有新的交易。补卡需本人携带身份证到网点办理，工本费10元。"),
            ("我爱人{OTHER}的借记卡不见了，我能代为挂失吗？",
             "可以先为您办理口头挂失，正式挂失和补卡需要持卡人{OTHER}本人携带身份证到网点办理。"),
            ("卡丢了，补办的新卡能不能直接寄到{ADDRESS}？",
             "可以的。已为您挂失原卡并申请补卡，新卡将寄送至{ADDRESS}，预计5-7个工作日送达。"),
            ("刚发现储蓄卡不见了，卡号{BANK_CARD}，先帮我临时冻结一下吧。",
             "已为您办理临时挂失，卡号{BANK_CARD}。临时挂失有效期5天，请在此期间携带身份证到任意网点办理正式挂失及补卡。"),
        ),
        "card_activation": (
            ("新卡收到了，卡号{BANK_CARD}，怎么激活？",
             "您可以在手机银行“信用卡-卡片激活”中激活卡号{BANK_CARD}的卡片，也可以拨打卡片背面的客服电话激活。"),
            ("激活码短信一直收不到，手机号是{PHONE}。",
             "已重新发送激活验证码至{PHONE}，验证码10分钟内有效，请注意查收。"),
            ("信用卡激活时提示身份信息不符，我的身份证是{ID_CARD}。",
             "已核对您的身份证号{ID_CARD}与开户信息一致，可能是系统校验异常，已为您人工激活。"),
            ("请问新办的借记卡要去柜台激活吗？我是在编号{BRANCH}的网点办的。",
             "借记卡无需到柜台激活，首次在ATM或手机银行修改密码即可自动激活。"),
            ("{DATE}寄到的卡，尾号{TAIL}，激活后多久能用？",
             "您尾号{TAIL}的卡片激活后即可使用，请在手机银行设置交易密码后再进行消费。"),
            ("我在网上激活卡片失败了三次，现在被锁住了，怎么办？",
             "系统显示尾号{TAIL}的卡片激活次数已超限，已为您解除锁定，请重新尝试激活，验证码将发送至{PHONE}。"),
        ),
        "transfer_failed": (
            ("{DATE}给对方转账{AMOUNT}失败了，流水号{REF}，钱也没退回来。",
             "经查询，流水号{REF}的转账因收款行退回而失败，{AMOUNT}将在1-3个工作日内原路退回您的账户。"),
            ("我用手机银行转了{AMOUNT}到{BANK_CARD}，一直显示处理中，怎么回事？",
             "跨行转账至{BANK_CARD}在非工作时间可能延迟到账，目前仍在处理中，查询编号{CASE}。"),
            ("转账提示收款人户名不符，收款人是{OTHER}，确认没填错。",
             "收款行反馈收款人{OTHER}的户名与账号不一致，可能是对方账户信息有变更，建议核对后重新转账，本次未收取手续费。"),
            ("跨行汇款失败了，订单号{REF}，金额{AMOUNT}，请帮忙查一下原因。",
             "订单{REF}的{AMOUNT}超出了您的单日转账限额，因此未能成功，您可在手机银行调整限额后重试。"),
            ("{DATE}给{OTHER}转了{AMOUNT}，对方说一直没收到。",
             "已为您提交查询申请，编号{CASE}，结果会在3个工作日内通过短信发送至{PHONE}。"),
            ("昨天{TIME}转账被退回，说账户状态异常，我的卡没有问题啊。",
             "经查询，是收款方账户处于冻结状态导致转账被退回，与您的卡片无关，款项已退回尾号{TAIL}的账户。"),
        ),
        "balance_inquiry": (
            ("想查一下卡里还剩多少钱，卡号{BANK_CARD}。",
             "经查询，卡号{BANK_CARD}的可用余额为{AMOUNT}，交易明细可在手机银行查看。"),
            ("请问我尾号{TAIL}的账户余额是多少？{DATE}之后有没有入账？",
             "您尾号{TAIL}的账户当前可用余额为{AMOUNT}，{DATE}之后有一笔工资入账。"),
            ("手机银行显示余额{AMOUNT}，和我算的对不上，能帮我核对吗？",
             "您{DATE}的存款正在清算中，所以暂未计入{AMOUNT}的余额，预计明天到账。"),
            ("工资应该{DATE}发，到现在余额还是{AMOUNT}，是不是没到账？",
             "系统暂未查询到{DATE}的工资入账，建议您与单位财务确认发放时间，到账后会短信通知{PHONE}。"),
            ("帮我查下余额和最近三笔交易，谢谢。",
             "为保护您的账户安全，余额和最近三笔交易已通过短信发送至您的预留手机{PHONE}，请注意查收。"),
        ),
        "loan_question": (
            ("我想申请一笔{AMOUNT}的个人消费贷款，需要准备什么材料？",
             "申请{AMOUNT}的消费贷款需要提供身份证、近6个月的银行流水和收入证明，可以在手机银行线上提交。"),
            ("房贷申请提交了，申请编号{REF}，想问问审批进度。",
             "您的房贷申请{REF}已进入审批环节，评估机构已预约对{ADDRESS}的房产进行评估，预计5个工作日内出结果。"),
            ("请问经营贷最多能贷多少？我的店开在{ADDRESS}。",
             "经营贷额度根据经营流水和抵押物评估确定，稍后客户经理会致电{PHONE}与您联系。"),
            ("想办理公积金贷款，月收入大概{AMOUNT}，能贷多少？",
             "公积金贷款额度与缴存基数和缴存年限有关，材料清单已发送至您的邮箱{EMAIL}，受理编号{CASE}。"),
            ("想咨询一下装修贷的利率，打算贷{AMOUNT}，分36期。",
             "装修贷目前年化利率3.6%起，贷{AMOUNT}分36期的具体月供以审批结果为准，可在手机银行试算。"),
        ),
        "fraud_report": (
            ("刚收到短信说我的卡在境外消费了{AMOUNT}，不是我本人操作的！",
             "已为您冻结尾号{TAIL}的卡片并登记盗刷案件，编号{CASE}，涉及的{AMOUNT}将在调查期间先行垫付。"),
            ("有人冒充你们客服给我打电话，要我提供验证码，我没给，想举报。",
             "感谢您的警惕！我行客服不会索要验证码和密码，该来电已登记，请勿向任何人透露验证码。"),
            ("我的信用卡{BANK_CARD}在{DATE} {TIME}被盗刷了三笔，请马上冻结。",
             "卡号{BANK_CARD}已止付，三笔可疑交易已登记，处理编号{CASE}，我们将在10个工作日内回复您。"),
            ("发现一笔{AMOUNT}的陌生扣款，交易单号{REF}，我从来没去过那家商户。",
             "已为您对交易{REF}发起争议处理，新卡将寄送至{ADDRESS}，反欺诈专员可能会致电{PHONE}核实情况。"),
            ("有个自称银行经理的人加我微信，说可以提额，要我先转{AMOUNT}手续费，这是诈骗吧？",
             "这是典型的诈骗手法，请不要转账。我行不会通过微信办理提额，如已泄露信息，请立即致电我们冻结尾号{TAIL}的卡片。"),
        ),
        "address_change": (
            ("麻烦把我的通讯地址改成{ADDRESS}。",
             "已为您将通讯地址更新为{ADDRESS}，下期对账单起将寄送至新地址。"),
            ("搬家了，新地址是{ADDRESS}，信用卡账单请寄到这里。",
             "地址已修改成功，新地址为{ADDRESS}，信用卡账单将从下个账单日起寄往新地址。"),
            ("对账单还是寄到老地址，我现在住在{ADDRESS}，帮我改一下。",
             "为保障账户安全，验证码已发送至{PHONE}，验证通过后地址将变更为{ADDRESS}。"),
            ("我{DATE}要搬家，请问怎么修改账户的联系地址？",
             "您可以在手机银行“我的-个人信息”中自行修改，目前登记的地址是{ADDRESS}，也可以预约在{DATE}生效。"),
            ("请把地址更新为{ADDRESS}，我的身份证号是{ID_CARD}。",
             "已核实您的身份证号{ID_CARD}，地址已更新为{ADDRESS}，确认函已寄出。"),
        ),
        "contact_update": (
            ("我换了手机号，新号码是{PHONE}，请帮我更新预留手机号。",
             "您的预留手机号已更新为{PHONE}，今后的动账通知和验证码将发送至该号码。"),
            ("邮箱换成{EMAIL}了，以后电子账单发这个邮箱。",
             "电子账单邮箱已变更为{EMAIL}，确认邮件稍后发送，请注意查收。"),
            ("原来的手机号停用了，怎么在线更改绑定的号码？",
             "目前登记的号码是{PHONE}，原号码已停用的话无法接收验证码，需要本人持身份证到网点更换预留手机号。"),
            ("我想修改预留信息，身份证号{ID_CARD}，新手机{PHONE}。",
             "已核实您的身份证号{ID_CARD}，预留手机号已变更为{PHONE}。"),
            ("请把联系邮箱改成{EMAIL}，旧邮箱不用了。",
             "已将联系邮箱改为{EMAIL}，旧邮箱已解除绑定，为保障安全，修改将在24小时后生效。"),
        ),
        "fee_dispute": (
            ("这个月被扣了{AMOUNT}的年费，我记得是免年费的。",
             "经核实，您尾号{TAIL}的信用卡符合免年费条件，已为您退还年费{AMOUNT}，预计3个工作日内到账。"),
            ("为什么{DATE}扣了一笔{AMOUNT}的短信服务费？我没开通过。",
             "短信服务费是开通动账通知后按月收取的，已为您关闭该服务，并退还{DATE}扣收的{AMOUNT}。"),
            ("跨行取款手续费收了{AMOUNT}，流水号{REF}，请解释一下。",
             "跨行取款按笔收取手续费，已为您提交流水号{REF}的手续费退还申请，受理编号{CASE}。"),
            ("卡号{BANK_CARD}的账户管理费扣了好几次，申请退还。",
             "账户管理费在日均余额低于标准时收取，卡号{BANK_CARD}的收费明细已发送至您的邮箱{EMAIL}。"),
            ("分期手续费比说好的高，合同编号{REF}，我要投诉。",
             "已登记您对合同{REF}的投诉，编号{CASE}，专员将在2个工作日内致电{PHONE}与您核实分期费率。"),
        ),
        "statement_request": (
            ("请帮我开一份{DATE}到现在的流水，要盖章的。",
             "{DATE}至今的盖章流水已预约打印，请本人携带身份证到编号{BRANCH}的网点领取。"),
            ("办签证需要近半年的银行流水，能发到我的邮箱{EMAIL}吗？",
             "近半年的流水已发送至{EMAIL}，申请编号{CASE}，文件密码为您的出生日期。"),
            ("能不能把卡号{BANK_CARD}的纸质对账单寄到{ADDRESS}？",
             "卡号{BANK_CARD}的纸质对账单将在5个工作日内寄送至{ADDRESS}。"),
            ("电子对账单在哪里下载？我要{DATE}那个月的。",
             "您可以在手机银行“账户-电子对账单”中下载近7年的对账单，{DATE}所在月份的对账单也已发送到您的邮箱{EMAIL}。"),
            ("我要打印尾号{TAIL}账户的交易明细，贷款要用。",
             "尾号{TAIL}账户的交易明细已准备好，请携带身份证到编号{BRANCH}的网点领取。"),
        ),
    },
}
