"""``fedbank desensitize``: run the branch's exact PII detector on text, one JSON line per input.

    fedbank desensitize [FILE|-] [--jsonl]

Reads one text per line (or, with ``--jsonl``, one JSON object per line with a
``text`` field) from FILE or standard input and writes, per input line,
``{"text": masked, "spans": [{"start", "end", "type"}], "counts": {...}}``;
offsets index the original input text (Python ``str`` indices).  A line that
is not UTF-8, not JSON or has no string ``text`` field gets a one-line error
on standard error naming the line, and the command exits 1 after the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import BinaryIO, TextIO

from common.errors import FedbankError


def _text_of(raw: bytes, jsonl: bool) -> str:
    """The text of one input line (without its line break); raises ValueError naming what is wrong."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 ({err.reason} at byte {err.start})") from None
    line = line.rstrip("\r\n")
    if not jsonl:
        return line
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise ValueError("no string 'text' field")
    return obj["text"]


def desensitize_stream(src: BinaryIO, out: TextIO, err: TextIO, jsonl: bool = False,
                       name: str = "<stdin>") -> int:
    """Mask every line of ``src`` onto ``out``; returns the number of bad lines (each reported on ``err``)."""
    from common.privacy.desensitize import Desensitizer  # the detectors' models: only for this command

    masker = Desensitizer()
    bad = 0
    for number, raw in enumerate(src, start=1):
        try:
            text = _text_of(raw, jsonl)
        except ValueError as why:
            print(f"fedbank desensitize: {name}:{number}: {why}", file=err)
            bad += 1
            continue
        spans = masker.detect(text)
        result = masker.apply(text)
        record = {"text": result.text, "spans": [{"start": s, "end": e, "type": t} for s, e, t in spans],
                  "counts": {t: n for t, n in result.counts.items() if n}}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return bad


def cmd_desensitize(args: argparse.Namespace) -> int:
    if args.file in (None, "-"):
        bad = desensitize_stream(sys.stdin.buffer, sys.stdout, sys.stderr, args.jsonl)
    else:
        try:
            with open(args.file, "rb") as src:
                bad = desensitize_stream(src, sys.stdout, sys.stderr, args.jsonl, name=args.file)
        except OSError as err:
            raise FedbankError(f"cannot read {args.file}: {err.strerror}") from None
    return 1 if bad else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fedbank desensitize`` on the top-level subparsers."""
    p = sub.add_parser("desensitize", help="mask PII in text with the branch's detector (one JSON line per input line)")
    p.add_argument("file", nargs="?", default="-", help="input file, one text per line ('-' or none: standard input)")
    p.add_argument("--jsonl", action="store_true", help="input lines are JSON objects with a 'text' field")
    p.set_defaults(func=cmd_desensitize)
