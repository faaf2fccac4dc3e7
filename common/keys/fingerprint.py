"""Fingerprints of public keys: the short text a reviewer compares and states as a trust anchor.

``fedbank keys init`` prints the server's signing-key fingerprint; ``fedbank
ledger verify --server-fingerprint`` and ``fedbank report --server-fingerprint``
take it back.  The format follows OpenSSH's: ``SHA256:`` and the unpadded
base64 of the SHA-256 of the key's raw public bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import ConfigError

FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:<base64>`` of an Ed25519 public key's 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode("ascii").rstrip("=")


def check_fingerprint(text: str) -> str:
    """``text`` if it is a well-formed fingerprint, else a one-line :class:`ConfigError`."""
    text = str(text).strip()
    if not FINGERPRINT_RE.match(text):
        raise ConfigError(f"{text!r} is not a key fingerprint: give it as printed by `fedbank keys init` "
                          "(SHA256: and 43 base64 characters)")
    return text
