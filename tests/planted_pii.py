"""Test helpers: branch files whose every cell carries planted PII made up at test time, and a search for it.

Each planted cell holds a name, a phone number, a bank-card number, a
Chinese resident-ID number, an e-mail address and a random reference token,
all drawn fresh from a seeded-by-``secrets`` stream when the test runs: none
of them occurs in the repository (or in the app bundle HQ installs), so a
substring found anywhere HQ writes can only have come from a branch's file.
:meth:`Planted.needles` lists what to search for: every whole cell, every
component, and each number's digit runs of six or more digits (a phone is
found even where its separators were dropped).  :func:`find_planted` searches the bytes
of files (SQLite databases and JSON included; a value is searched as UTF-8
and as JSON writes it).
"""

from __future__ import annotations

import csv
import json
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

_LETTERS = "bcdfghjklmnprstvwxz"
_VOWELS = "aeiou"
_DIGIT_RUN = re.compile(r"\d{6,}")


def _word(rng: secrets.SystemRandom, syllables: int) -> str:
    return "".join(rng.choice(_LETTERS) + rng.choice(_VOWELS) for _ in range(syllables)).capitalize()


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _digits(rng: secrets.SystemRandom, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


class Planted:
    """A source of unique PII-like cell values; remembers every value it handed out."""

    def __init__(self) -> None:
        self.rng = secrets.SystemRandom()
        self.cells: list[str] = []
        self.parts: list[str] = []
        self.numbers: list[str] = []  # phones, cards, ID numbers: their digit runs are searched on their own

    def _remember(self, *parts: str) -> None:
        self.parts.extend(parts)

    def person(self) -> dict[str, str]:
        """One made-up customer: name, phone (with and without separators), card, ID number, e-mail, token."""
        first, last = _word(self.rng, 3), _word(self.rng, 3)
        phone = "1" + self.rng.choice("3589") + _digits(self.rng, 9)
        card_body = "62" + _digits(self.rng, 14)
        card = card_body + _luhn_digit(card_body)
        id_no = (self.rng.choice(["110101", "310104", "440305"]) + str(self.rng.randint(1950, 2004))
                 + f"{self.rng.randint(1, 12):02d}{self.rng.randint(1, 28):02d}" + _digits(self.rng, 3)
                 + self.rng.choice("0123456789X"))
        person = {
            "name": f"{first} {last}",
            "phone": f"{phone[:3]}-{phone[3:7]}-{phone[7:]}" if self.rng.random() < 0.5 else phone,
            "card": card,
            "id": id_no,
            "email": f"{first.lower()}.{last.lower()}{self.rng.randint(10, 99)}@{_word(self.rng, 2).lower()}mail.com",
            "token": f"PII{secrets.token_hex(6)}",
        }
        self._remember(*person.values())
        self.numbers.extend([person["phone"], card, id_no])
        return person

    def cell(self, template: str = "{name} {phone} card {card} id {id} {email} ref {token}") -> str:
        """A new cell: ``template`` filled with a new person's values."""
        value = template.format(**self.person())
        self.cells.append(value)
        return value

    def word(self) -> str:
        """A planted single token (for cells that must look like one word, e.g. a label)."""
        value = f"{_word(self.rng, 3)}{secrets.token_hex(4)}"
        self._remember(value)
        self.cells.append(value)
        return value

    def needles(self) -> set[str]:
        """Every string that must not appear where HQ writes: cells, their parts, each number's digit runs of >= 6.

        Digit runs are taken from the phone, card and ID numbers only (11 to 18
        digits here); a short run of a random hex token would match by chance
        in any large file.
        """
        found = set(self.cells) | set(self.parts)
        for number in self.numbers:
            found.update(_DIGIT_RUN.findall(number))
            found.update(_DIGIT_RUN.findall(number.replace("-", "")))
        return {n for n in found if n}


def write_csv(path: Path, header: list[str] | None, rows: Iterable[list[str]]) -> Path:
    """A UTF-8 CSV at ``path``; ``header`` None writes the rows only (a file without a header row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def _forms(needle: str) -> set[bytes]:
    return {needle.encode("utf-8"), json.dumps(needle)[1:-1].encode("utf-8")}


def find_planted(files: Iterable[Path], needles: set[str]) -> list[tuple[str, str]]:
    """``(file, value)`` for each planted value found in the bytes of ``files``."""
    forms = {needle: _forms(needle) for needle in needles}
    hits = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue  # a file that went away (a lock, a temp file) holds nothing now
        for needle, encoded in forms.items():
            if any(form in data for form in encoded):
                hits.append((str(path), needle))
    return hits


def files_under(root: Path, skip: Iterable[Path] = ()) -> list[Path]:
    """Every regular file under ``root``, except under the directories or files in ``skip``."""
    skipped = [Path(s).resolve() for s in skip]
    out = []
    for path in sorted(Path(root).rglob("*")):
        real = path.resolve()
        if path.is_file() and not any(real == s or s in real.parents for s in skipped):
            out.append(path)
    return out
