"""Print count tables (markdown) for the PII evaluation set: python tests/data/pii_eval/stats.py"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for the normalizer
from pii_eval_checks import normalize  # noqa: E402


def load():
    recs = []
    for p in sorted(HERE.glob("*.jsonl")):
        recs += [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return recs


def table(title, counter, by_lang=None):
    langs = ["zh", "en", "mixed"]
    out = [f"### {title}", ""]
    if by_lang is None:
        out += ["| value | count |", "|---|---:|"]
        out += [f"| {k} | {v} |" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
    else:
        out += ["| value | " + " | ".join(langs) + " | total |", "|---|" + "---:|" * (len(langs) + 1)]
        for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"| {k} | " + " | ".join(str(by_lang[lg][k]) for lg in langs) + f" | {v} |")
    out.append(f"| **total** | " + (" | ".join("" for _ in langs) + " | " if by_lang else "") + f"{sum(counter.values())} |")
    return "\n".join(out) + "\n"


def main():
    recs = load()
    langs = Counter(r["lang"] for r in recs)
    styles, types, kinds = Counter(), Counter(), Counter()
    s_by, t_by, k_by = ({lg: Counter() for lg in ("zh", "en", "mixed")} for _ in range(3))
    for r in recs:
        styles[r["style"]] += 1
        s_by[r["lang"]][r["style"]] += 1
        for sp in r["spans"]:
            types[sp["type"]] += 1
            t_by[r["lang"]][sp["type"]] += 1
        for sp in r["keep"]:
            kinds[sp["kind"]] += 1
            k_by[r["lang"]][sp["kind"]] += 1
    no_pii = Counter(r["lang"] for r in recs if not r["spans"])
    id15 = sum(1 for r in recs for sp in r["spans"] if sp["type"] == "ID_CARD"
               and len(normalize(sp["value"])) == 15)
    print(f"Texts: {len(recs)}; texts without any PII: {sum(no_pii.values())} "
          f"(zh {no_pii['zh']}, en {no_pii['en']}, mixed {no_pii['mixed']}); 15-digit ID_CARD spans: {id15}\n")
    print(table("Texts per language", langs))
    print(table("Texts per style", styles, s_by))
    print(table("PII spans per type", types, t_by))
    print(table("Keep spans per kind", kinds, k_by))


if __name__ == "__main__":
    main()
