"""The global adapter the server sends to branches: signed by the server, not encrypted.

A branch trains only on the adapter the aggregation server sent for this run
and round (not one altered by the SuperLink, or replayed from another round),
so the server signs it; the adapter itself is not secret from the branches.
Opening failures raise :class:`~common.errors.Rejection`, as for an update
(:mod:`common.wire.envelope`, whose safetensors serialization this shares).

Layout; integers are unsigned big-endian, ``m`` the payload length::

    offset    size  field
    0         4     magic + version: b"FBG" 0x01
    4         8     run_id
    12        4     server_round
    16        8     m
    24        m     safetensors bytes
    24+m      64    Ed25519 signature by the server over bytes [0, 24+m)
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.errors import Rejection
from common.wire.envelope import DEFAULT_MAX_BYTES, check_ids, checked_bytes, deserialize_arrays, serialize_arrays

GLOBAL_MAGIC = b"FBG\x01"

_U32, _U64 = struct.Struct(">I"), struct.Struct(">Q")
_SIG_LEN = 64


def sign_global(
    arrays: Mapping[str, np.ndarray],
    *,
    run_id: int,
    server_round: int,
    server_signing_key: Ed25519PrivateKey,
) -> bytes:
    """Sign the global adapter the server sends to branches (not encrypted).

    Args:
        arrays: Global adapter tensors by name.
        run_id: Flower run id (unsigned 64-bit).
        server_round: Round the adapter is sent for (unsigned 32-bit).
        server_signing_key: The aggregation server's Ed25519 signing key.

    Returns:
        The envelope bytes (layout in the module docstring).

    Raises:
        ValueError: An id is out of range or the arrays cannot be serialized.
    """
    check_ids(run_id, server_round)
    payload = serialize_arrays(arrays)
    signed = GLOBAL_MAGIC + _U64.pack(run_id) + _U32.pack(server_round) + _U64.pack(len(payload)) + payload
    return signed + server_signing_key.sign(signed)


def open_global(
    blob: bytes,
    *,
    expected_run_id: int,
    expected_round: int,
    server_verify_key: Ed25519PublicKey,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, np.ndarray]:
    """Verify and parse a global adapter envelope.

    Args:
        blob: The envelope bytes.
        expected_run_id: The run the branch is taking part in.
        expected_round: The round the branch was asked to train.
        server_verify_key: The aggregation server's Ed25519 public key.
        max_bytes: Larger envelopes are refused before parsing.

    Returns:
        Global adapter tensors by name.

    Raises:
        Rejection: With reason ``oversized``, ``malformed``, ``forged`` or
            ``replayed``.
    """
    blob = checked_bytes(blob, max_bytes)
    if len(blob) < 24 + _SIG_LEN or blob[:4] != GLOBAL_MAGIC:
        raise Rejection("malformed", "not a fedbank global envelope (bad magic, version or length)")
    m = _U64.unpack_from(blob, 16)[0]
    if len(blob) != 24 + m + _SIG_LEN:
        raise Rejection("malformed", "length field does not match the envelope size")
    signed, signature = blob[: 24 + m], blob[24 + m :]
    try:
        server_verify_key.verify(signature, signed)
    except InvalidSignature as exc:
        raise Rejection("forged", "global adapter not signed by the server key") from exc
    run_id, server_round = _U64.unpack_from(blob, 4)[0], _U32.unpack_from(blob, 12)[0]
    if run_id != expected_run_id or server_round != expected_round:
        raise Rejection(
            "replayed",
            f"global adapter is for run {run_id} round {server_round}, "
            f"expected run {expected_run_id} round {expected_round}",
        )
    return deserialize_arrays(blob[24:24 + m], max_bytes=max_bytes)
