"""Append-only, tamper-evident privacy ledger (``ledger.jsonl``): its format, its writer, its check.

Owns the on-disk format of the ledger in which the server records, once per
round and branch, that branch's privacy spend, the writer
(:class:`PrivacyLedger`) and the check a compliance reviewer runs on it
(:func:`verify_ledger`; what a reviewer is told is in
:mod:`server.records.ledger_proof`).

Format: one canonical-JSON object per line (sorted keys, no whitespace, UTF-8,
NaN/inf refused), each ending in ``\\n``.  Besides the caller's fields every
entry carries (the bytes each covers: :mod:`server.records.ledger_lines`):

* ``seq`` -- its 0-based line index;
* ``prev_hash`` -- hex SHA-256 of the canonical JSON of the *whole* previous
  entry (signatures included), or :data:`GENESIS_HASH` for the first entry;
* ``hash`` -- hex SHA-256 of the entry without ``hash`` and its signatures;
* ``signature`` (optional) -- hex Ed25519 signature by the branch over its
  claim (the entry minus the fields the server adds, :data:`SERVER_FIELDS`),
  or by the server over a line it writes itself (failures, releases);
* ``server_signature`` -- when the writer holds the server's signing key:
  hex Ed25519 signature by the server over the *whole* line (every field,
  ``aggregated``, ``reject_reason``, ``time``, ``seq``, ``prev_hash``,
  ``hash`` and the branch's ``signature`` included).

After each round the server seals the chain (:meth:`PrivacyLedger.seal_round`):
a line ``{"kind": "head", "branch": "(server)", "round": r, "head": <prev_hash>,
"server_key": <hex>, "branch_keys": {branch: <hex>}}``, server-signed like
every line.  It names the server's public key (which the reviewer checks
against the fingerprint they hold) and every branch's public key (so the
branches' claim signatures are checked against keys the server vouched for,
never against a ``keys/`` folder found beside the ledger).

Editing any field breaks the server signature (and the ``hash``); deleting,
inserting or reordering lines breaks a ``prev_hash`` or ``seq``; lines cut
off the end are caught up to the last signed head, whose round says how far
the ledger is proven.  Without a server key (``security.envelope=false``)
lines carry no ``server_signature``, no head is written, and the chain alone
proves nothing about who wrote it.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.errors import LedgerError
from common.wire.canonical import canonical_json
from server.records.ledger_lines import (CHAIN_FIELDS, SERVER_ADDED, complete_lines, entry_hash, link_hash,
                                         parse_line, parse_signature, read_lines, server_signed_bytes, signed_bytes)

GENESIS_HASH = "0" * 64
#: ``branch`` of the lines the server writes itself (failures, client-level releases, heads).
SERVER_BRANCH = "(server)"
#: ``kind`` of a server line recording that a sampled branch failed a round.
FAILURE = "failure"
#: ``kind`` of the server's signed chain head, written after each round.
HEAD = "head"
#: ``reject_reason`` of a branch's claim from an attempt of a round that did not
#: finish, ledgered when the resumed round did not sample that branch again.
INTERRUPTED = "interrupted"
RESERVED_FIELDS = CHAIN_FIELDS
#: Fields the ledger's writer (the server) adds to a branch's signed claim.
SERVER_FIELDS = CHAIN_FIELDS + SERVER_ADDED

Signer = Callable[[bytes], bytes]
#: ``Callable[[signature, message], bool]`` or an object with ``verify(signature, message)``
#: that raises on failure (e.g. ``Ed25519PublicKey``).
VerifyKey = Any
_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def raw_public_hex(key: Ed25519PublicKey) -> str:
    """An Ed25519 public key's 32 raw bytes, hex (as head lines name keys)."""
    return key.public_bytes(*_RAW).hex()


class PrivacyLedger:
    """The single writer of one ledger file; continues an existing file's chain.

    Args:
        path: The ``ledger.jsonl`` file; it is created on the first append.
        signing_key: The server's Ed25519 signing key: every line then gets a
            ``server_signature`` over the whole line, and :meth:`seal_round`
            writes signed heads.  None (keys off): lines are not signed.
        branch_keys: Every registered branch's verify key, named in each head.

    Raises:
        LedgerError: If the existing file cannot be read, or its last line is
            truncated, corrupt or fails its own ``seq``/``hash`` check.
    """

    def __init__(self, path: str | os.PathLike[str], *, signing_key: Ed25519PrivateKey | None = None,
                 branch_keys: Mapping[str, Ed25519PublicKey] | None = None) -> None:
        self.path = Path(path)
        self.signing_key, self.branch_keys = signing_key, dict(branch_keys or {})
        self._next_seq, self._prev_hash, self._size = 0, GENESIS_HASH, 0
        if self.path.exists():
            lines, self._size = complete_lines(self.path)
            if lines:
                tail = parse_line(lines[-1], len(lines))
                if tail.get("seq") != len(lines) - 1 or tail.get("hash") != entry_hash(tail):
                    raise LedgerError(f"line {len(lines)}: last ledger line fails its seq/hash check; "
                                      f"run 'fedbank ledger verify {self.path}'")
                self._next_seq, self._prev_hash = len(lines), link_hash(tail)

    def append(self, entry: Mapping[str, Any], signer: Signer | None = None, *, signature: bytes | None = None) -> dict:
        """Chain one entry, sign it as the server (with a signing key), write it as one line, and fsync.

        Args:
            entry: The caller's fields; :data:`RESERVED_FIELDS` are reserved.
                The mapping is not modified.
            signer: Optional ``signer(message) -> signature_bytes`` called on
                :func:`signed_bytes` of the entry; stored hex as ``signature``.
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
        if self.signing_key is not None:
            full["server_signature"] = self.signing_key.sign(server_signed_bytes(full)).hex()
        self._write(canonical_json(full) + b"\n")
        self._next_seq, self._prev_hash = self._next_seq + 1, link_hash(full)
        return full

    def seal_round(self, server_round: int) -> dict | None:
        """Append the server-signed chain head after ``server_round`` (None without a signing key)."""
        if self.signing_key is None:
            return None
        return self.append({
            "kind": HEAD, "branch": SERVER_BRANCH, "round": int(server_round), "head": self._prev_hash,
            "server_key": raw_public_hex(self.signing_key.public_key()),
            "branch_keys": {b: raw_public_hex(k) for b, k in sorted(self.branch_keys.items())},
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })

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
        lines, _ = complete_lines(self.path)
        return [parse_line(raw, i) for i, raw in enumerate(lines, start=1)]

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
        head_hash: Link hash of the last good entry (:data:`GENESIS_HASH` if none).
        server_signed: Lines whose ``server_signature`` verified.
        claim_signers: Per signer (a branch, or ``(server)``), the lines whose
            ``signature`` verified under its key.
        signed_lines: Lines carrying any signature (checked or not).
        sealed_round, sealed_line: Round and line of the last head whose
            server signature verified (None if none).
    """

    ok: bool
    entries: int
    bad_line: int | None
    reason: str
    head_hash: str = GENESIS_HASH
    server_signed: int = 0
    claim_signers: dict = field(default_factory=dict)
    signed_lines: int = 0
    sealed_round: int | None = None
    sealed_line: int | None = None


def _signature_ok(key: VerifyKey, signature: bytes, message: bytes) -> bool:
    try:
        if callable(key):
            return bool(key(signature, message))
        key.verify(signature, message)  # Ed25519PublicKey raises InvalidSignature
        return True
    except Exception:  # any failure to verify counts as a bad signature
        return False


def _chain_fault(entry: Mapping, n: int, prev: str, prev_line: int) -> str | None:
    missing = [k for k in ("seq", "prev_hash", "hash") if k not in entry]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    if entry["hash"] != entry_hash(entry):
        return "hash does not match its content (edited?)"
    if entry["prev_hash"] != prev:
        where = f"line {prev_line}" if prev_line else "the genesis value"
        return f"prev_hash does not match {where} (deleted, inserted or reordered line)"
    if type(entry["seq"]) is not int or entry["seq"] != n - 1:
        return f"seq is {entry['seq']!r}, expected {n - 1}"
    return None


def _server_fault(entry: Mapping, server_key: VerifyKey | None, required: bool) -> tuple[str | None, bool]:
    """(fault, verified) of a line's ``server_signature`` (and the form of its ``signature``)."""
    if "signature" in entry and parse_signature(entry["signature"]) is None:
        return "signature is malformed (not 64 bytes of hex)", False
    if "server_signature" not in entry:
        return ("no server signature (stripped, or written without the server's key)" if required else None), False
    sig = parse_signature(entry["server_signature"])
    if sig is None:
        return "server_signature is malformed (not 64 bytes of hex)", False
    if server_key is None:
        return None, False
    if not _signature_ok(server_key, sig, server_signed_bytes(entry)):
        return "server signature does not verify (a field edited, or signed by another key)", False
    return None, True


def _head_fault(entry: Mapping, anchor_hex: str | None, last_round: int | None, keys: dict) -> str | None:
    """Check a head line; add the branch keys it names to ``keys`` (a key may not change)."""
    if entry.get("head") != entry.get("prev_hash"):
        return "head does not name the line before it"
    rnd = entry.get("round")
    if type(rnd) is not int or (last_round is not None and rnd <= last_round):
        return f"head round {rnd!r} does not follow round {last_round}"
    if anchor_hex is not None and entry.get("server_key") != anchor_hex:
        return "head names another server key than the trusted one"
    named = entry.get("branch_keys")
    if not isinstance(named, Mapping):
        return "head has no branch_keys"
    for branch, hex_key in named.items():
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))
        except (TypeError, ValueError):
            return f"head names a malformed key for branch {branch!r}"
        if branch in keys and raw_public_hex(keys[branch]) != hex_key:
            return f"head changes the key of branch {branch!r}"
        keys[branch] = key
    return None


def _claim_fault(entry: Mapping, keys: Mapping[str, VerifyKey] | None, require: bool, server_ok: bool) -> str | None:
    """Check a line's ``signature`` (a branch's claim, or a server line's) against ``keys``."""
    branch = entry.get("branch")
    if "signature" not in entry:
        if require and not (branch == SERVER_BRANCH and server_ok):
            return "entry is not signed"
        return None
    sig = parse_signature(entry["signature"])
    if sig is None:
        return "signature is malformed (not 64 bytes of hex)"
    if keys is None:
        return None
    if not isinstance(branch, str) or branch not in keys:
        return f"signed by branch {branch!r}, which has no verify key"
    if not _signature_ok(keys[branch], sig, signed_bytes(entry)):
        return f"signature does not verify for branch {branch!r}"
    return None


def verify_ledger(path: str | os.PathLike[str], verify_keys: Mapping[str, VerifyKey] | None = None, *,
                  require_signatures: bool = False, server_key: Ed25519PublicKey | None = None) -> LedgerVerification:
    """Check a whole ledger file and report its first bad line.

    Args:
        path: The ledger file.
        verify_keys: Optional map from an entry's ``branch`` to its verifier
            (an ``Ed25519PublicKey``, or a callable ``(signature, message) -> bool``);
            every ``signature`` present must verify under its branch's key, and
            a ``server_signature`` under the ``(server)`` key when there is one.
        require_signatures: Also fail on a line with no signature (a server
            line may carry only a verified ``server_signature``).
        server_key: The trust anchor: every line must carry a server
            signature that verifies under it, every head must name it, and
            (without ``verify_keys``) the branches' claims are checked against
            the keys the server-signed heads name; claims must be signed.

    Returns:
        A :class:`LedgerVerification`; an empty file is OK with 0 entries.

    Raises:
        LedgerError: If the file is missing or unreadable.
    """
    lines, truncated, _ = read_lines(Path(path))
    anchor = server_key if server_key is not None else (verify_keys or {}).get(SERVER_BRANCH)
    anchor_hex = raw_public_hex(server_key) if server_key is not None else None
    entries, links, server_ok, head_keys = [], [GENESIS_HASH], [], {}
    fault, last_round, sealed = None, None, (None, None)
    for n, raw in enumerate(lines, start=1):
        try:
            entry = parse_line(raw, n)
        except LedgerError as exc:
            fault = (n, str(exc))
            break
        verified = False
        why = "last line has no newline (truncated write?)" if truncated and n == len(lines) else None
        why = why or _chain_fault(entry, n, links[-1], n - 1)
        if why is None:
            why, verified = _server_fault(entry, anchor, server_key is not None)
        if why is None and entry.get("kind") == HEAD and entry.get("branch") == SERVER_BRANCH:
            why = _head_fault(entry, anchor_hex, last_round, head_keys)
            last_round = entry.get("round")
            sealed = (last_round, n) if verified and why is None else sealed
        if why is not None:
            fault = (n, why)
            break
        entries.append(entry)
        links.append(link_hash(entry))
        server_ok.append(verified)
    keys = verify_keys if verify_keys is not None or server_key is None else {**head_keys, SERVER_BRANCH: server_key}
    signers: dict[str, int] = {}
    # a head past the first bad line is not trusted: its branches' earlier claims stay unchecked, not blamed
    unknown_ok = fault is not None and keys is not None and verify_keys is None
    for n, entry in enumerate(entries, start=1):
        if unknown_ok and "signature" in entry and entry.get("branch") not in keys:
            continue
        why = _claim_fault(entry, keys, require_signatures or server_key is not None, server_ok[n - 1])
        if why is not None:
            fault = (n, why)
            break
        if "signature" in entry and keys is not None:
            signers[str(entry.get("branch"))] = signers.get(str(entry.get("branch")), 0) + 1
    good = fault[0] - 1 if fault else len(entries)
    if sealed[1] is not None and sealed[1] > good:
        sealed = (None, None)
    signed = sum(1 for e in entries[:good] if "signature" in e or "server_signature" in e)
    if fault is None:
        return LedgerVerification(True, len(lines), None, "OK", links[-1], sum(server_ok), signers, signed, *sealed)
    n, why = fault
    reason = why if why.startswith(f"line {n}:") else f"line {n}: {why}"
    return LedgerVerification(False, len(lines), n, reason, links[n - 1], sum(server_ok[:good]), signers, signed,
                              *sealed)
