"""Seeded generator of synthetic bank customer-service messages with planted PII.

fedbank cannot ship real customer conversations, so tests, simulations and
benchmarks train and evaluate on messages made here.  Each
:class:`SyntheticRecord` is one message a customer might send a bank branch,
in Chinese or English, labelled with one of :data:`INTENTS`.  The generator
plants 1-4 PII values (ID cards, phones, bank cards, e-mails, names,
addresses) in the real-world formats they take, plus non-PII numbers
(amounts, dates, times, reference numbers, card tails, branch codes), and
records both, so that the desensitizer can be scored on what it must remove
and on what it must keep.  The sentences are in
:mod:`common.data.synthetic.message_templates`, the values come from
:mod:`common.data.synthetic.planted_values`; this module assembles them.

Generation is deterministic per seed: all randomness flows from one
``random.Random(seed)`` instance, never the global random state.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.data.synthetic.message_templates import CORE_MESSAGES, PII_CLAUSES
from common.data.synthetic.planted_values import (make_address, make_amount, make_bank_card, make_branch_code,
                                                 make_card_tail, make_date, make_email, make_id_card, make_name,
                                                 make_phone, make_ref, make_time)
from common.errors import ConfigError

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


def _as_written(make: Callable[[random.Random, str], str]) -> Callable[[random.Random, str], tuple[str, str]]:
    """Adapt a maker whose planted value is exactly the text it writes."""
    def written_and_value(rng: random.Random, lang: str) -> tuple[str, str]:
        value = make(rng, lang)
        return value, value
    return written_and_value


# Each PII maker returns (text as written, planted value).
_PII_MAKERS = {
    "ID_CARD": _as_written(make_id_card), "PHONE": _as_written(make_phone),
    "BANK_CARD": _as_written(make_bank_card), "EMAIL": _as_written(make_email),
    "NAME": make_name, "ADDRESS": _as_written(make_address),
}
_NON_PII_MAKERS = {
    "AMOUNT": make_amount, "DATE": make_date, "TIME": make_time, "REF": make_ref,
    "TAIL": make_card_tail, "BRANCH": make_branch_code,
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
    core = rng.choice(CORE_MESSAGES[lang][label])
    in_core = set(_SLOT.findall(core)) & set(_PII_MAKERS)
    wanted = rng.randint(1, 4)
    spare = [t for t in _PII_MAKERS if t not in in_core]
    extra = rng.sample(spare, max(0, wanted - len(in_core)))  # random order, distinct types
    clauses = {t: rng.choice(PII_CLAUSES[lang][t]) for t in extra}
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
