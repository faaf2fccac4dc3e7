"""Assemble the hand-written sources in src/*.txt into the JSONL files of this set.

Source format (one block per text):

    ### <id> <lang> <style>
    text with [[TYPE|pii value]] and {{KIND|keep value}} marked inline
    (may span several lines; blank lines at the ends of a block are dropped)

The markup is removed and the offsets are computed from the clean text. The only
thing the script fills in is a check character the author left as '?' inside a
marked value (ID_CARD, BANK_CARD, DEVICE_ID/IMEI, HK_ID, TW_ID: the last '?';
IBAN: '??' in place of the two check digits; REFERENCE: a Luhn digit, to make
trap references that pass a Luhn check). The filled character is written in the
same script as the digits around it (ASCII, full-width or Chinese numerals).

Run: python tests/data/pii_eval/build.py   (rewrites tests/data/pii_eval/*.jsonl)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/

from pii_eval_checks import (  # noqa: E402
    gb11643_check_char,
    hkid_check_char,
    iban_check_digits,
    luhn_check_digit,
    normalize,
    tw_check_digit,
)

MARK = re.compile(r"\[\[([A-Z_]+)\|(.*?)\]\]|\{\{([A-Z_]+)\|(.*?)\}\}", re.S)
ZH_OUT = dict(zip("0123456789X", "零一二三四五六七八九叉"))


def _render(ch: str, value: str) -> str:
    """Write check char `ch` in the digit script used by `value`."""
    if re.search(r"\b(zero|one|two|three|four|five|six|seven|eight|nine)\b", value):
        return ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")[int(ch)]
    if re.search(r"[０-９]", value):
        return chr(0xFF10 + int(ch)) if ch.isdigit() else "Ｘ"
    if re.search(r"[零〇一二三四五六七八九幺两]", value):
        out = ZH_OUT[ch]
        if out == "零" and "〇" in value:
            out = "〇"
        if out == "一" and "幺" in value:
            out = "幺"
        return out
    return ch


def _fill(kind: str, value: str) -> str:
    if "?" not in value:
        return value
    if kind == "IBAN":
        i1 = value.index("?")
        i2 = value.index("?", i1 + 1)
        body = normalize(value.replace("?", "0"))
        cd = iban_check_digits(body[:2], body[4:])
        return value[:i1] + cd[0] + value[i1 + 1:i2] + cd[1] + value[i2 + 1:]
    i = value.rindex("?")
    payload = normalize(value[:i])
    if kind == "ID_CARD":
        ch = gb11643_check_char(payload)
    elif kind in ("BANK_CARD", "DEVICE_ID", "REFERENCE"):
        ch = luhn_check_digit(re.sub(r"\D", "", payload))
    elif kind == "HK_ID":
        ch = hkid_check_char(payload)
    elif kind == "TW_ID":
        ch = tw_check_digit(payload)
    else:
        raise ValueError(f"no check char for {kind}: {value!r}")
    return value[:i] + _render(ch, value[:i]) + value[i + 1:]


def parse_block(header: str, body: str) -> dict:
    tid, lang, style = header.split()
    text, spans, keep, pos = [], [], [], 0
    last = 0
    for m in MARK.finditer(body):
        plain = body[last:m.start()]
        text.append(plain)
        pos += len(plain)
        if m.group(1):
            kind, value, bucket, key = m.group(1), m.group(2), spans, "type"
        else:
            kind, value, bucket, key = m.group(3), m.group(4), keep, "kind"
        value = _fill(kind, value)
        bucket.append({"start": pos, "end": pos + len(value), key: kind, "value": value})
        text.append(value)
        pos += len(value)
        last = m.end()
    text.append(body[last:])
    clean = "".join(text)
    if "[[" in clean or "{{" in clean or "]]" in clean or "}}" in clean:
        raise ValueError(f"{tid}: unbalanced markup")
    return {"id": tid, "lang": lang, "style": style, "text": clean, "spans": spans, "keep": keep}


def parse_source(path: Path) -> list[dict]:
    records, header, lines = [], None, []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("### "):
            if header:
                records.append(parse_block(header, "\n".join(lines).strip("\n")))
            header, lines = line[4:].strip(), []
        elif header is not None:
            lines.append(line)
    if header:
        records.append(parse_block(header, "\n".join(lines).strip("\n")))
    return records


def main() -> None:
    for old in HERE.glob("*.jsonl"):
        old.unlink()
    total = 0
    for src in sorted((HERE / "src").glob("*.txt")):
        recs = parse_source(src)
        out = HERE / (src.stem + ".jsonl")
        with out.open("w", encoding="utf-8") as f:
            for r in recs:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        total += len(recs)
        print(f"{out.name}: {len(recs)} texts")
    print(f"total: {total}")


if __name__ == "__main__":
    main()
