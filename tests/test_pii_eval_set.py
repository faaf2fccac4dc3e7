"""Validators for the independent PII evaluation set in tests/data/pii_eval/.

These check the set itself (schema, offsets, overlaps, vocabularies, coverage and
check digits), not any detector. Pure python and fast.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from pii_eval_checks import (
    iban_ok,
    normalize,
    valid_bank_card,
    valid_hkid,
    valid_imei,
    valid_prc_id,
    valid_tw_id,
)

DATA = Path(__file__).resolve().parent / "data" / "pii_eval"

PII_TYPES = {
    "NAME", "ID_CARD", "HK_ID", "MO_ID", "TW_ID", "PERMIT", "PASSPORT", "SSN",
    "MEDICAL_INSURANCE", "BANK_CARD", "IBAN", "ACCOUNT", "PHONE", "EMAIL", "ADDRESS",
    "DATE_OF_BIRTH", "LICENSE_PLATE", "IP_ADDRESS", "DEVICE_ID", "SOCIAL_ID", "EMPLOYER",
    "LOCATION",
}
KEEP_KINDS = {"AMOUNT", "DATE", "REFERENCE", "PRODUCT", "CODE", "QUANTITY"}
LANGS = {"zh", "en", "mixed"}
STYLES = {"chat", "call", "email", "memo", "loan-note", "staff-note", "ocr-form", "kv", "sms"}

MIN_TEXTS = 420
MIN_LANG = {"zh": 150, "en": 140, "mixed": 50}
MIN_TYPE = {t: 12 for t in PII_TYPES}
MIN_TYPE.update({"NAME": 120, "ID_CARD": 40, "BANK_CARD": 30, "PHONE": 50, "ADDRESS": 50, "EMAIL": 25})
MIN_ID_CARD_15 = 10
MIN_KEEP = {"AMOUNT": 80, "DATE": 50, "REFERENCE": 40, "PRODUCT": 40}
MIN_NO_PII = 50


def _load():
    records, problems = [], []
    for path in sorted(DATA.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                problems.append(f"{path.name}:{n}: blank line")
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name}:{n}: {exc}")
                continue
            rec["_where"] = f"{path.name}:{n}"
            records.append(rec)
    return records, problems


RECORDS, PARSE_PROBLEMS = _load()


def _spans(kind: str):
    for rec in RECORDS:
        for sp in rec.get(kind, []):
            yield rec, sp


def test_files_exist_and_parse():
    assert list(DATA.glob("*.jsonl")), f"no JSONL files in {DATA}"
    assert not PARSE_PROBLEMS, "unparseable lines:\n" + "\n".join(PARSE_PROBLEMS)


def test_record_schema():
    bad = []
    for rec in RECORDS:
        keys = set(rec) - {"_where"}
        if keys != {"id", "lang", "style", "text", "spans", "keep"}:
            bad.append(f"{rec.get('id', rec['_where'])}: keys {sorted(keys)}")
            continue
        if not isinstance(rec["text"], str) or not rec["text"].strip():
            bad.append(f"{rec['id']}: empty text")
        if rec["lang"] not in LANGS:
            bad.append(f"{rec['id']}: lang {rec['lang']!r} not in {sorted(LANGS)}")
        if rec["style"] not in STYLES:
            bad.append(f"{rec['id']}: style {rec['style']!r} not in {sorted(STYLES)}")
        if not isinstance(rec["spans"], list) or not isinstance(rec["keep"], list):
            bad.append(f"{rec['id']}: spans/keep must be lists")
    assert not bad, "\n".join(bad)


def test_ids_unique():
    dup = [i for i, c in Counter(r["id"] for r in RECORDS).items() if c > 1]
    assert not dup, f"duplicate ids: {dup}"


def test_id_prefix_matches_lang_and_style():
    bad = [r["id"] for r in RECORDS
           if not r["id"].startswith(f"{r['lang']}-{r['style']}-")
           and not r["id"].startswith(f"{r['lang']}-nopii-")]
    assert not bad, f"ids should start with <lang>-<style>- or <lang>-nopii-: {bad}"


@pytest.mark.parametrize("bucket,label,vocab", [("spans", "type", PII_TYPES), ("keep", "kind", KEEP_KINDS)])
def test_offsets_and_values(bucket, label, vocab):
    bad = []
    for rec, sp in _spans(bucket):
        tid = rec["id"]
        if set(sp) != {"start", "end", label, "value"}:
            bad.append(f"{tid}: {bucket} entry keys {sorted(sp)}")
            continue
        if sp[label] not in vocab:
            bad.append(f"{tid}: {label} {sp[label]!r} not in vocabulary")
        s, e = sp["start"], sp["end"]
        if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(rec["text"])):
            bad.append(f"{tid}: offsets {s}:{e} out of range (len {len(rec['text'])})")
            continue
        if rec["text"][s:e] != sp["value"]:
            bad.append(f"{tid}: text[{s}:{e}]={rec['text'][s:e]!r} != value {sp['value']!r}")
        if sp["value"] != sp["value"].strip():
            bad.append(f"{tid}: value {sp['value']!r} has leading/trailing whitespace")
    assert not bad, "\n".join(bad)


def _overlaps(items):
    items = sorted(items, key=lambda x: (x["start"], x["end"]))
    return [(a, b) for a, b in zip(items, items[1:]) if b["start"] < a["end"]]


def test_pii_spans_do_not_overlap():
    bad = [f"{r['id']}: {a['value']!r} overlaps {b['value']!r}" for r in RECORDS for a, b in _overlaps(r["spans"])]
    assert not bad, "\n".join(bad)


def test_keep_spans_do_not_overlap_each_other():
    bad = [f"{r['id']}: {a['value']!r} overlaps {b['value']!r}" for r in RECORDS for a, b in _overlaps(r["keep"])]
    assert not bad, "\n".join(bad)


def test_pii_and_keep_do_not_overlap():
    bad = []
    for r in RECORDS:
        for p in r["spans"]:
            for k in r["keep"]:
                if p["start"] < k["end"] and k["start"] < p["end"]:
                    bad.append(f"{r['id']}: PII {p['value']!r} overlaps keep {k['value']!r}")
    assert not bad, "\n".join(bad)


def test_coverage_texts_and_languages():
    assert len(RECORDS) >= MIN_TEXTS, f"{len(RECORDS)} texts < {MIN_TEXTS}"
    langs = Counter(r["lang"] for r in RECORDS)
    short = {k: (langs[k], v) for k, v in MIN_LANG.items() if langs[k] < v}
    assert not short, f"too few texts per language (have, need): {short}"
    styles = Counter(r["style"] for r in RECORDS)
    missing = STYLES - set(styles)
    assert not missing, f"styles with no text: {missing}"
    no_pii = sum(1 for r in RECORDS if not r["spans"])
    assert no_pii >= MIN_NO_PII, f"only {no_pii} texts without PII (need {MIN_NO_PII})"


def test_coverage_pii_types():
    types = Counter(sp["type"] for _, sp in _spans("spans"))
    short = {t: (types[t], n) for t, n in MIN_TYPE.items() if types[t] < n}
    assert not short, f"too few spans per PII type (have, need): {short}"
    old_ids = sum(1 for _, sp in _spans("spans") if sp["type"] == "ID_CARD" and len(normalize(sp["value"])) == 15)
    assert old_ids >= MIN_ID_CARD_15, f"only {old_ids} 15-digit ID_CARD spans (need {MIN_ID_CARD_15})"


def test_coverage_keep_kinds():
    kinds = Counter(sp["kind"] for _, sp in _spans("keep"))
    short = {k: (kinds[k], n) for k, n in MIN_KEEP.items() if kinds[k] < n}
    assert not short, f"too few keep spans per kind (have, need): {short}"


CHECKS = {
    "ID_CARD": (valid_prc_id, "GB 11643 check digit / birth date (18) or plausible date (15)"),
    "BANK_CARD": (valid_bank_card, "16-19 digits with a valid Luhn digit"),
    "IBAN": (iban_ok, "ISO 13616 length and mod-97"),
    "HK_ID": (valid_hkid, "HKID check digit"),
    "TW_ID": (valid_tw_id, "Taiwan ID checksum"),
}


@pytest.mark.parametrize("ptype", sorted(CHECKS))
def test_check_digits(ptype):
    fn, what = CHECKS[ptype]
    bad = [f"{r['id']}: {sp['value']!r} (normalized {normalize(sp['value'])!r})"
           for r, sp in _spans("spans") if sp["type"] == ptype and not fn(sp["value"])]
    assert not bad, f"{ptype} values failing {what}:\n" + "\n".join(bad)


def test_imei_device_ids_pass_luhn():
    """A DEVICE_ID made of exactly 15 digits is an IMEI and must pass Luhn; MACs and ad ids are not checked."""
    bad = []
    for r, sp in _spans("spans"):
        if sp["type"] != "DEVICE_ID":
            continue
        v = normalize(sp["value"])
        if v.isdigit() and len(v) == 15 and not valid_imei(sp["value"]):
            bad.append(f"{r['id']}: {sp['value']!r}")
    assert not bad, "IMEIs failing Luhn:\n" + "\n".join(bad)


def test_us_ssn_shape():
    """US-style SSNs (ddd-dd-dddd) avoid the never-issued areas 000, 666, 9xx and zero groups."""
    bad = []
    for r, sp in _spans("spans"):
        if sp["type"] != "SSN":
            continue
        m = re.fullmatch(r"(\d{3})[- ]?(\d{2})[- ]?(\d{4})", sp["value"])
        if m and (m.group(1) in ("000", "666") or m.group(1)[0] == "9" or m.group(2) == "00" or m.group(3) == "0000"):
            bad.append(f"{r['id']}: {sp['value']!r}")
    assert not bad, "invalid US SSNs:\n" + "\n".join(bad)


def test_emails_look_like_emails():
    bad = []
    for r, sp in _spans("spans"):
        if sp["type"] != "EMAIL":
            continue
        # OCR'd full-width at-signs and addresses read aloud ("x at 163 dot com") count as e-mails too.
        v = sp["value"].replace("＠", "@").replace("．", ".")
        v = re.sub(r"\s+at\s+", "@", v)
        v = re.sub(r"\s+dot\s+", ".", v)
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", v):
            bad.append(f"{r['id']}: {sp['value']!r}")
    assert not bad, "malformed EMAIL spans:\n" + "\n".join(bad)


def test_ipv4_octets_in_range():
    bad = []
    for r, sp in _spans("spans"):
        if sp["type"] == "IP_ADDRESS" and re.fullmatch(r"[\d.]+", sp["value"]):
            parts = sp["value"].split(".")
            if len(parts) != 4 or any(not p or int(p) > 255 for p in parts):
                bad.append(f"{r['id']}: {sp['value']!r}")
    assert not bad, "bad IPv4 addresses:\n" + "\n".join(bad)


def test_masked_cards_are_not_pii():
    """Partially masked card numbers must never be annotated as BANK_CARD."""
    bad = [f"{r['id']}: {sp['value']!r}" for r, sp in _spans("spans")
           if sp["type"] == "BANK_CARD" and re.search(r"[*•]|[xX#]{4}", sp["value"])]
    assert not bad, "masked values annotated as BANK_CARD:\n" + "\n".join(bad)


def test_every_pii_value_is_annotated_everywhere_in_its_text():
    """If a PII value (>= 6 chars) is annotated once, each other exact occurrence in the same text is too."""
    bad = []
    for r in RECORDS:
        covered = [(p["start"], p["end"]) for p in r["spans"]]
        for p in r["spans"]:
            v = p["value"]
            if len(v) < 6:
                continue
            for m in re.finditer(re.escape(v), r["text"]):
                if not any(s <= m.start() and m.end() <= e for s, e in covered):
                    bad.append(f"{r['id']}: unannotated repeat of {v!r} at {m.start()}")
    assert not bad, "\n".join(bad)


def test_jsonl_is_built_from_sources():
    """The committed JSONL equals what build.py makes from src/*.txt (no hand edits to the JSONL)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pii_eval_build", DATA / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    sources = sorted((DATA / "src").glob("*.txt"))
    assert {p.stem for p in sources} == {p.stem for p in DATA.glob("*.jsonl")}, "src/*.txt and *.jsonl differ"
    for src in sources:
        want = build.parse_source(src)
        have = [json.loads(line) for line in (DATA / f"{src.stem}.jsonl").read_text(encoding="utf-8").splitlines()]
        for w, h in zip(want, have):
            assert w == h, f"{h.get('id')}: {src.stem}.jsonl is stale; run python tests/data/pii_eval/build.py"
        assert len(want) == len(have), f"{src.stem}.jsonl has {len(have)} records, source has {len(want)}"
