"""Score the branch's PII detector on the independent evaluation set and on PII-free bank text.

    python bench/pii_eval.py [--quick] [--misses N]

Reads ``tests/data/pii_eval/*.jsonl`` (hand-written by a session that never saw
the detector; see its README) and Banking77 (``../shared/data/banking77/``,
real customer questions with no PII), runs :func:`common.privacy.desensitize.find_pii`
on every text and reports:

* **recall** per PII type and language: a gold span counts as caught when at
  least half of its non-space characters lie under placeholders (of any type:
  what matters is that the value left the text); **strict recall**: every
  non-space character masked; **typed recall**: caught by a span of the gold type;
* **non-PII survival**: keep spans (amounts, dates, references, products,
  codes, quantities) with no character masked;
* **over-masks**: detected spans overlapping no gold PII span, per type;
* **placeholders per 2,000 PII-free texts** on Banking77 and on the set's
  PII-free texts, with examples;
* **records/s on one core** (single-threaded, after a warm-up).

Writes ``bench/results/pii_eval.json`` and the measured-recall file
``common/privacy/measured_recall.json`` that the compliance report quotes next
to the counts a branch masked (schema in README.md, "Desensitization").
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import ROOT, RESULTS, say, table, write_result  # noqa: E402
from common.privacy import pii  # noqa: E402
from common.privacy.desensitize import find_pii  # noqa: E402

EVAL_DIR = ROOT / "tests" / "data" / "pii_eval"
BANKING77 = ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
MEASURED = ROOT / "common" / "privacy" / "measured_recall.json"
LANGS = ("zh", "en", "mixed")
PER = 2000  # placeholders are reported per 2,000 PII-free texts


def load_set() -> list[dict]:
    rows = []
    for path in sorted(EVAL_DIR.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def load_banking77() -> list[str]:
    if not BANKING77.exists():
        return []
    with BANKING77.open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


def _coverage(text: str, start: int, end: int, masked: bytearray, types: list, want: str | None) -> float:
    chars = [i for i in range(start, end) if not text[i].isspace()]
    if not chars:
        return 1.0
    hit = sum(1 for i in chars if masked[i] and (want is None or types[i] == want))
    return hit / len(chars)


def score_set(rows: list[dict]) -> dict:
    """Recall, strict recall, typed recall, survival and over-masks over the evaluation set."""
    rec = defaultdict(lambda: {"n": 0, "caught": 0, "strict": 0, "typed": 0})
    keep = defaultdict(lambda: {"n": 0, "kept": 0})
    over: dict[str, int] = defaultdict(int)
    misses, over_examples, destroyed = [], [], []
    for row in rows:
        text, lang = row["text"], row["lang"]
        found = find_pii(text)
        masked, types = bytearray(len(text)), [None] * len(text)
        for s, e, t in found:
            masked[s:e] = b"\x01" * (e - s)
            types[s:e] = [t] * (e - s)
        for span in row["spans"]:
            cov = _coverage(text, span["start"], span["end"], masked, types, None)
            typed = _coverage(text, span["start"], span["end"], masked, types, span["type"])
            for key in ((span["type"], lang), (span["type"], "all")):
                r = rec[key]
                r["n"] += 1
                r["caught"] += cov >= 0.5
                r["strict"] += cov >= 1.0
                r["typed"] += typed >= 0.5
            if cov < 1.0:
                misses.append({"id": row["id"], "type": span["type"], "value": span["value"], "coverage": round(cov, 2)})
        for k in row["keep"]:
            ok = not any(masked[k["start"]:k["end"]])
            for key in ((k["kind"], lang), (k["kind"], "all"), ("ALL", "all")):
                keep[key]["n"] += 1
                keep[key]["kept"] += ok
            if not ok:
                destroyed.append({"id": row["id"], "kind": k["kind"], "value": k["value"]})
        gold = bytearray(len(text))
        for span in row["spans"]:
            gold[span["start"]:span["end"]] = b"\x01" * (span["end"] - span["start"])
        for s, e, t in found:
            if not any(gold[s:e]):
                over[t] += 1
                over_examples.append({"id": row["id"], "type": t, "value": text[s:e]})
    return {"recall": rec, "keep": keep, "over": dict(over), "misses": misses,
            "over_examples": over_examples, "destroyed": destroyed}


def score_pii_free(texts: list[str]) -> dict:
    """Placeholders a detector puts into texts that carry no PII."""
    by_type: dict[str, int] = defaultdict(int)
    examples = []
    for text in texts:
        for s, e, t in find_pii(text):
            by_type[t] += 1
            if len(examples) < 40:
                examples.append({"type": t, "value": text[s:e], "text": text})
    total = sum(by_type.values())
    return {"texts": len(texts), "placeholders": total, "per_2000": round(total * PER / max(1, len(texts)), 2),
            "by_type": dict(by_type), "examples": examples}


def throughput(texts: list[str], seconds: float = 5.0) -> float:
    """Records per second of :func:`find_pii` on one core (this process is single-threaded)."""
    for text in texts[:50]:
        find_pii(text)  # warm-up: loads dictionaries and compiles patterns
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for text in texts:
            find_pii(text)
        done += len(texts)
    return done / (time.perf_counter() - t0)


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:.1f}" if den else "-"


def recall_table(rec: dict) -> str:
    types = sorted({t for t, _ in rec}, key=lambda t: -rec[(t, "all")]["n"])
    rows = []
    for t in types:
        a = rec[(t, "all")]
        by_lang = [_pct(rec[(t, lg)]["caught"], rec[(t, lg)]["n"]) if (t, lg) in rec else "-" for lg in LANGS]
        rows.append([t, a["n"], _pct(a["caught"], a["n"]), *by_lang, _pct(a["strict"], a["n"]), _pct(a["typed"], a["n"])])
    return table(["type", "spans", "recall %", "zh", "en", "mixed", "strict %", "typed %"], rows)


def measured_recall(result: dict, version: str) -> dict:
    """The machine-readable residual-risk figures the compliance report quotes."""
    rec = result["set"]["recall"]
    return {
        "detector_version": version,
        "evaluation_set": "tests/data/pii_eval",
        "texts": result["texts"],
        "command": "python bench/pii_eval.py",
        "measured_at": time.strftime("%Y-%m-%d"),
        "per_type": {t: {"spans": r["n"], "recall": round(r["caught"] / r["n"], 4),
                         "strict_recall": round(r["strict"] / r["n"], 4)}
                     for (t, lang), r in sorted(rec.items()) if lang == "all"},
        "non_pii_survival": result["survival"],
        "pii_free_placeholders_per_2000": result["banking77"]["per_2000"],
        "records_per_second_one_core": result["records_per_s"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the throughput timing")
    ap.add_argument("--misses", type=int, default=0, help="print this many missed spans and over-masks")
    ap.add_argument("--no-write", action="store_true", help="print only; write no result files")
    args = ap.parse_args(argv)
    version = getattr(pii, "DETECTOR_VERSION", "1")
    rows, b77 = load_set(), load_banking77()
    say(f"{len(rows)} evaluation texts, {len(b77)} Banking77 texts; detector {version}")
    t0 = time.perf_counter()
    scored = score_set(rows)
    say(f"scored the set in {time.perf_counter() - t0:.1f}s")
    nopii = [r["text"] for r in rows if not r["spans"]]
    keep = scored["keep"]
    result = {
        "detector_version": version, "texts": len(rows),
        "set": {"recall": scored["recall"]},
        "survival": round(keep[("ALL", "all")]["kept"] / max(1, keep[("ALL", "all")]["n"]), 4),
        "survival_by_kind": {k: round(v["kept"] / v["n"], 4) for (k, lg), v in sorted(keep.items()) if lg == "all"},
        "over_masks": scored["over"],
        "banking77": score_pii_free(b77),
        "set_pii_free": score_pii_free(nopii),
        "records_per_s": None if args.quick else round(throughput([r["text"] for r in rows] + b77[:1000]), 1),
    }
    print(recall_table(scored["recall"]))
    print(f"\nnon-PII survival: {100 * result['survival']:.1f} % {result['survival_by_kind']}")
    print(f"over-masks (detected spans on no gold PII): {sum(scored['over'].values())} {scored['over']}")
    for name in ("banking77", "set_pii_free"):
        r = result[name]
        print(f"{name}: {r['placeholders']} placeholders in {r['texts']} texts = {r['per_2000']} per {PER} {r['by_type']}")
    print(f"records/s on one core: {result['records_per_s']}")
    if args.misses:
        for key in ("misses", "over_examples", "destroyed"):
            print(f"\n## {key}")
            for m in scored[key][:args.misses]:
                print(json.dumps(m, ensure_ascii=False))
        print("\n## banking77 examples")
        for m in result["banking77"]["examples"][:args.misses]:
            print(json.dumps(m, ensure_ascii=False))
    if not args.no_write:
        result["set"]["recall"] = {f"{t}/{lg}": v for (t, lg), v in sorted(scored["recall"].items())}
        result["banking77"].pop("examples")
        write_result(RESULTS / "pii_eval.json", result)
        result["set"]["recall"] = scored["recall"]
        MEASURED.write_text(json.dumps(measured_recall(result, version), indent=2) + "\n", encoding="utf-8")
        say(f"wrote {MEASURED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
