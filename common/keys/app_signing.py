"""The app-signing key: who may approve the code (the Flower app bundle, FAB) that runs at a branch.

A branch's SuperNode is started with Flower 1.39's ``--trusted-entities``
(a YAML file ``{key id: 'ssh-ed25519 ...'}``) and then runs a run's app only
if the FAB carries a signature, by one of those keys, that Flower's SuperNode
verifies (``flwr.supernode.start_client_internal._verify_fab``): Ed25519 over
``signed_at`` (8 bytes, big-endian) followed by ``SHA-256(FAB bytes)``; the
FAB's ``verifications`` map holds, per key id, the JSON
``{"signature": <base64url>, "signed_at": <unix seconds>}``.

This module owns that format on fedbank's side:

* :func:`init_app_signing`: the key pair ``keys/app-signing/ed25519.key``
  (OpenSSH private key, mode 0600) and ``ed25519.pub`` (OpenSSH public key),
  held by whoever approves releases (e.g. model-risk review);
* :func:`sign_fab`: the ``verifications`` of one FAB;
* :func:`write_trusted_entities`: a branch's ``--trusted-entities`` file;
* :func:`verify_fab`: the same check the SuperNode makes (for ``fedbank
  deploy run`` to fail early, and for tests).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.errors import ConfigError, KeyFileError

APP_SIGNING_DIR = "app-signing"
PRIVATE_NAME = "ed25519.key"
PUBLIC_NAME = "ed25519.pub"
#: The SuperLink marks a FAB it passes on with verifications this way (Flower's name).
LICENSE_FIELD = "valid_license"


@dataclass(frozen=True)
class AppSigningKeys:
    """The paths of an app-signing key pair."""

    private: Path
    public: Path

    @classmethod
    def in_keys_dir(cls, keys_dir: str | os.PathLike[str]) -> "AppSigningKeys":
        """``<keys_dir>/app-signing/ed25519.key`` and ``.pub``."""
        folder = Path(keys_dir) / APP_SIGNING_DIR
        return cls(folder / PRIVATE_NAME, folder / PUBLIC_NAME)


def init_app_signing(keys_dir: str | os.PathLike[str], *, force: bool = False) -> AppSigningKeys:
    """Create the app-signing key pair under ``keys_dir/app-signing/``.

    Raises:
        ConfigError: the key exists and ``force`` is not set.
    """
    paths = AppSigningKeys.in_keys_dir(keys_dir)
    if not force and (paths.private.exists() or paths.public.exists()):
        raise ConfigError(f"{paths.private.parent} already holds an app-signing key: give --force to replace it "
                          "(branches that trust the old key will then refuse apps signed with the new one)")
    paths.private.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    _write(paths.private, private, 0o600)
    _write(paths.public, public_key_line(key.public_key()).encode("ascii") + b"\n", 0o644)
    return paths


def _write(path: Path, data: bytes, mode: int) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def public_key_line(public_key: Ed25519PublicKey) -> str:
    """The OpenSSH one-line form ``ssh-ed25519 AAAA... fedbank-app-signing``."""
    raw = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode("ascii") + " fedbank-app-signing"


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's id in ``--trusted-entities`` and in a FAB's verifications: ``fpk_`` and 32 hex digits."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "fpk_" + hashlib.sha256(raw).hexdigest()[:32]


def load_signing_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """An app-signing private key (OpenSSH or PKCS#8 PEM, Ed25519, unencrypted).

    Raises:
        KeyFileError: missing, unreadable, encrypted or not Ed25519.
    """
    data = _read(Path(path), "app-signing private key")
    try:
        key = (serialization.load_ssh_private_key(data, password=None) if b"OPENSSH" in data
               else serialization.load_pem_private_key(data, password=None))
    except (ValueError, TypeError) as err:
        raise KeyFileError(f"{path} is not an unencrypted app-signing private key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key: an app-signing key must be Ed25519 (Flower verifies only those)")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """An app-signing public key (OpenSSH line or PEM, Ed25519).

    Raises:
        KeyFileError: missing, unreadable or not Ed25519.
    """
    data = _read(Path(path), "app-signing public key",
                 " (the approver's ed25519.pub: `fedbank keys app-signing-init --out KEYS` creates the pair)")
    try:
        key = (serialization.load_ssh_public_key(data.strip()) if data.startswith(b"ssh-")
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError) as err:
        raise KeyFileError(f"{path} is not an app-signing public key: {err}") from err
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 public key: Flower's SuperNode trusts only Ed25519 keys")
    return key


def _read(path: Path, what: str, hint: str = "") -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise KeyFileError(f"{what} {path} cannot be read: {err.strerror or err}{hint}") from err


def signed_message(fab: bytes, signed_at: int) -> bytes:
    """What is signed: ``signed_at`` as 8 big-endian bytes, then SHA-256 of the FAB (Flower's format)."""
    return int(signed_at).to_bytes(8, byteorder="big") + hashlib.sha256(fab).digest()


def sign_fab(fab: bytes, private_key: Ed25519PrivateKey, signed_at: int | None = None) -> dict[str, str]:
    """The FAB's ``verifications``: ``{key id: '{"signature": ..., "signed_at": ...}'}``."""
    when = int(time.time()) if signed_at is None else int(signed_at)
    signature = private_key.sign(signed_message(fab, when))
    encoded = base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")
    return {key_id(private_key.public_key()): json.dumps({"signature": encoded, "signed_at": when})}


def verify_fab(fab: bytes, verifications: Mapping[str, str], trusted: Iterable[Ed25519PublicKey]) -> bool:
    """Whether one trusted key signed ``fab`` (what the SuperNode checks with ``--trusted-entities``)."""
    for public_key in trusted:
        entry = verifications.get(key_id(public_key))
        if entry is None:
            continue
        try:
            record = json.loads(entry)
            signature = base64.urlsafe_b64decode(record["signature"] + "=" * (-len(record["signature"]) % 4))
            public_key.verify(signature, signed_message(fab, int(record["signed_at"])))
            return True
        except (InvalidSignature, ValueError, KeyError, TypeError):
            continue
    return False


def write_trusted_entities(path: str | os.PathLike[str], public_keys: Iterable[str | os.PathLike[str]]) -> Path:
    """Write a branch's ``--trusted-entities`` YAML from app-signing public key files.

    Raises:
        KeyFileError: a key file is missing or not Ed25519.
        ConfigError: no key was given.
    """
    entries = {}
    for pub in public_keys:
        key = load_public_key(pub)
        entries[key_id(key)] = public_key_line(key)
    if not entries:
        raise ConfigError("no app-signing public key to trust: a branch must trust at least one")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # JSON is YAML: one line per key, values quoted, nothing to escape by hand.
    out.write_text("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in entries.items()) + "\n}\n",
                   encoding="utf-8")
    return out
