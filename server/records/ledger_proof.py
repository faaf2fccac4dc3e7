"""What a ledger proves, against a trust anchor the reviewer states: ``fedbank ledger verify`` and the report.

The anchor is the server's Ed25519 signing key, stated by the reviewer as its
fingerprint (``--server-fingerprint SHA256:...``, printed by ``fedbank keys
init``) and/or as a public-key file they hold (``--server-key FILE``).  A
``keys/`` folder found beside the ledger is never trusted: in a simulation it
also holds every private key, and whoever can rewrite the ledger can replace it.

With only a fingerprint, the server key is taken from the ledger's signed head
lines and must have that fingerprint.  The branches' public keys come from the
head lines, which the server signs (:mod:`server.records.ledger`), so the
anchor vouches for them too.

:func:`prove_ledger` gives one of three statuses:

* ``verified`` -- every line is in the chain and signed by the anchored server
  over the whole line, every branch claim is signed by its branch, and the
  ledger ends with a signed head (nothing after it could have been cut off);
* ``not-verified`` -- nothing is wrong, but less was proven (no signatures, no
  anchor stated, lines after the last signed head, an empty ledger), with why;
* ``failed`` -- a line does not check out (the first is named).

``statements`` list exactly what was proven, one per line of output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import FedbankError
from common.keys.fingerprint import check_fingerprint, key_fingerprint
from common.keys.layout import load_ed25519_public
from server.records.ledger import HEAD, SERVER_BRANCH, LedgerVerification, verify_ledger
from server.records.ledger_lines import parse_line, read_lines

VERIFIED, NOT_VERIFIED, FAILED = "verified", "not-verified", "failed"
ANCHOR_HINT = "pass --server-fingerprint (printed by `fedbank keys init`) or --server-key FILE"


@dataclass(frozen=True)
class LedgerProof:
    """The status of a ledger against an anchor, why (empty when verified), and what was proven."""

    status: str
    reason: str
    statements: tuple[str, ...]
    result: LedgerVerification
    anchor: str | None = None

    @property
    def verified(self) -> bool:
        """True only when everything the ledger claims was verified."""
        return self.status == VERIFIED


def _ledger_server_key(path: Path) -> Ed25519PublicKey | None:
    """The server key the first head line names (None when no head names a well-formed one)."""
    lines, _, _ = read_lines(path)
    for n, raw in enumerate(lines, start=1):
        try:
            entry = parse_line(raw, n)
        except FedbankError:
            continue
        if entry.get("kind") == HEAD and entry.get("branch") == SERVER_BRANCH:
            try:
                return Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(entry.get("server_key"))))
            except ValueError:
                return None
    return None


def resolve_anchor(path: Path, fingerprint: str | None, key_file: str | os.PathLike[str] | None
                   ) -> tuple[Ed25519PublicKey | None, str | None, str]:
    """(server key, its fingerprint, problem) from what the reviewer stated; problem '' when the key is anchored."""
    wanted = check_fingerprint(fingerprint) if fingerprint else None
    key = load_ed25519_public(key_file) if key_file else _ledger_server_key(path)
    if key is None:
        return None, wanted, f"no signed head line names a server key to check against {wanted}"
    found = key_fingerprint(key)
    if wanted is not None and found != wanted:
        where = f"the key in {key_file}" if key_file else "the server key the ledger's head lines name"
        return None, wanted, f"{where} has fingerprint {found}, not the trusted {wanted}"
    return key, found, ""


def _statements(r: LedgerVerification, anchor: str | None) -> tuple[str, ...]:
    good = r.entries if r.ok else (r.bad_line or 1) - 1
    out = [f"lines: {good} of {r.entries} in an intact hash chain (head {r.head_hash[:16]})"]
    if anchor:
        out.append(f"server signature over the whole line ({anchor}): {r.server_signed} of {good} lines")
    if r.claim_signers:
        who = ", ".join(f"{b} x{c}" for b, c in sorted(r.claim_signers.items()))
        out.append(f"claims signed by: {who} (branch keys from the server-signed head lines)")
    if r.sealed_line is not None:
        after = good - r.sealed_line
        out.append(f"signed head: line {r.sealed_line}, after round {r.sealed_round}"
                   + ("; nothing after it" if after == 0 else f"; {after} line(s) after it are not sealed"))
    return tuple(out)


def prove_ledger(path: str | os.PathLike[str], *, server_fingerprint: str | None = None,
                 server_key_file: str | os.PathLike[str] | None = None) -> LedgerProof:
    """Verify a ledger against the stated anchor and say exactly what was proven.

    Raises:
        LedgerError: The ledger file cannot be read.
        ConfigError, KeyFileError: A malformed fingerprint or an unreadable key file.
    """
    path = Path(path)
    if not (server_fingerprint or server_key_file):
        r = verify_ledger(path)
        if not r.ok:
            return LedgerProof(FAILED, r.reason, _statements(r, None), r)
        why = (f"signed, but no trust anchor stated: signatures not checked; {ANCHOR_HINT}" if r.signed_lines else
               "not signed: the ledger carries no signatures (keys off?); its hash chain shows the lines agree "
               "with each other, not who wrote them")
        return LedgerProof(NOT_VERIFIED, why, _statements(r, None), r)
    key, anchor, problem = resolve_anchor(path, server_fingerprint, server_key_file)
    if key is None:
        r = verify_ledger(path)
        return LedgerProof(FAILED, problem if r.ok else r.reason, _statements(r, None), r, anchor)
    r = verify_ledger(path, server_key=key)
    statements = _statements(r, anchor)
    if not r.ok:
        return LedgerProof(FAILED, r.reason, statements, r, anchor)
    if r.entries == 0:
        return LedgerProof(NOT_VERIFIED, "the ledger is empty: nothing is proven", statements, r, anchor)
    if r.sealed_line != r.entries:
        last = "no signed head" if r.sealed_line is None else f"lines after the last signed head (line {r.sealed_line})"
        return LedgerProof(NOT_VERIFIED, f"{last}: lines cut off the end would not be noticed", statements, r, anchor)
    return LedgerProof(VERIFIED, "", statements, r, anchor)
