"""Seeded generator of synthetic bank customer-service dialogues with planted PII.

The generative ``chat`` task trains on instruction/response pairs: a customer's
message and the agent's reply.  fedbank cannot ship real conversations, so
this module makes them, in Chinese and English, for one of :data:`TOPICS`.
Each customer message template comes with the agent's answer to it; the
answer is wrapped in a greeting (often naming the customer), sometimes a
confirmation of a value on file, and a closing (a case number, or the
agent's signature).  PII is planted on both sides -- the customer gives a
card number or a new phone, the agent confirms the card ending, the name,
the phone or address on file -- because desensitization must run on prompt
and response alike before tokenization.  Each :class:`Dialogue` carries its
answer key: the PII values planted (in the formats of :mod:`common.data.synthetic.messages`,
whose value makers it reuses) and the non-PII numbers (amounts, dates, case
numbers, card tails) that must survive.  The exchanges are in
:mod:`common.data.synthetic.dialogue_exchanges`, the wrapping phrases in
:mod:`common.data.synthetic.dialogue_phrases`; this module assembles them.

A value is made once per dialogue and reused: the reply confirms the same
new address the customer gave, and a card tail is the tail of the card
number.  Generation is deterministic per seed: all randomness flows from one
``random.Random(seed)`` instance, never the global random state.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from common.data.synthetic.dialogue_exchanges import EXCHANGES
from common.data.synthetic.dialogue_phrases import PROMPT_CLAUSES, REPLY_CLAUSES, REPLY_CLOSINGS, REPLY_GREETINGS
from common.data.synthetic.messages import PlantedPII, check_zh_fraction, make_non_pii, make_pii
from common.errors import ConfigError

TOPICS: tuple[str, ...] = (
    "card_lost", "card_activation", "transfer_failed", "balance_inquiry", "loan_question",
    "fraud_report", "address_change", "contact_update", "fee_dispute", "statement_request",
)


@dataclass(frozen=True)
class Dialogue:
    """One synthetic customer-service exchange and its answer key.

    Attributes:
        prompt: The customer's message.
        response: The agent's reply.
        topic: What the customer wants, one of :data:`TOPICS`.
        language: ``"en"`` or ``"zh"``.
        pii: The PII values planted in ``prompt`` and/or ``response``, each once
            (a value the agent repeats is listed once), exactly as they appear.
        non_pii_numbers: Number-bearing strings planted that are not PII
            (amounts, dates, times, references, case numbers, card tails,
            branch codes), exactly as they appear.
    """

    prompt: str
    response: str
    topic: str
    language: str
    pii: tuple[PlantedPII, ...]
    non_pii_numbers: tuple[str, ...]


# --------------------------------------------------------------------------- slots
# PII slots and their PII type.  NAME is the customer, OTHER a third party (payee, family
# member), AGENT the agent signing the reply; OTHER and AGENT are written without a title.
_PII_SLOTS = {"NAME": "NAME", "OTHER": "NAME", "AGENT": "NAME", "PHONE": "PHONE", "ID_CARD": "ID_CARD",
              "BANK_CARD": "BANK_CARD", "EMAIL": "EMAIL", "ADDRESS": "ADDRESS"}
# Non-PII slots: AMOUNT DATE TIME REF BRANCH as in common.data.synthetic.messages; CASE is the agent's case
# number (a reference); TAIL is the last four digits of the dialogue's card number.
_CASE, _TAIL = "CASE", "TAIL"
_SLOT = re.compile(r"\{([A-Z_]+)\}")
# Shares of replies that greet the customer by name, and that confirm one more value on file.
_NAMED_GREETING_SHARE = 0.45
_REPLY_CLAUSE_SHARE = 0.35


# --------------------------------------------------------------------------- assembly
def _pii_types(template: str) -> set[str]:
    return {_PII_SLOTS[s] for s in _SLOT.findall(template) if s in _PII_SLOTS}


class _DialogueFiller:
    """Fills the slots of one dialogue, each slot once, and keeps its answer key."""

    def __init__(self, rng: random.Random, lang: str) -> None:
        self.rng, self.lang = rng, lang
        self.pii: list[PlantedPII] = []
        self.numbers: list[str] = []
        self._written: dict[str, str] = {}
        self._card: tuple[str, str] | None = None

    def fill(self, template: str) -> str:
        return _SLOT.sub(lambda m: self._slot(m.group(1)), template)

    def _slot(self, slot: str) -> str:
        if slot not in self._written:
            self._written[slot] = self._make(slot)
        return self._written[slot]

    def _card_number(self) -> tuple[str, str]:
        if self._card is None:  # made when the card or its tail is first needed
            self._card = make_pii("BANK_CARD", self.rng, self.lang)
        return self._card

    def _make(self, slot: str) -> str:
        if slot in _PII_SLOTS:
            pii_type = _PII_SLOTS[slot]
            if slot == "BANK_CARD":
                written, value = self._card_number()
            else:  # the agent is not the customer, nor the payee: redraw a value already planted
                written, value = make_pii(pii_type, self.rng, self.lang)
                while any(p.value == value for p in self.pii):
                    written, value = make_pii(pii_type, self.rng, self.lang)
            if slot in ("OTHER", "AGENT"):
                written = value  # no "Mr." before a payee or an agent
            self.pii.append(PlantedPII(pii_type, value))
            return written
        if slot == _TAIL:
            written = re.sub(r"\D", "", self._card_number()[1])[-4:]
        else:
            written = make_non_pii("REF" if slot == _CASE else slot, self.rng, self.lang)
        self.numbers.append(written)
        return written


def _prompt_parts(rng: random.Random, lang: str, core: str) -> tuple[list[str], str | None]:
    """The customer's message ``core`` plus clauses up to 1-3 PII values in all, and an optional signature."""
    in_core = _pii_types(core)
    spare = [t for t in PROMPT_CLAUSES[lang] if t not in in_core]
    extra = rng.sample(spare, max(0, rng.randint(1, 3) - len(in_core)))
    clauses = {t: rng.choice(PROMPT_CLAUSES[lang][t]) for t in extra}
    opener = clauses.pop("NAME", None)
    signature = None
    if opener and opener.startswith("SIGN:"):
        signature, opener = opener[len("SIGN:"):], None
    return ([opener] if opener else []) + [core] + list(clauses.values()), signature


def _reply_parts(rng: random.Random, lang: str, core: str) -> list[str]:
    """The agent's greeting, answer ``core``, optional confirmation of a value on file, and closing."""
    named = rng.random() < _NAMED_GREETING_SHARE
    greeting = rng.choice(REPLY_GREETINGS[lang]["named" if named else "plain"])
    parts = [greeting, core]
    if rng.random() < _REPLY_CLAUSE_SHARE:
        spare = [t for t in REPLY_CLAUSES[lang] if t not in _pii_types(core)]
        parts.append(rng.choice(REPLY_CLAUSES[lang][rng.choice(spare)]))
    closings = [c for c in REPLY_CLOSINGS[lang] if "{CASE}" not in c or "{CASE}" not in core]  # one case number
    parts.append(rng.choice(closings))
    return [p for p in parts if p]


def _join(parts: list[str], lang: str) -> str:
    text = ""
    for part in parts:
        glue = "" if not text or lang == "zh" or text.endswith("\n") or part.startswith("\n") else " "
        text += glue + part
    return text


def _make_dialogue(rng: random.Random, lang: str, topic: str | None = None) -> Dialogue:
    topic = topic or rng.choice(TOPICS)
    asked, answered = rng.choice(EXCHANGES[lang][topic])
    prompt_parts, signature = _prompt_parts(rng, lang, asked)
    reply_parts = _reply_parts(rng, lang, answered)
    filler = _DialogueFiller(rng, lang)
    prompt = _join([filler.fill(p) for p in prompt_parts], lang)
    if signature:
        prompt += filler.fill(signature)
    response = _join([filler.fill(p) for p in reply_parts], lang)
    return Dialogue(prompt, response, topic, lang, tuple(filler.pii), tuple(filler.numbers))


def generate_dialogues(n: int, seed: int, zh_fraction: float = 0.5) -> list[Dialogue]:
    """Generate ``n`` synthetic customer-service dialogues, deterministically for ``seed``.

    Args:
        n: Number of dialogues (>= 0).
        seed: Seed of the private random generator; equal seeds give equal output.
        zh_fraction: Probability that a dialogue is in Chinese (0..1).

    Returns:
        The dialogues; every prompt carries 1-3 planted PII values, most replies carry some too.

    Raises:
        ConfigError: If ``n`` is negative or ``zh_fraction`` is outside [0, 1].
    """
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"number of synthetic dialogues must be a non-negative integer, got {n!r}")
    check_zh_fraction(zh_fraction)
    rng = random.Random(seed)
    return [_make_dialogue(rng, "zh" if rng.random() < zh_fraction else "en") for _ in range(n)]


def generate_labelled_dialogues(topics: list[str], rng: random.Random, zh_fraction: float = 0.5) -> list[Dialogue]:
    """One dialogue per entry of ``topics``, on that topic, drawn from ``rng``.

    Made exactly as :func:`generate_dialogues` makes them, only the topic is
    given instead of drawn, so a caller that decided the topic mix (a simulated
    branch's Dirichlet skew, the held-out set) gets dialogues from its own stream.

    Raises:
        ConfigError: a topic is not one of :data:`TOPICS`, or ``zh_fraction`` is outside [0, 1].
    """
    unknown = sorted(set(topics) - set(TOPICS))
    if unknown:
        raise ConfigError(f"synthetic dialogue topics are {', '.join(TOPICS)}; got {unknown[0]!r}")
    check_zh_fraction(zh_fraction)
    return [_make_dialogue(rng, "zh" if rng.random() < zh_fraction else "en", topic) for topic in topics]
