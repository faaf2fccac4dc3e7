"""Phrases that wrap a synthetic dialogue's exchange: customer clauses, agent greetings, confirmations, closings.

:mod:`common.data.synthetic.dialogues` adds to the customer's message clauses
that each carry one PII value (:data:`PROMPT_CLAUSES`), and wraps the agent's
answer in a greeting (:data:`REPLY_GREETINGS`, naming the customer or not),
sometimes a sentence confirming a value on file (:data:`REPLY_CLAUSES`) and a
closing (:data:`REPLY_CLOSINGS`, some signed by the agent ``{AGENT}`` or
carrying a case number ``{CASE}``).
"""

# Extra customer sentences that carry one PII value.  NAME clauses open the message, except
# the "SIGN:" ones, which close it as a signature.
PROMPT_CLAUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "NAME": ("Hi, this is {NAME}.", "Hello, my name is {NAME}.", "Good morning, I'm {NAME}.",
                 "Account holder: {NAME}.", "SIGN:\nRegards,\n{NAME}", "SIGN:\nThanks, {NAME}"),
        "PHONE": ("You can reach me at {PHONE}.", "Please call me back on {PHONE}.", "My mobile is {PHONE}."),
        "ID_CARD": ("My Chinese ID number is {ID_CARD}.", "For verification, my ID is {ID_CARD}."),
        "BANK_CARD": ("The card number is {BANK_CARD}.", "Card: {BANK_CARD}."),
        "EMAIL": ("Please reply to {EMAIL}.", "My email is {EMAIL}."),
        "ADDRESS": ("I live at {ADDRESS}.", "My address is {ADDRESS}."),
    },
    "zh": {
        "NAME": ("您好，我是{NAME}。", "我叫{NAME}，", "本人{NAME}，", "你好，我的名字是{NAME}，", "持卡人{NAME}。"),
        "PHONE": ("我的手机号是{PHONE}。", "有问题请打{PHONE}联系我。", "回电请拨{PHONE}。"),
        "ID_CARD": ("我的身份证号是{ID_CARD}。", "证件号码{ID_CARD}。"),
        "BANK_CARD": ("卡号是{BANK_CARD}。", "涉及的银行卡号{BANK_CARD}。"),
        "EMAIL": ("我的邮箱是{EMAIL}。", "资料可以发到{EMAIL}。"),
        "ADDRESS": ("我住在{ADDRESS}。", "我的地址是{ADDRESS}。"),
    },
}

# Agent openings (with or without the customer's name), closings (some signed by the agent or
# carrying a case number) and extra sentences confirming one PII value on file.
REPLY_GREETINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "named": ("Dear {NAME},\n\n", "Hi {NAME},\n\n", "Hello {NAME}, thanks for contacting us.",
                  "Good afternoon {NAME}."),
        "plain": ("Hello, and thank you for contacting us.", "Hi there,\n\n", "Dear customer,\n\n", ""),
    },
    "zh": {
        "named": ("尊敬的{NAME}客户，您好！", "{NAME}先生/女士，您好。", "您好，客户{NAME}，", "{NAME}您好，感谢您的耐心等待。"),
        "plain": ("您好，", "您好，感谢您联系我们。", "尊敬的客户，您好！", ""),
    },
}
REPLY_CLOSINGS: dict[str, tuple[str, ...]] = {
    "en": ("Is there anything else I can help you with?", "\n\nKind regards,\n{AGENT}\nCustomer Service",
           "\n\nBest regards,\n{AGENT}", "Your reference for this conversation is {CASE}.",
           "If you need anything else, just reply to this message.", ""),
    "zh": ("请问还有其他可以帮您的吗？", "感谢您的来电，祝您生活愉快！", "本次服务编号为{CASE}，如有疑问请随时联系我们。",
           "客服专员{AGENT}为您服务，祝您生活愉快。", ""),
}
REPLY_CLAUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "PHONE": ("We'll send a confirmation text to {PHONE}.", "If we need more details we'll call you on {PHONE}."),
        "EMAIL": ("A copy of this confirmation has been sent to {EMAIL}.", "We'll email updates to {EMAIL}."),
        "ID_CARD": ("I've verified your identity against the ID number on file, {ID_CARD}.",),
        "ADDRESS": ("Any letters will go to your registered address, {ADDRESS}.",),
        "BANK_CARD": ("This concerns card {BANK_CARD}.",),
    },
    "zh": {
        "PHONE": ("处理结果将以短信发送至您的预留手机{PHONE}。", "如需补充材料，我们会致电{PHONE}与您联系。"),
        "EMAIL": ("电子回单已发送至您的邮箱{EMAIL}。", "后续进展会发送到{EMAIL}。"),
        "ID_CARD": ("已核实您的身份证号{ID_CARD}，与开户信息一致。",),
        "ADDRESS": ("相关函件将寄送至您的登记地址{ADDRESS}。",),
        "BANK_CARD": ("本次业务涉及的卡号为{BANK_CARD}。",),
    },
}
