"""One line of the privacy ledger: its bytes, hashes and signatures, and reading the file's lines.

The format itself is described in :mod:`server.records.ledger`; this module
holds the pure functions both its writer and its verifier use: what each hash
and each signature covers, how a line is parsed, and what a well-formed
signature looks like.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Mapping

from common.errors import LedgerError
from common.wire.canonical import canonical_json

#: Fields the ledger's writer (the server) adds to a branch's signed claim;
#: the branch's ``signature`` covers every other field of the entry.
CHAIN_FIELDS = ("seq", "prev_hash", "hash", "signature", "server_signature")
SERVER_ADDED = ("time", "aggregated", "reject_reason")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{128}$")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hex ``hash`` an entry should carry (all fields but ``hash``, ``signature``, ``server_signature``)."""
    body = {k: v for k, v in entry.items() if k not in ("hash", "signature", "server_signature")}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def signed_bytes(entry: Mapping[str, Any]) -> bytes:
    """The bytes a branch signs: the canonical JSON of its claim (the entry minus what the server adds).

    A branch signs its own privacy claim before the server chains it, so its
    signature cannot cover ``seq``/``prev_hash``/``hash`` or the server's
    verdict (``time``, ``aggregated``, ``reject_reason``); the server's
    ``server_signature`` covers those (:func:`server_signed_bytes`).
    """
    return canonical_json({k: v for k, v in entry.items() if k not in CHAIN_FIELDS + SERVER_ADDED})


def server_signed_bytes(entry: Mapping[str, Any]) -> bytes:
    """The bytes the server signs: the canonical JSON of the whole line except ``server_signature`` itself."""
    return canonical_json({k: v for k, v in entry.items() if k != "server_signature"})


def link_hash(entry: Mapping[str, Any]) -> str:
    """Hash of a whole entry, as stored in the next entry's ``prev_hash``."""
    return hashlib.sha256(canonical_json(dict(entry))).hexdigest()


def parse_signature(value: Any) -> bytes | None:
    """A stored signature's 64 bytes, or None when it is not 128 lowercase hex characters (malformed)."""
    if not isinstance(value, str) or not _SIGNATURE_RE.match(value):
        return None
    return bytes.fromhex(value)


def parse_line(raw: bytes, lineno: int) -> dict:
    """One ledger line as a dict, or a :class:`LedgerError` naming the line."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LedgerError(f"line {lineno}: not valid JSON (truncated or corrupt): {exc}") from exc
    if not isinstance(obj, dict):
        raise LedgerError(f"line {lineno}: not a JSON object")
    return obj


def read_lines(path: Path) -> tuple[list[bytes], bool, int]:
    """A ledger's lines, whether the last lacks its newline, and the file size."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc}") from exc
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail:
        lines.append(tail)
    return lines, bool(tail), len(data)


def complete_lines(path: Path) -> tuple[list[bytes], int]:
    """A ledger's lines and size; a :class:`LedgerError` when the last line was cut short."""
    lines, truncated, size = read_lines(path)
    if truncated:
        raise LedgerError(f"line {len(lines)}: last line has no newline (truncated write?); "
                          f"run 'fedbank ledger verify {path}'")
    return lines, size
