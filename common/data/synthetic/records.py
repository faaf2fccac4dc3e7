"""Seeded generators of structured bank records with planted PII: card transactions and credit applicants.

:func:`generate_transactions` makes card transactions for the ``fraud`` task.
Every transaction carries direct identifiers that must never reach a model
(``customer_name``, ``card_number`` -- Luhn-valid --, ``phone``; a
``transaction_id``), a quasi-identifier (``customer_age``), a free-text
``note`` that sometimes holds a phone number or e-mail, and the features a
fraud model uses: amount, merchant category, home and merchant country, hour,
card present or not, entry mode, device, and the card's transactions in the
last 24 hours.  Whether a transaction is fraud is drawn from a logistic risk
model over realistic signals -- a new device, a foreign merchant, night
hours, card not present, a high-risk merchant category (electronics,
jewellery, gift cards, money transfer, crypto), an amount unusual for the
category, a burst of transactions, a magnetic-stripe read -- whose intercept
is calibrated on the drawn features so the expected fraud rate is
``fraud_rate`` (1 % by default).  The true probability is returned too, so a
test or benchmark can score the Bayes-optimal ranking (the ceiling of any model).

Credit applications for the ``credit`` task (the benchmark uses German
Credit) carry name, ID-card number, phone, e-mail, age and postcode; about
30 % of them are labelled ``bad``.

:func:`generate_labelled` makes records of either kind with given labels
(one simulated branch's, the held-out set), drawn from the caller's stream.

Deterministic per seed: all randomness flows from one ``random.Random(seed)``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from common.data.synthetic.planted_values import make_bank_card, make_email, make_id_card, make_name, make_phone

FRAUD, LEGIT = "fraud", "legit"
BAD, GOOD = "bad", "good"
#: The generators' default positive rates: the label priors of the synthetic ``fraud`` and ``credit`` tasks.
FRAUD_RATE, BAD_RATE = 0.01, 0.3
#: The generators' columns that identify a record but that no name rule catches.
TRANSACTION_ID_COLUMNS = ("transaction_id",)
APPLICANT_ID_COLUMNS = ("application_id",)


@dataclass(frozen=True)
class TabularRecord:
    """One generated record.

    Attributes:
        fields: column -> value, as a CSV row would hold them (strings).
        label: ``fraud``/``legit`` or ``bad``/``good``.
        probability: the generator's true probability of the positive label.
        pii: the planted identifier values (type, value) that must not reach a model.
    """

    fields: dict[str, str]
    label: str
    probability: float
    pii: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------- transactions
# category: (share of transactions, log-normal mu and sigma of the amount, P(card present), high risk)
_CATEGORIES = {
    "grocery": (0.22, 3.3, 0.6, 0.92, False),
    "restaurant": (0.14, 3.2, 0.6, 0.85, False),
    "fuel": (0.09, 3.7, 0.4, 0.95, False),
    "pharmacy": (0.05, 3.0, 0.6, 0.85, False),
    "utilities": (0.05, 4.3, 0.5, 0.05, False),
    "online retail": (0.15, 3.8, 0.9, 0.0, False),
    "entertainment": (0.06, 3.4, 0.7, 0.3, False),
    "travel": (0.05, 5.6, 0.8, 0.2, False),
    "atm withdrawal": (0.07, 4.6, 0.6, 1.0, False),
    "electronics": (0.05, 5.2, 0.9, 0.4, True),
    "jewelry": (0.015, 5.8, 0.9, 0.6, True),
    "gift cards": (0.015, 4.2, 0.7, 0.3, True),
    "money transfer": (0.02, 5.3, 1.0, 0.1, True),
    "crypto exchange": (0.01, 5.5, 1.1, 0.0, True),
}
_HOME = (("GB", 0.35), ("US", 0.35), ("DE", 0.1), ("FR", 0.1), ("CN", 0.1))
_ABROAD = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CN", "HK", "SG", "AE", "NG", "RU", "BR", "MX", "TH", "TR")
# Share of a day's card transactions in each hour (00-23): quiet at night, peaks at lunch and early evening.
_HOURLY = (0.8, 0.5, 0.3, 0.25, 0.25, 0.4, 1.2, 2.5, 4.0, 5.0, 5.5, 6.0, 7.0, 6.5, 6.0, 5.8, 6.0, 6.8, 7.0, 6.2, 5.0, 3.8, 2.5, 1.4)
_MERCHANTS = {
    "grocery": ("TESCO STORES", "WHOLE FOODS", "ALDI", "CARREFOUR"), "restaurant": ("PRET A MANGER", "CHIPOTLE", "NANDOS"),
    "fuel": ("SHELL", "BP", "ESSO"), "pharmacy": ("BOOTS", "CVS PHARMACY"), "utilities": ("BRITISH GAS", "CON EDISON"),
    "online retail": ("AMZN MKTP", "EBAY", "ALIEXPRESS", "ETSY"), "entertainment": ("NETFLIX.COM", "CINEWORLD", "STEAM GAMES"),
    "travel": ("BA.COM", "EXPEDIA", "AIRBNB", "UBER TRIP"), "atm withdrawal": ("ATM CASH",),
    "electronics": ("APPLE STORE", "CURRYS", "BEST BUY"), "jewelry": ("PANDORA", "GOLDSMITHS"),
    "gift cards": ("GIFTCARDMALL", "PREPAID VOUCHERS"), "money transfer": ("WESTERN UNION", "MONEYGRAM", "WISE"),
    "crypto exchange": ("BINANCE", "COINBASE", "KRAKEN"),
}


def _pick(rng: random.Random, weighted) -> str:
    names, weights = zip(*weighted)
    return rng.choices(names, weights=weights)[0]


def _calibrated_intercept(scores: list[float], rate: float) -> float:
    """``b`` with mean(sigmoid(score + b)) == rate (bisection; the mean rises with b)."""
    lo, hi = -40.0, 40.0
    for _ in range(60):
        mid = (lo + hi) / 2
        mean = sum(1.0 / (1.0 + math.exp(-min(max(s + mid, -500), 500))) for s in scores) / len(scores)
        lo, hi = (mid, hi) if mean < rate else (lo, mid)
    return (lo + hi) / 2


def _transaction(rng: random.Random, zh_fraction: float, tx_id: str) -> tuple[dict[str, str], float, list[tuple[str, str]]]:
    lang = "zh" if rng.random() < zh_fraction else "en"
    home = "CN" if lang == "zh" else _pick(rng, _HOME[:-1])
    category = _pick(rng, [(c, v[0]) for c, v in _CATEGORIES.items()])
    _, mu, sigma, p_present, risky = _CATEGORIES[category]
    amount = round(math.exp(rng.gauss(mu, sigma)), 2)
    present = rng.random() < p_present
    entry = ("atm" if category == "atm withdrawal" else rng.choices(("chip", "contactless", "magstripe"), (0.6, 0.35, 0.05))[0]) if present else "online"
    device = ("atm" if category == "atm withdrawal" else "pos terminal") if present else ("new device" if rng.random() < 0.12 else "known device")
    foreign_p = 0.6 if category == "travel" else (0.05 if present else 0.2)
    merchant_country = rng.choice([c for c in _ABROAD if c != home]) if rng.random() < foreign_p else home
    hour = rng.choices(range(24), weights=_HOURLY)[0]
    burst = min(int(-math.log(1 - rng.random()) * 2.2), 30)  # transactions on the card in the last 24 hours
    age = min(max(int(rng.gauss(43, 15)), 18), 92)
    written_name, name = make_name(rng, lang)
    card, phone = make_bank_card(rng, lang), make_phone(rng, lang)
    note = f"{rng.choice(_MERCHANTS[category])} {merchant_country}"
    pii = [("NAME", name), ("BANK_CARD", card), ("PHONE", phone)]
    if rng.random() < 0.03:  # a free-text note that holds PII: the branch must mask it
        email = make_email(rng, lang)
        extra_phone = make_phone(rng, lang)
        note += rng.choice((f" customer asked to call back on {extra_phone}", f" receipt sent to {email}"))
        pii.append(("PHONE", extra_phone) if "call back" in note else ("EMAIL", email))
    score = (2.4 * (device == "new device") + 1.8 * (merchant_country != home) + 1.6 * (hour <= 5)
             + 1.3 * (not present) + 2.2 * risky + 1.1 * min(max(math.log(amount) - mu, -1.0), 3.0)
             + 0.6 * max(0, burst - 3) + 1.8 * (entry == "magstripe"))
    fields = {
        "transaction_id": tx_id,
        "customer_name": written_name,
        "card_number": card,
        "phone": phone,
        "customer_age": str(age),
        "amount": f"{amount:.2f}",
        "merchant_category": category,
        "home_country": home,
        "merchant_country": merchant_country,
        "hour": str(hour),
        "card_present": "yes" if present else "no",
        "entry_mode": entry,
        "device": device,
        "transactions_last_24h": str(burst),
        "note": note,
    }
    return fields, score, pii


def generate_transactions(n: int, seed: int, fraud_rate: float = FRAUD_RATE, zh_fraction: float = 0.0) -> list[TabularRecord]:
    """``n`` card transactions, about ``fraud_rate`` of them fraud (expected rate exact, realized binomial)."""
    if n < 1 or not 0 < fraud_rate < 1:
        raise ValueError("generate_transactions needs n >= 1 and 0 < fraud_rate < 1")
    rng = random.Random(seed)
    drawn = [_transaction(rng, zh_fraction, f"TX{i:09d}") for i in range(n)]
    b = _calibrated_intercept([s for _, s, _ in drawn], fraud_rate)
    out = []
    for fields, score, pii in drawn:
        p = 1.0 / (1.0 + math.exp(-(score + b)))
        out.append(TabularRecord(fields, FRAUD if rng.random() < p else LEGIT, p, tuple(pii)))
    return out


# --------------------------------------------------------------------------- credit applicants
_PURPOSES = (("car", 0.3), ("furniture", 0.2), ("education", 0.08), ("business", 0.1), ("repairs", 0.05),
             ("debt consolidation", 0.17), ("holiday", 0.1))
_POSTCODES = ("SW1A 1AA", "M1 1AE", "B33 8TH", "EH1 1YZ", "CF10 1EP", "LS1 4AP", "NW1 6XE", "G2 1DY")


def _applicant(rng: random.Random, zh_fraction: float, app_id: str) -> tuple[dict[str, str], float, tuple[tuple[str, str], ...]]:
    """One credit application: (fields, risk score, planted PII)."""
    lang = "zh" if rng.random() < zh_fraction else "en"
    age = min(max(int(rng.gauss(38, 12)), 19), 80)
    income = round(math.exp(rng.gauss(7.9, 0.5)), -1)
    employed = max(0, min(int(rng.expovariate(1 / 6)), age - 18))
    amount = round(math.exp(rng.gauss(8.3, 0.8)), -2)
    duration = rng.choice((6, 12, 18, 24, 36, 48, 60))
    late = min(int(rng.expovariate(1.6)), 6)
    checking = rng.choices(("negative", "0-1000", ">1000", "none"), (0.25, 0.3, 0.1, 0.35))[0]
    housing = rng.choices(("own", "rent", "with family"), (0.6, 0.3, 0.1))[0]
    purpose = _pick(rng, _PURPOSES)
    written_name, name = make_name(rng, lang)
    id_card, phone, email = make_id_card(rng, lang), make_phone(rng, lang), make_email(rng, lang)
    burden = amount / max(income * duration, 1.0)
    score = (0.8 * late + 2.5 * min(burden, 1.5) - 0.06 * min(employed, 20) + 0.5 * (duration >= 36)
             + 0.5 * (housing == "rent") + 0.8 * (checking == "negative") - 0.5 * (checking == "none")
             - 0.015 * (age - 38) + 0.4 * (purpose in ("holiday", "business")))
    fields = {
        "application_id": app_id,
        "customer_name": written_name,
        "id_number": id_card,
        "phone": phone,
        "email": email,
        "age": str(age),
        "postcode": rng.choice(_POSTCODES),
        "monthly_income": f"{income:.0f}",
        "years_employed": str(employed),
        "loan_amount": f"{amount:.0f}",
        "duration_months": str(duration),
        "purpose": purpose,
        "housing": housing,
        "checking_balance": checking,
        "late_payments_2y": str(late),
    }
    return fields, score, (("NAME", name), ("ID_CARD", id_card), ("PHONE", phone), ("EMAIL", email))


# --------------------------------------------------------------------------- records of given labels
#: Seed and size of the fixed reference sample on which :func:`reference_intercept` calibrates.
REFERENCE_SEED, REFERENCE_SIZE = 0x5EED, 5000
_KINDS: dict[str, tuple[Callable, str, str]] = {  # kind -> (record maker, positive label, negative label)
    "fraud": (_transaction, FRAUD, LEGIT),
    "credit": (_applicant, BAD, GOOD),
}


@lru_cache(maxsize=8)
def reference_intercept(kind: str, rate: float, zh_fraction: float) -> float:
    """The risk model's intercept for an expected positive rate ``rate``, calibrated once on a fixed sample.

    :func:`generate_transactions` calibrates on the batch it draws; records
    drawn a few at a time (one branch's) need one intercept for every caller,
    so it is calibrated on :data:`REFERENCE_SIZE` records from the fixed seed
    :data:`REFERENCE_SEED` (cached per process: identical on every node).
    """
    make = _KINDS[kind][0]
    rng = random.Random(REFERENCE_SEED)
    scores = [make(rng, zh_fraction, "")[1] for _ in range(REFERENCE_SIZE)]
    return _calibrated_intercept(scores, rate)


def generate_labelled(kind: str, labels: Sequence[str], rng: random.Random, zh_fraction: float = 0.0,
                      rate: float | None = None, id_tag: str = "") -> list[TabularRecord]:
    """One record of ``kind`` (``fraud``: transactions, ``credit``: applicants) per entry of ``labels``, of that label.

    Records come from the generator's own model, drawn from ``rng``: each draw
    makes a record and its label as :func:`generate_transactions` would (the
    risk model with the :func:`reference_intercept` of ``rate``, default
    :data:`FRAUD_RATE` / :data:`BAD_RATE`), and is kept if a record of that
    label is still wanted (rejection sampling).  A kept record is therefore
    distributed as the generator's records *of that label*: a fraud row here is
    like a fraud row of :func:`generate_transactions`.  Cost: about
    ``max(count of label / share of label)`` draws, e.g. 100 draws per fraud row
    at a 1 % rate.  Identifier values are ``TX-<id_tag>-<draw>`` /
    ``APP-<id_tag>-<draw>``.

    Raises:
        ValueError: an unknown kind or label, or a rate outside (0, 1).
    """
    if kind not in _KINDS:
        raise ValueError(f"generate_labelled: kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    make, positive, negative = _KINDS[kind]
    rate = (FRAUD_RATE if kind == "fraud" else BAD_RATE) if rate is None else rate
    if not 0 < rate < 1:
        raise ValueError("generate_labelled needs 0 < rate < 1")
    need = Counter(labels)
    unknown = sorted(set(need) - {positive, negative})
    if unknown:
        raise ValueError(f"generate_labelled: {kind} labels are {negative!r} and {positive!r}, got {unknown[0]!r}")
    b = reference_intercept(kind, rate, float(zh_fraction))
    prefix = "TX" if kind == "fraud" else "APP"
    kept: dict[str, list[TabularRecord]] = {label: [] for label in need}
    missing = len(labels)
    # A cap no sane request reaches (expected draws: about count / rate): fail loudly, never loop forever.
    max_draws = 1000 + 50 * int(len(labels) / min(rate, 1 - rate))
    draws = 0
    while missing:
        if draws >= max_draws:
            raise RuntimeError(f"generate_labelled: {max_draws} draws did not give {dict(need)}")
        fields, score, pii = make(rng, zh_fraction, f"{prefix}-{id_tag}-{draws:07d}")
        draws += 1
        p = 1.0 / (1.0 + math.exp(-(score + b)))
        label = positive if rng.random() < p else negative
        if len(kept.get(label, ())) < need.get(label, 0):
            kept[label].append(TabularRecord(fields, label, p, tuple(pii)))
            missing -= 1
    queues = {label: iter(rows) for label, rows in kept.items()}
    return [next(queues[label]) for label in labels]
