"""Fingerprints of public keys: the short text a reviewer compares and states as a trust anchor.

``fedbank keys init`` prints the server's signing-key fingerprint; ``fedbank
ledger verify --server-fingerprint`` and ``fedbank report --server-fingerprint``
take it back.  The format follows OpenSSH's: ``SHA256:`` and the unpadded
base64 of the SHA-256 of the key's raw public bytes.  A branch's SuperNode
authentication key (an OpenSSH public key) has OpenSSH's own fingerprint, the
one ``ssh-keygen -lf supernode_auth.pub`` prints: ``fedbank keys
branch-init`` and ``fedbank keys init --import-branch`` print both, for the
branch and HQ to compare over another channel.
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
    return _sha256_text(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def ssh_key_fingerprint(openssh_public_key: bytes) -> str:
    """OpenSSH's ``SHA256:<base64>`` of an OpenSSH public-key line (``ecdsa-sha2-nistp384 AAAA...``).

    Raises:
        ConfigError: ``openssh_public_key`` is not an OpenSSH public-key line.
    """
    fields = openssh_public_key.split()
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (IndexError, ValueError) as exc:
        raise ConfigError("not an OpenSSH public key line ('<type> <base64> [comment]')") from exc
    return _sha256_text(blob)


def _sha256_text(data: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii").rstrip("=")


def check_fingerprint(text: str) -> str:
    """``text`` if it is a well-formed fingerprint, else a one-line :class:`ConfigError`."""
    text = str(text).strip()
    if not FINGERPRINT_RE.match(text):
        raise ConfigError(f"{text!r} is not a key fingerprint: give it as printed by `fedbank keys init` "
                          "(SHA256: and 43 base64 characters)")
    return text
