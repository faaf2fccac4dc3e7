"""Structured records keep their column rules and the text detector scans their free-text columns.

Identifier columns (by the run's ``data.id-columns`` or by name) are dropped,
quasi-identifiers generalized, and every other value -- a remark typed by a
clerk above all -- goes through the same detector as free text
(:mod:`common.privacy.records`).  Checked on German Credit (shared data) and
on a CSV written here whose ``remark`` column hides PII.
"""

from __future__ import annotations

import csv
import re

import pytest

from common.config.run import RunConfig
from common.data.files import load_file
from common.data.sources import renderer_for
from common.privacy.records import generalize
from common.tasks.spec import task_of
from tests.conftest import SHARED_DATA

GERMAN = SHARED_DATA / "german_credit" / "german.csv"
PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")

REMARKS = [
    "Customer Helena Brandt called from 07700 900461 about the late fee, lives at 14 Alder Road, Leeds LS6 2AB.",
    "客户王晓梅来电，手机13912345678，身份证110101199003077774，要求寄到上海市徐汇区漕溪北路88号3号楼502室。",
    "Paid via IBAN DE44 5001 0517 5407 3249 31, email h.brandt@example.org for the statement.",
    "no remark",
    "Repaid 1,200.00 EUR on 2024-03-01, order no. 99812233, branch 0457.",
]


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _render(cfg: RunConfig, path) -> tuple[list[str], dict[str, int], list[dict[str, str]]]:
    task = task_of(cfg)
    corpus = load_file(cfg, task, path)
    rendered = renderer_for(cfg, task).render(corpus.texts, corpus.records)
    return rendered.texts, rendered.counts, corpus.records


def test_a_remark_column_is_scanned_while_column_rules_still_apply(tmp_path):
    rows = [{"customer_id": f"C-{1000 + i}", "customer_name": "Helena Brandt", "phone": "07700 900461",
             "age": str(23 + 9 * i), "postcode": "LS6 2AB", "amount": f"{1500 + i * 250}", "purpose": "car",
             "remark": remark, "label": str(i % 2)} for i, remark in enumerate(REMARKS)]
    path = tmp_path / "applicants.csv"
    _write_csv(path, rows)
    cfg = RunConfig.from_flower({"task": "credit", "data.source": str(path), "data.label-column": "label",
                                 "data.id-columns": "customer_id"})
    texts, counts, _ = _render(cfg, path)
    for text, row in zip(texts, rows):
        fields = dict(part.split(": ", 1) for part in text.split("; "))
        assert set(fields) == {"age", "postcode", "amount", "purpose", "remark"}  # identifier columns dropped
        assert fields["age"] == generalize(row["age"], "age-band") and fields["postcode"] == "LS6*"
        assert fields["amount"] == row["amount"] and fields["purpose"] == "car"
    remarks = [dict(part.split(": ", 1) for part in t.split("; "))["remark"] for t in texts]
    for secret in ("Helena", "Brandt", "07700 900461", "Alder Road", "王晓梅", "13912345678", "110101199003077774",
                   "漕溪北路", "DE44", "h.brandt@example.org"):
        assert not any(secret in r for r in remarks), secret
    assert remarks[3] == "no remark" and remarks[4] == REMARKS[4]  # amounts, dates, references, branches kept
    assert PLACEHOLDER.findall(remarks[0]) == ["[NAME]", "[PHONE]", "[ADDRESS]"]
    assert counts["NAME"] == len(rows) + 2 and counts["PHONE"] == len(rows) + 2  # dropped columns + remark values
    assert counts["ID_CARD"] == counts["IBAN"] == counts["EMAIL"] == 1 and counts["ADDRESS"] == 2


@pytest.mark.skipif(not GERMAN.exists(), reason="shared data not present")
def test_german_credit_keeps_its_rules_and_the_detector_masks_nothing_else():
    cfg = RunConfig.from_flower({"task": "credit", "data.source": str(GERMAN), "data.label-column": "Class",
                                 "data.positive-label": 2, "data.value-map": "german-credit"})
    texts, counts, records = _render(cfg, GERMAN)
    assert len(texts) == 1000
    assert counts["PHONE"] == 1000 and sum(counts.values()) == 1000  # the Telephone column, dropped wholly
    for text, record in zip(texts, records):
        assert not PLACEHOLDER.search(text) and "telephone" not in text
        fields = dict(part.split(": ", 1) for part in text.split("; "))
        assert fields["age"] == generalize(record["Age"], "age-band")
        assert fields["credit amount"] == record["CreditAmount"] and fields["duration"] == record["Duration"]
        assert not re.search(r"\bA\d{2,3}\b", text)  # every code decoded
