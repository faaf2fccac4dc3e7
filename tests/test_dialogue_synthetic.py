"""Tests of the synthetic customer-service dialogue generator (common.data.synthetic.dialogues).

Besides shape, determinism and language mix, they check that PII is planted
on both sides of the exchange and that the branch-side desensitizer removes
it from prompt and response alike, as the ``chat`` task requires before
tokenization.
"""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from common.data.synthetic.dialogue_exchanges import EXCHANGES
from common.privacy.desensitize import Desensitizer, desensitize
from common.data.synthetic.dialogues import TOPICS, Dialogue, generate_dialogues
from common.errors import ConfigError
from common.privacy.pii import PII_TYPES, SYNTHETIC_TYPES
from common.data.synthetic.messages import PlantedPII

LANGS = ("en", "zh")


@pytest.fixture(scope="module")
def dialogues() -> list[Dialogue]:
    return generate_dialogues(2000, seed=17)


@pytest.fixture(scope="module")
def masked(dialogues: list[Dialogue]) -> list[tuple[Dialogue, str, str]]:
    """Each dialogue with its desensitized prompt and response."""
    desensitizer = Desensitizer()
    return [(d, desensitizer.apply(d.prompt).text, desensitizer.apply(d.response).text) for d in dialogues]


# --------------------------------------------------------------------------- shape and determinism
def test_generation_is_deterministic_per_seed_and_leaves_global_random_alone() -> None:
    state = random.getstate()
    first = generate_dialogues(300, seed=11)
    assert random.getstate() == state
    assert generate_dialogues(300, seed=11) == first
    assert generate_dialogues(300, seed=12) != first


def test_dialogue_shape_and_topics(dialogues: list[Dialogue]) -> None:
    assert 8 <= len(TOPICS) <= 12 and len(set(TOPICS)) == len(TOPICS)
    assert all(isinstance(d, Dialogue) and d.prompt and d.response for d in dialogues)
    assert {d.topic for d in dialogues} == set(TOPICS)
    assert {d.language for d in dialogues} == set(LANGS)


def test_every_topic_appears_in_both_languages_for_a_modest_n() -> None:
    seen = {(d.language, d.topic) for d in generate_dialogues(400, seed=4)}
    assert seen == {(lang, topic) for lang in LANGS for topic in TOPICS}


@pytest.mark.parametrize(("zh_fraction", "low", "high"), [(0.5, 440, 560), (0.2, 140, 260), (0.8, 740, 860)])
def test_zh_fraction_is_respected(zh_fraction: float, low: int, high: int) -> None:
    zh = sum(d.language == "zh" for d in generate_dialogues(1000, seed=9, zh_fraction=zh_fraction))
    assert low <= zh <= high


def test_extreme_zh_fractions_give_one_language() -> None:
    assert {d.language for d in generate_dialogues(60, seed=1, zh_fraction=0.0)} == {"en"}
    assert {d.language for d in generate_dialogues(60, seed=1, zh_fraction=1.0)} == {"zh"}


def test_language_of_the_text_matches_the_label(dialogues: list[Dialogue]) -> None:
    han = re.compile(r"[\u4e00-\u9fff]")
    for d in dialogues:
        assert bool(han.search(d.prompt + d.response)) == (d.language == "zh"), d


def test_templates_are_varied_and_replies_are_topic_specific() -> None:
    exchanges = EXCHANGES  # per language, per topic: (prompt, reply) pairs
    for lang in LANGS:
        assert set(exchanges[lang]) == set(TOPICS)
        for topic in TOPICS:
            assert len({prompt for prompt, _ in exchanges[lang][topic]}) >= 5, (lang, topic)
            assert len({reply for _, reply in exchanges[lang][topic]}) >= 5, (lang, topic)
        replies = Counter(reply for topic in TOPICS for _, reply in exchanges[lang][topic])
        assert max(replies.values()) == 1  # each reply answers one message of one topic


# --------------------------------------------------------------------------- planted PII
def test_planted_values_appear_in_the_dialogue(dialogues: list[Dialogue]) -> None:
    for d in dialogues:
        assert all(isinstance(p, PlantedPII) and p.type in PII_TYPES for p in d.pii)
        assert all(p.value in d.prompt or p.value in d.response for p in d.pii), d
        assert all(n in d.prompt or n in d.response for n in d.non_pii_numbers), d
        assert len(set(d.pii)) == len(d.pii)  # a value the agent repeats is listed once


def test_every_prompt_and_most_replies_carry_pii_in_both_languages(dialogues: list[Dialogue]) -> None:
    for lang in LANGS:
        subset = [d for d in dialogues if d.language == lang]
        assert all(any(p.value in d.prompt for p in d.pii) for d in subset)
        in_reply = sum(any(p.value in d.response for p in d.pii) for d in subset) / len(subset)
        assert in_reply >= 0.8, (lang, in_reply)


def test_every_pii_type_is_planted_in_prompts_and_in_replies_of_both_languages(dialogues: list[Dialogue]) -> None:
    sides = {(d.language, side, p.type) for d in dialogues for p in d.pii
             for side, text in (("prompt", d.prompt), ("response", d.response)) if p.value in text}
    assert sides == {(lang, side, t) for lang in LANGS for side in ("prompt", "response") for t in SYNTHETIC_TYPES}


def test_agent_repeats_values_the_customer_gave_and_card_tails_match_the_card(dialogues: list[Dialogue]) -> None:
    repeated = [p for d in dialogues for p in d.pii if p.value in d.prompt and p.value in d.response]
    assert {p.type for p in repeated} >= {"ADDRESS", "PHONE", "EMAIL", "BANK_CARD", "NAME"}
    tail = re.compile(r"(?:ending(?: in)? |尾号)(\d{4})")
    checked = 0
    for d in dialogues:
        cards = [re.sub(r"\D", "", p.value) for p in d.pii if p.type == "BANK_CARD"]
        for m in tail.finditer(d.prompt + "\n" + d.response):
            if cards:
                assert m.group(1) == cards[0][-4:], d
                checked += 1
    assert checked > 50


# --------------------------------------------------------------------------- desensitization
def test_desensitizer_removes_planted_pii_from_prompts_and_replies(masked: list[tuple[Dialogue, str, str]]) -> None:
    planted, survived = Counter(), Counter()
    for d, prompt, response in masked:
        for p in d.pii:
            planted[(d.language, p.type)] += 1
            survived[(d.language, p.type)] += p.value in prompt or p.value in response
    assert set(planted) == {(lang, t) for lang in LANGS for t in SYNTHETIC_TYPES}
    assert all(survived[key] == 0 for key in planted), {k: v for k, v in survived.items() if v}


def test_non_pii_numbers_survive_desensitization(masked: list[tuple[Dialogue, str, str]]) -> None:
    for d, prompt, response in masked:
        assert all(n in prompt + "\n" + response for n in d.non_pii_numbers), d


# Agent-side phrasing the detector must handle (hand-written, not from the generator's tables).
AGENT_PHRASES = [
    ("尊敬的李娜客户，您好！您的申请已受理。", "尊敬的[NAME]客户，您好！您的申请已受理。"),
    ("王芳您好，您的卡片已补发。", "[NAME]您好，您的卡片已补发。"),
    ("本次由客服专员赵磊为您服务。", "本次由客服专员[NAME]为您服务。"),
    ("Hi Na Li,\n\nYour card has been replaced.", "Hi [NAME],\n\nYour card has been replaced."),
    ("Good afternoon Xiuying Wang. Your statement is attached.", "Good afternoon [NAME]. Your statement is attached."),
    ("Hello Sarah, the fee has been refunded.", "Hello [NAME], the fee has been refunded."),
]
AGENT_PHRASES_KEPT = ["尊敬的客户，您好！", "我行客服不会索要验证码。", "专员将在2个工作日内致电您。", "Hi there,\n\nThanks.",
                      "Hello Customer Service, my card is blocked.", "Good morning Team, any update?",
                      "也可以拨打客服电话激活。本次服务编号为251047551。"]  # a phone cue ends with its sentence


@pytest.mark.parametrize(("text", "expected"), AGENT_PHRASES)
def test_agent_greetings_and_signatures_are_masked(text: str, expected: str) -> None:
    assert desensitize(text).text == expected


@pytest.mark.parametrize("text", AGENT_PHRASES_KEPT)
def test_agent_phrases_without_names_survive(text: str) -> None:
    assert desensitize(text).text == text


@pytest.mark.parametrize(("n", "zh_fraction"), [(-1, 0.5), (10, 1.5), (10, -0.1)])
def test_bad_generator_arguments_are_config_errors(n: int, zh_fraction: float) -> None:
    with pytest.raises(ConfigError):
        generate_dialogues(n, seed=0, zh_fraction=zh_fraction)
