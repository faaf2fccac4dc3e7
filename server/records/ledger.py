"""Append-only, tamper-evident privacy ledger (``ledger.jsonl``).

Owns the on-disk format of the ledger in which the server records, once per
round and branch, that branch's privacy spend, and the check a compliance
reviewer runs on it (:func:`verify_ledger`).

Format: one canonical-JSON object per line (:func:`canonical_json`: sorted
keys, no whitespace, UTF-8, NaN/inf refused), each ending in ``\\n``.  Besides
the caller's fields every entry carries:

* ``seq`` -- its 0-based line index;
* ``prev_hash`` -- hex SHA-256 of the canonical JSON of the *whole* previous
  entry (its ``hash`` and any ``signature`` included), or :data:`GENESIS_HASH`
  (64 zeros) for the first entry;
* ``hash`` -- hex SHA-256 of the canonical JSON of the entry without its
  ``hash`` and ``signature`` fields (so it covers ``seq`` and ``prev_hash``);
* ``signature`` (optional) -- hex Ed25519 signature by the branch over
  :func:`signed_bytes` (the entry minus the fields the server adds, see
  :data:`SERVER_FIELDS`): the branch signs its privacy claim, the chain binds
  it in place.

Editing a line breaks its ``hash``; deleting, inserting or reordering lines
breaks a ``prev_hash`` or ``seq``; stripping a signature breaks the next
``prev_hash``.  Cutting lines off the *end* leaves a valid shorter chain: keep
:attr:`LedgerVerification.head_hash` elsewhere to catch that.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from common.wire.canonical import canonical_json
from common.errors import LedgerError

GENESIS_HASH = "0" * 64
#: ``branch`` of the lines the server writes itself (failures, client-level releases).
SERVER_BRANCH = "(server)"
#: ``kind`` of a server line recording that a sampled branch failed a round.
FAILURE = "failure"
#: ``reject_reason`` of a branch's claim from an attempt of a round that did not
#: finish, ledgered when the resumed round did not sample that branch again.
INTERRUPTED = "interrupted"
RESERVED_FIELDS = ("seq", "prev_hash", "hash", "signature")
#: Fields the ledger's writer (the server) adds to a branch's signed claim;
#: the branch's ``signature`` covers every other field of the entry.
SERVER_FIELDS = RESERVED_FIELDS + ("time", "aggregated", "reject_reason")

Signer = Callable[[bytes], bytes]
#: ``Callable[[signature, message], bool]`` or an object with ``verify(signature, message)``
#: that raises on failure (e.g. ``Ed25519PublicKey``).
VerifyKey = Any


def entry_hash(entry: Mapping[str, Any]) -> str:
    """Return the hex ``hash`` an entry should carry (all fields but ``hash``/``signature``)."""
    body = {k: v for k, v in entry.items() if k not in ("hash", "signature")}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def signed_bytes(entry: Mapping[str, Any]) -> bytes:
    """The bytes a branch signs: the canonical JSON of the entry minus :data:`SERVER_FIELDS`.

    A branch signs its own privacy claim before the server chains it, so the
    signature cannot cover ``seq``/``prev_hash``/``hash``; those are covered by
    the chain, the claim by the branch.
    """
    return canonical_json({k: v for k, v in entry.items() if k not in SERVER_FIELDS})


def _link_hash(entry: Mapping[str, Any]) -> str:
    """Hash of a whole entry, as stored in the next entry's ``prev_hash``."""
    return hashlib.sha256(canonical_json(dict(entry))).hexdigest()


def _parse_line(raw: bytes, lineno: int) -> dict:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LedgerError(f"line {lineno}: not valid JSON (truncated or corrupt): {exc}") from exc
    if not isinstance(obj, dict):
        raise LedgerError(f"line {lineno}: not a JSON object")
    return obj


def _read_lines(path: Path) -> tuple[list[bytes], bool, int]:
    """Return a ledger's lines, whether the last lacks its newline, and the file size."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc}") from exc
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail:
        lines.append(tail)
    return lines, bool(tail), len(data)


def _complete_lines(path: Path) -> tuple[list[bytes], int]:
    lines, truncated, size = _read_lines(path)
    if truncated:
        raise LedgerError(f"line {len(lines)}: last line has no newline (truncated write?); "
                          f"run 'fedbank ledger verify {path}'")
    return lines, size


class PrivacyLedger:
    """The single writer of one ledger file; continues an existing file's chain.

    Args:
        path: The ``ledger.jsonl`` file; it is created on the first append.

    Raises:
        LedgerError: If the existing file cannot be read, or its last line is
            truncated, corrupt or fails its own ``seq``/``hash`` check.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._next_seq, self._prev_hash, self._size = 0, GENESIS_HASH, 0
        if self.path.exists():
            lines, self._size = _complete_lines(self.path)
            if lines:
                tail = _parse_line(lines[-1], len(lines))
                if tail.get("seq") != len(lines) - 1 or tail.get("hash") != entry_hash(tail):
                    raise LedgerError(f"line {len(lines)}: last ledger line fails its seq/hash check; "
                                      f"run 'fedbank ledger verify {self.path}'")
                self._next_seq, self._prev_hash = len(lines), _link_hash(tail)

    def append(self, entry: Mapping[str, Any], signer: Signer | None = None, *, signature: bytes | None = None) -> dict:
        """Chain one entry, write it as a single line, and fsync.

        Args:
            entry: The caller's fields; ``seq``, ``prev_hash``, ``hash`` and
                ``signature`` are reserved.  The mapping is not modified.
            signer: Optional ``signer(message) -> signature_bytes`` called on
                :func:`signed_bytes` of the entry; the result is stored
                hex-encoded as ``signature``.
            signature: A signature the branch already made over
                :func:`signed_bytes` of ``entry`` (the server path).

        Returns:
            A new dict: the entry exactly as written.

        Raises:
            LedgerError: On a reserved field, a non-JSON or non-finite value,
                a signer not returning bytes, a file changed behind the
                writer's back, or a failed write.
        """
        if not isinstance(entry, Mapping) or not all(isinstance(k, str) for k in entry):
            raise LedgerError("ledger entry must be a mapping with string keys")
        clash = sorted(set(entry) & set(RESERVED_FIELDS))
        if clash:
            raise LedgerError(f"ledger entry may not set reserved field(s): {', '.join(clash)}")
        full = {**entry, "seq": self._next_seq, "prev_hash": self._prev_hash}
        full["hash"] = entry_hash(full)
        sig = signer(signed_bytes(full)) if signer is not None else signature
        if sig is not None:
            if not isinstance(sig, (bytes, bytearray)):
                raise LedgerError("ledger signature must be bytes")
            full["signature"] = bytes(sig).hex()
        self._write(canonical_json(full) + b"\n")
        self._next_seq, self._prev_hash = self._next_seq + 1, _link_hash(full)
        return full

    def _write(self, line: bytes) -> None:
        """Append ``line`` with one ``os.write`` (O_APPEND), then fsync."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LedgerError(f"cannot open ledger {self.path} for append: {exc}") from exc
        try:
            size = os.fstat(fd).st_size
            if size != self._size:  # written or cut by someone else: do not fork the chain
                raise LedgerError(f"ledger {self.path} changed on disk since it was opened; reopen it")
            written = os.write(fd, line)
            if written != len(line):
                os.ftruncate(fd, size)  # undo a short write so the file stays well-formed
                raise LedgerError(f"short write to ledger {self.path} ({written} of {len(line)} bytes)")
            os.fsync(fd)
        except OSError as exc:
            raise LedgerError(f"cannot write ledger {self.path}: {exc}") from exc
        finally:
            os.close(fd)
        self._size += len(line)
        if created:  # make the new directory entry durable too
            with suppress(OSError):
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)

    def entries(self) -> list[dict]:
        """Return every entry, parsed (no chain check: use :func:`verify_ledger`)."""
        if not self.path.exists():
            return []
        lines, _ = _complete_lines(self.path)
        return [_parse_line(raw, i) for i, raw in enumerate(lines, start=1)]

    def __len__(self) -> int:
        return self._next_seq

    @property
    def head(self) -> str:
        """Link hash of the last entry (what the next entry's ``prev_hash`` will be)."""
        return self._prev_hash


@dataclass(frozen=True)
class LedgerVerification:
    """Outcome of :func:`verify_ledger`.

    Attributes:
        ok: True if every line checks out.
        entries: Number of lines in the file (a bad one included).
        bad_line: 1-based number of the first bad line, or None.
        reason: ``"OK"`` or a one-line explanation starting ``"line N: "``.
        head_hash: Link hash of the last good entry (:data:`GENESIS_HASH` if
            none); anchor it elsewhere to detect lines cut off the end.
    """

    ok: bool
    entries: int
    bad_line: int | None
    reason: str
    head_hash: str = GENESIS_HASH


def _signature_ok(key: VerifyKey, signature: bytes, message: bytes) -> bool:
    try:
        if callable(key):
            return bool(key(signature, message))
        key.verify(signature, message)  # Ed25519PublicKey raises InvalidSignature
        return True
    except Exception:  # any failure to verify counts as a bad signature
        return False


def verify_ledger(path: str | os.PathLike[str], verify_keys: Mapping[str, VerifyKey] | None = None,
                  *, require_signatures: bool = False) -> LedgerVerification:
    """Check a whole ledger file and report its first bad line.

    Args:
        path: The ledger file.
        verify_keys: Optional map from an entry's ``branch`` to its verifier:
            an ``Ed25519PublicKey`` (anything with ``verify(sig, msg)``) or a
            callable ``(signature, message) -> bool``.  When given, every
            signature present must verify under its branch's key.
        require_signatures: Also fail on an entry without a signature.

    Returns:
        A :class:`LedgerVerification`; an empty file is OK with 0 entries.

    Raises:
        LedgerError: If the file is missing or unreadable.
    """
    lines, truncated, _ = _read_lines(Path(path))
    prev, prev_line = GENESIS_HASH, 0

    def bad(n: int, why: str) -> LedgerVerification:
        reason = why if why.startswith(f"line {n}:") else f"line {n}: {why}"
        return LedgerVerification(False, len(lines), n, reason, prev)

    for n, raw in enumerate(lines, start=1):
        try:
            entry = _parse_line(raw, n)
            expected_hash = entry_hash(entry)
        except LedgerError as exc:
            return bad(n, str(exc))
        if truncated and n == len(lines):
            return bad(n, "last line has no newline (truncated write?)")
        missing = [k for k in ("seq", "prev_hash", "hash") if k not in entry]
        if missing:
            return bad(n, f"missing field(s) {', '.join(missing)}")
        if entry["hash"] != expected_hash:
            return bad(n, "hash does not match its content (edited?)")
        if entry["prev_hash"] != prev:
            where = f"line {prev_line}" if prev_line else "the genesis value"
            return bad(n, f"prev_hash does not match {where} (deleted, inserted or reordered line)")
        if type(entry["seq"]) is not int or entry["seq"] != n - 1:
            return bad(n, f"seq is {entry['seq']!r}, expected {n - 1}")
        sig_hex, branch = entry.get("signature"), entry.get("branch")
        if sig_hex is None and require_signatures:
            return bad(n, "entry is not signed")
        if sig_hex is not None and verify_keys is not None:
            if not isinstance(branch, str) or branch not in verify_keys:
                return bad(n, f"signed by branch {branch!r}, which has no verify key")
            try:
                sig = bytes.fromhex(sig_hex)
            except (TypeError, ValueError):
                return bad(n, "signature is not hex")
            if not _signature_ok(verify_keys[branch], sig, signed_bytes(entry)):
                return bad(n, f"signature does not verify for branch {branch!r}")
        prev, prev_line = _link_hash(entry), n
    return LedgerVerification(True, len(lines), None, "OK", prev)
