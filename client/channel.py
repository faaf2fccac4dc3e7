"""The branch's end of the update envelope: its keys and the two crossings.

Loaded from the branch's key directory (``keys-dir`` in its node config, or
``security.keys-dir``): its Ed25519 signing key and the server's X25519 and
Ed25519 public keys.  It verifies the global adapter the server signed before
the branch loads it, seals the branch's update for the server alone, and signs
the branch's privacy claim.  Opening the global adapter failing is a
:class:`~common.errors.Rejection`: the branch refuses to train on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from common.wire.envelope import seal_update
from common.wire.global_envelope import open_global
from common.keys.layout import KeyLayout, load_ed25519_private, load_ed25519_public, load_x25519_public


@dataclass(frozen=True)
class BranchChannel:
    """One branch's keys for the envelope."""

    branch_id: str
    signing_key: Ed25519PrivateKey
    server_public_key: X25519PublicKey
    server_verify_key: Ed25519PublicKey
    max_bytes: int

    @classmethod
    def load(cls, keys_dir: Path, branch_id: str, max_bytes: int) -> "BranchChannel":
        """Load the branch's keys; ``KeyFileError`` names a missing or wrong file."""
        layout = KeyLayout.from_dir(keys_dir)
        return cls(
            branch_id=branch_id,
            signing_key=load_ed25519_private(layout.branch(branch_id).ed25519_key),
            server_public_key=load_x25519_public(layout.server_x25519_pub),
            server_verify_key=load_ed25519_public(layout.server_ed25519_pub),
            max_bytes=max_bytes,
        )

    def open_global(self, blob: bytes, run_id: int, server_round: int) -> dict[str, np.ndarray]:
        """Verify the server's signature on the global adapter and return its tensors."""
        return open_global(blob, expected_run_id=run_id, expected_round=server_round,
                           server_verify_key=self.server_verify_key, max_bytes=self.max_bytes)

    def seal(self, arrays: dict[str, np.ndarray], run_id: int, server_round: int) -> bytes:
        """Encrypt the update for the server and sign it as this branch."""
        return seal_update(arrays, run_id=run_id, server_round=server_round, branch_id=self.branch_id,
                           branch_signing_key=self.signing_key, server_public_key=self.server_public_key)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (the branch's privacy claim) with the branch's key."""
        return self.signing_key.sign(message)
