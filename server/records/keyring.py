"""The aggregation server's keys for the update envelope.

Loaded from ``security.keys-dir``: the server's X25519 private key (to open
updates), its Ed25519 private key (to sign the global adapter and the ledger)
and every registered branch's Ed25519 public key (to verify updates and
privacy claims).  A branch missing here is an unknown branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.keys.layout import (KeyLayout, load_branch_verify_keys, load_ed25519_private, load_ed25519_public,
                                load_x25519_private)
from server.records.ledger import SERVER_BRANCH


@dataclass(frozen=True)
class ServerKeys:
    """The server's private keys and the branches' verification keys."""

    decrypt_key: X25519PrivateKey
    signing_key: Ed25519PrivateKey
    branch_keys: dict[str, Ed25519PublicKey]

    @classmethod
    def load(cls, keys_dir: Path) -> "ServerKeys":
        """Load from a key directory; ``KeyFileError`` names a missing or wrong file."""
        layout = KeyLayout.from_dir(keys_dir)
        return cls(
            decrypt_key=load_x25519_private(layout.server_x25519_key),
            signing_key=load_ed25519_private(layout.server_ed25519_key),
            branch_keys=load_branch_verify_keys(keys_dir),
        )


def ledger_verify_keys(keys_dir: Path) -> dict[str, Ed25519PublicKey]:
    """Keys of a key directory that verify a ledger's signatures: each branch's, and the server's for its lines.

    For a party that holds the key directory itself (the server's tests, a
    resume); a reviewer states a trust anchor instead (:mod:`server.records.ledger_proof`).
    """
    keys: dict[str, Ed25519PublicKey] = dict(load_branch_verify_keys(keys_dir))
    keys[SERVER_BRANCH] = load_ed25519_public(KeyLayout.from_dir(keys_dir).server_ed25519_pub)
    return keys
