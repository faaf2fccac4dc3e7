"""The sealed envelope of a model update (branch -> server), and the arrays' serialization.

A branch's LoRA update must reach the aggregation server confidential (no one
else, the SuperLink included, reads it), authentic (it comes from the branch it
names) and fresh (it belongs to this run and round).  Much like Fernet, an
envelope is one versioned byte string and every failure to open one raises a
single exception type, :class:`~common.errors.Rejection`, whose ``reason``
names the check that failed.

Arrays are serialized with safetensors (no pickle).

Update envelope (``seal_update`` / ``open_update``); integers are unsigned
big-endian, ``n`` is the UTF-8 length of the branch id, ``m`` the ciphertext
length::

    offset    size  field
    0         4     magic + version: b"FBU" 0x01
    4         8     run_id
    12        4     server_round
    16        2     n
    18        n     branch_id (UTF-8)
    18+n      32    ephemeral X25519 public key (raw)
    50+n      12    AES-GCM nonce
    -------------   header ends: bytes [0, 62+n) are the AES-GCM associated data
    62+n      8     m
    70+n      m     AES-256-GCM ciphertext of the safetensors bytes (16-byte tag last)
    70+n+m    64    Ed25519 signature by the branch over bytes [0, 70+n+m)

The AES key is HKDF-SHA256(X25519(ephemeral, server), salt=ephemeral_pub ||
server_pub, info=b"fedbank-update-v1"), 32 bytes; a fresh ephemeral key and a
random nonce are drawn for every update.

The signed global adapter the server sends back is
:mod:`common.wire.global_envelope`; it shares this module's serialization.

Checks when opening an update, in order: size (``oversized``), layout
(``malformed``), branch registered (``unknown-branch``), signature, run and
round (``replayed``), AES-GCM tag (``tampered``), safetensors (``malformed``).
When the signature does not verify, the envelope is decrypted once more to
tell two cases apart: if the AES-GCM tag fails too, the bytes were altered
after sealing (``tampered``: a flipped header or ciphertext byte); if the
ciphertext is intact under its header, the content is whole but was not
signed with the claimed branch's registered key (``forged``: impersonation or
a replaced signature).  Duplicate detection is the server's job.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save

from common.errors import Rejection

__all__ = [
    "DEFAULT_MAX_BYTES", "OpenedUpdate", "check_ids", "checked_bytes", "deserialize_arrays",
    "open_update", "seal_update", "serialize_arrays",
]  # fmt: skip

UPDATE_MAGIC = b"FBU\x01"
HKDF_INFO = b"fedbank-update-v1"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # 64 MiB: far above a LoRA adapter
MAX_BRANCH_ID_BYTES = 255

_U16, _U32, _U64 = struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")
_KEY_LEN, _NONCE_LEN, _SIG_LEN, _TAG_LEN = 32, 12, 64, 16
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


@dataclass(frozen=True)
class OpenedUpdate:
    """An update envelope that passed every check.

    Attributes:
        branch_id: Branch that signed the update.
        run_id: Flower run the update belongs to.
        server_round: Round the update belongs to.
        arrays: The adapter tensors, by name.
        nbytes: Size of the sealed envelope on the wire, in bytes.
    """

    branch_id: str
    run_id: int
    server_round: int
    arrays: dict[str, np.ndarray]
    nbytes: int


# --------------------------------------------------------------------------- serialization


def serialize_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialize named arrays to safetensors bytes (no pickle).

    Args:
        arrays: Tensors by name; non-contiguous arrays are copied first.

    Returns:
        The safetensors byte string.

    Raises:
        ValueError: A name is not a string or a dtype is not supported.
    """
    flat: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise ValueError(f"array names must be strings, got {name!r}")
        arr = np.ascontiguousarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"array {name!r} has dtype object, which cannot be serialized")
        flat[name] = arr
    try:
        return _st_save(flat)
    except Exception as exc:  # safetensors raises its own error type
        raise ValueError(f"cannot serialize arrays: {exc}") from exc


def deserialize_arrays(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, np.ndarray]:
    """Parse safetensors bytes into named arrays.

    Args:
        data: Safetensors bytes.
        max_bytes: Larger inputs are refused before parsing.

    Returns:
        Tensors by name.

    Raises:
        Rejection: ``oversized`` or ``malformed``.
    """
    data = checked_bytes(data, max_bytes)
    try:
        return dict(_st_load(data))
    except Exception as exc:  # SafetensorError, unknown dtype, bad shape...
        raise Rejection("malformed", f"payload is not valid safetensors: {exc}") from exc


# --------------------------------------------------------------------------- helpers


def check_ids(run_id: int, server_round: int) -> None:
    """Raise ValueError unless ``run_id`` fits 64 and ``server_round`` 32 unsigned bits (the header fields)."""
    if not 0 <= int(run_id) < 2**64:
        raise ValueError(f"run_id must fit in an unsigned 64-bit integer, got {run_id}")
    if not 0 <= int(server_round) < 2**32:
        raise ValueError(f"server_round must fit in an unsigned 32-bit integer, got {server_round}")


def checked_bytes(blob: object, max_bytes: int) -> bytes:
    """Return ``blob`` as bytes; raise ``malformed`` for non-bytes, ``oversized`` before any parsing."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise Rejection("malformed", f"envelope must be bytes, got {type(blob).__name__}")
    size = blob.nbytes if isinstance(blob, memoryview) else len(blob)
    if size > max_bytes:
        raise Rejection("oversized", f"{size} bytes > limit {max_bytes}")
    return bytes(blob)


def _derive_key(shared: bytes, ephemeral_pub: bytes, server_pub: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_pub + server_pub, info=HKDF_INFO)
    return hkdf.derive(shared)


@dataclass(frozen=True)
class _ParsedUpdate:
    header: bytes
    run_id: int
    server_round: int
    branch_id: str
    ephemeral_pub: bytes
    nonce: bytes
    ciphertext: bytes
    signed: bytes
    signature: bytes


def _parse_update(blob: bytes) -> _ParsedUpdate:
    """Split an update envelope into its fields; raise ``malformed`` on any layout error."""
    if len(blob) < 18 or blob[:4] != UPDATE_MAGIC:
        raise Rejection("malformed", "not a fedbank update envelope (bad magic or version)")
    run_id = _U64.unpack_from(blob, 4)[0]
    server_round = _U32.unpack_from(blob, 12)[0]
    n = _U16.unpack_from(blob, 16)[0]
    header_end = 18 + n + _KEY_LEN + _NONCE_LEN
    if n == 0 or len(blob) < header_end + 8:
        raise Rejection("malformed", "truncated header")
    try:
        branch_id = blob[18 : 18 + n].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection("malformed", "branch id is not UTF-8") from exc
    m = _U64.unpack_from(blob, header_end)[0]
    ct_start = header_end + 8
    if m < _TAG_LEN or len(blob) != ct_start + m + _SIG_LEN:
        raise Rejection("malformed", "length fields do not match the envelope size")
    return _ParsedUpdate(
        header=blob[:header_end],
        run_id=run_id,
        server_round=server_round,
        branch_id=branch_id,
        ephemeral_pub=blob[18 + n : 18 + n + _KEY_LEN],
        nonce=blob[18 + n + _KEY_LEN : header_end],
        ciphertext=blob[ct_start : ct_start + m],
        signed=blob[: ct_start + m],
        signature=blob[ct_start + m :],
    )


def _decrypt(p: _ParsedUpdate, server_private_key: X25519PrivateKey) -> bytes:
    """Decrypt a parsed update; raise ``tampered`` if the AES-GCM tag fails."""
    server_pub = server_private_key.public_key().public_bytes(*_RAW)
    try:
        shared = server_private_key.exchange(X25519PublicKey.from_public_bytes(p.ephemeral_pub))
    except ValueError as exc:  # low-order point: shared secret all zero
        raise Rejection("tampered", "invalid ephemeral key") from exc
    key = _derive_key(shared, p.ephemeral_pub, server_pub)
    try:
        return AESGCM(key).decrypt(p.nonce, p.ciphertext, p.header)
    except InvalidTag as exc:
        raise Rejection(
            "tampered", "authentication tag mismatch (altered in transit, or sealed for another server key)"
        ) from exc


# --------------------------------------------------------------------------- updates


def seal_update(
    arrays: Mapping[str, np.ndarray],
    *,
    run_id: int,
    server_round: int,
    branch_id: str,
    branch_signing_key: Ed25519PrivateKey,
    server_public_key: X25519PublicKey,
) -> bytes:
    """Encrypt an update for the server and sign it as the branch.

    Args:
        arrays: Adapter tensors by name.
        run_id: Flower run id (unsigned 64-bit).
        server_round: Round the update answers (unsigned 32-bit).
        branch_id: The sending branch's id, 1 to 255 UTF-8 bytes.
        branch_signing_key: The branch's Ed25519 signing key.
        server_public_key: The aggregation server's X25519 public key.

    Returns:
        The envelope bytes (layout in the module docstring).

    Raises:
        ValueError: An id is out of range or the arrays cannot be serialized.
    """
    check_ids(run_id, server_round)
    bid = branch_id.encode("utf-8")
    if not 1 <= len(bid) <= MAX_BRANCH_ID_BYTES:
        raise ValueError(f"branch_id must be 1..{MAX_BRANCH_ID_BYTES} UTF-8 bytes, got {branch_id!r}")
    plaintext = serialize_arrays(arrays)

    ephemeral = X25519PrivateKey.generate()
    ephemeral_pub = ephemeral.public_key().public_bytes(*_RAW)
    server_pub = server_public_key.public_bytes(*_RAW)
    key = _derive_key(ephemeral.exchange(server_public_key), ephemeral_pub, server_pub)
    nonce = os.urandom(_NONCE_LEN)

    header = b"".join(
        (UPDATE_MAGIC, _U64.pack(run_id), _U32.pack(server_round), _U16.pack(len(bid)), bid, ephemeral_pub, nonce)
    )
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, header)
    signed = header + _U64.pack(len(ciphertext)) + ciphertext
    return signed + branch_signing_key.sign(signed)


def open_update(
    blob: bytes,
    *,
    expected_run_id: int,
    expected_round: int,
    server_private_key: X25519PrivateKey,
    branch_verify_keys: Mapping[str, Ed25519PublicKey],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> OpenedUpdate:
    """Verify, decrypt and parse an update envelope.

    Args:
        blob: The envelope bytes.
        expected_run_id: The run this server is aggregating.
        expected_round: The round this server is aggregating.
        server_private_key: The aggregation server's X25519 private key.
        branch_verify_keys: Registered Ed25519 public key of each branch, by id.
        max_bytes: Larger envelopes are refused before parsing.

    Returns:
        The opened update.

    Raises:
        Rejection: With reason ``oversized``, ``malformed``,
            ``unknown-branch``, ``forged``, ``tampered`` or ``replayed``
            (meanings in the module docstring).
    """
    blob = checked_bytes(blob, max_bytes)
    p = _parse_update(blob)
    verify_key = branch_verify_keys.get(p.branch_id)
    if verify_key is None:
        raise Rejection("unknown-branch", f"branch {p.branch_id!r} is not registered")
    try:
        verify_key.verify(p.signature, p.signed)
    except InvalidSignature as exc:
        _decrypt(p, server_private_key)  # raises ``tampered`` if the bytes were altered
        raise Rejection(
            "forged", f"intact envelope not signed by the registered key of branch {p.branch_id!r}"
        ) from exc
    if p.run_id != expected_run_id or p.server_round != expected_round:
        raise Rejection(
            "replayed",
            f"envelope is for run {p.run_id} round {p.server_round}, "
            f"expected run {expected_run_id} round {expected_round}",
        )
    plaintext = _decrypt(p, server_private_key)
    arrays = deserialize_arrays(plaintext, max_bytes=max_bytes)
    return OpenedUpdate(p.branch_id, p.run_id, p.server_round, arrays, len(blob))
