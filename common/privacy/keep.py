"""Values that must survive masking: references after a reference cue, and bank products and brands.

The engine (:mod:`common.privacy.desensitize`) runs :func:`detect_keep` before
every PII detector and claims its spans as ``KEEP``, so no later detector can
mask them and they are never replaced:

* the token right after a **reference cue** (订单号, 工单号, 流水号, 合同编号,
  order no., ref, ticket, invoice, transaction id, case ...): an order number
  that happens to pass Luhn or looks like a mobile number is still an order
  number;
* **bank products and brands** (花呗, 借呗, 余额宝, Apple Pay, American
  Express, ...), matched with an Aho-Corasick automaton (:mod:`ahocorasick`)
  at word boundaries: masking the product a customer asks about destroys the
  very signal the model needs.
"""

from __future__ import annotations

import re

import ahocorasick

from common.privacy.lexicons import FIRST_NAMES, LAST_NAMES, fold

KEEP = "KEEP"

_REFERENCE_CUE = re.compile(
    r"(?:订单号?|单号|工单号?|流水号|交易号|参考号|凭证号|合同编号|合同号|合同|申请编号|申请号|(?<!医保)(?<!个人)(?<!证件)(?<!社保)(?<!參保)(?<!参保)编号|保单号|户号|学号|客户号|"
    r"用户ID|会员号|服务编号|快递单号|运单号|营业执照号|发票号|"
    r"(?<![A-Za-z])(?i:(?:request|application|service)\s+(?:number|no\.?|id)|order(?:\s+(?:no\.?|number|id|#))?|ref(?:erence)?(?:\s+(?:no\.?|number|#))?|ticket(?:\s+(?:no\.?|number|#))?|"
    r"invoice(?:\s+(?:no\.?|number|#))?|txn(?:[_ ]?id)?|transaction\s+(?:id|ref|number|no\.?)|case(?:\s+(?:ref|no\.?|number|id))?|"
    r"confirmation(?:\s+(?:no\.?|number|code))?|tracking(?:\s+(?:no\.?|number))?|customer[_ ]id|complaint(?:\s+(?:ref|no\.?))?|"
    r"vin|cheque(?:\s+(?:no\.?|number))?|check\s+(?:no\.?|number)|claim(?:\s+(?:no\.?|number))?))"
    r"(?P<sep>(?:\s+(?i:for|of|on)\s+(?i:this|that|the|your|my)\s+[A-Za-z]+)?\s*(?:[:：=#]|是|为|is)?\s*[\"'“]?)(?P<value>[A-Za-z0-9][A-Za-z0-9/_-]*[0-9][A-Za-z0-9/_-]*)")

_PRODUCTS_ZH = (
    "花呗 借呗 余额宝 余利宝 网商贷 微粒贷 零钱通 理财通 朝朝宝 招招宝 闪电贷 快e贷 融e借 e招贷 京东白条 白条 金条 "
    "微信支付 支付宝 云闪付 财付通 数字人民币 信用卡 储蓄卡 借记卡 龙卡 牡丹卡 长城卡 金穗卡 一卡通 银联 "
    "工银 建行 招行 农行 中行 交行 浦发 民生 兴业 光大 华夏 平安 中信 广发 邮储").split()
_PRODUCTS_EN = (
    "Apple Pay|Google Pay|Samsung Pay|American Express|Amex|Visa|Mastercard|UnionPay|PayPal|Venmo|Zelle|Revolut|"
    "Monzo|Klarna|Afterpay|Alipay|WeChat Pay|WeChat|Apple|Google|Amazon|Netflix|Spotify|Uber|Airbnb|Western Union|"
    "MoneyGram|Barclays|HSBC|Lloyds|NatWest|Santander|Citi|Citibank|Wells Fargo|Bank of America|Discover|"
    "Diners Club|JCB|Maestro|Cirrus|Swift|SEPA|World Elite|Platinum|Sapphire").split("|")


def _automaton() -> ahocorasick.Automaton:
    auto = ahocorasick.Automaton()
    for word in (*_PRODUCTS_ZH, *_PRODUCTS_EN):
        auto.add_word(word.lower(), len(word))
    auto.make_automaton()
    return auto


_AUTO = _automaton()


_PLACE_AFTER = re.compile(r"[\u4e00-\u9fff]?(?:路|街|大道)|新城|大厦|广场|小区|花园")


def _word_edge(text: str, i: int) -> bool:
    """No ASCII letter or digit on the outer side of position ``i`` (Chinese products need no boundary)."""
    return i < 0 or i >= len(text) or not (text[i].isascii() and text[i].isalnum())


_GIVEN_BEFORE = re.compile(r"(?<![\w'’])([A-Z][a-z'’-]+) $")


def _surname_of(work: str, start: int, end: int) -> bool:
    """A brand word written as a surname after a given name (Lawrence Swift), not the brand (SWIFT, Swift transfer)."""
    word = work[start:end]
    given = _GIVEN_BEFORE.search(work, max(0, start - 24), start)
    return bool(given) and word.istitle() and fold(word) in LAST_NAMES and fold(given[1]) in FIRST_NAMES


def detect_keep(work: str) -> list[tuple[int, int, str]]:
    """Spans of reference values and product/brand names to protect from masking."""
    spans = [(m.start("value"), m.end("value"), KEEP) for m in _REFERENCE_CUE.finditer(work)]
    lower = work.lower()
    for end, length in _AUTO.iter(lower):
        start = end - length + 1
        if not lower[start].isascii():
            if not _PLACE_AFTER.match(lower, end + 1):  # 华夏路, 平安大街: a street, not the bank
                spans.append((start, end + 1, KEEP))
        elif _word_edge(lower, start - 1) and _word_edge(lower, end + 1) and not _surname_of(work, start, end + 1):
            spans.append((start, end + 1, KEEP))
    return spans
