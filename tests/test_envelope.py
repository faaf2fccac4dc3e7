"""Tests of common.wire.envelope with the real primitives (X25519, HKDF, AES-GCM, Ed25519)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import common.wire.envelope as envelope
import common.wire.global_envelope as global_envelope
from common.wire.envelope import (
    DEFAULT_MAX_BYTES,
    OpenedUpdate,
    deserialize_arrays,
    open_update,
    seal_update,
    serialize_arrays,
)
from common.wire.global_envelope import open_global, sign_global
from common.errors import Rejection, FedbankError

RUN, ROUND = 4242, 3


@pytest.fixture(scope="module")
def keys():
    branch_keys = {b: Ed25519PrivateKey.generate() for b in ("bank-a", "bank-b")}
    return {
        "server": X25519PrivateKey.generate(),
        "server_sign": Ed25519PrivateKey.generate(),
        "branches": branch_keys,
        "verify": {b: k.public_key() for b, k in branch_keys.items()},
    }


@pytest.fixture(scope="module")
def lora():
    """20 float32 LoRA factors: 10 layers x (A: 8x64, B: 64x8)."""
    rng = np.random.default_rng(7)
    arrays = {}
    for layer in range(10):
        arrays[f"model.layers.{layer}.q_proj.lora_A.weight"] = rng.standard_normal((8, 64), dtype=np.float32)
        arrays[f"model.layers.{layer}.q_proj.lora_B.weight"] = rng.standard_normal((64, 8), dtype=np.float32)
    return arrays


def _seal(keys, arrays, *, branch="bank-a", signer=None, run=RUN, rnd=ROUND, server_pub=None):
    return seal_update(
        arrays,
        run_id=run,
        server_round=rnd,
        branch_id=branch,
        branch_signing_key=signer or keys["branches"][branch],
        server_public_key=server_pub or keys["server"].public_key(),
    )


def _open(keys, blob, *, run=RUN, rnd=ROUND, **kw):
    return open_update(
        blob,
        expected_run_id=run,
        expected_round=rnd,
        server_private_key=kw.pop("server", keys["server"]),
        branch_verify_keys=kw.pop("verify", keys["verify"]),
        **kw,
    )


def _reason(fn, *args, **kw) -> str:
    with pytest.raises(Rejection) as info:
        fn(*args, **kw)
    return info.value.reason


def _flip(blob: bytes, index: int) -> bytes:
    out = bytearray(blob)
    out[index] ^= 0x01
    return bytes(out)


def _offsets(blob: bytes) -> tuple[int, int, int]:
    """(header end, ciphertext start, signature start) of an update envelope."""
    n = struct.unpack_from(">H", blob, 16)[0]
    header_end = 18 + n + 32 + 12
    m = struct.unpack_from(">Q", blob, header_end)[0]
    return header_end, header_end + 8, header_end + 8 + m


# --------------------------------------------------------------------------- round trips


def test_update_round_trip(keys, lora):
    blob = _seal(keys, lora)
    opened = _open(keys, blob)
    assert isinstance(opened, OpenedUpdate)
    assert (opened.branch_id, opened.run_id, opened.server_round) == ("bank-a", RUN, ROUND)
    assert opened.nbytes == len(blob)
    assert set(opened.arrays) == set(lora)
    for name, arr in lora.items():
        assert opened.arrays[name].dtype == np.float32
        np.testing.assert_array_equal(opened.arrays[name], arr)


def test_layout_matches_docstring(keys, lora):
    blob = _seal(keys, lora, branch="bank-b")
    assert blob[:4] == b"FBU\x01"
    assert struct.unpack_from(">QIH", blob, 4) == (RUN, ROUND, len("bank-b"))
    assert blob[18:24] == b"bank-b"
    _, ct_start, sig_start = _offsets(blob)
    assert len(blob) == sig_start + 64
    # AES-GCM adds exactly a 16-byte tag to the safetensors plaintext.
    assert sig_start - ct_start == len(serialize_arrays(lora)) + 16


def test_various_dtypes_and_non_contiguous(keys):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    arrays = {
        "t": base.T,  # not C-contiguous
        "f16": np.ones((3,), np.float16),
        "i64": np.array([-1, 2**40], np.int64),
        "flag": np.array([True, False]),
        "scalar": np.array(1.5, np.float32),
    }
    opened = _open(keys, _seal(keys, arrays))
    for name, arr in arrays.items():
        assert opened.arrays[name].dtype == arr.dtype
        np.testing.assert_array_equal(opened.arrays[name], arr)


def test_empty_dict_round_trip(keys):
    assert _open(keys, _seal(keys, {})).arrays == {}


def test_each_seal_is_fresh(keys, lora):
    a, b = _seal(keys, lora), _seal(keys, lora)
    header_end, _, _ = _offsets(a)
    assert a[24 : header_end] != b[24 : header_end]  # new ephemeral key and nonce
    assert a != b


def test_no_plaintext_in_blob(keys, lora):
    blob = _seal(keys, lora)
    raw = next(iter(lora.values())).tobytes()
    for start in (0, 100, len(raw) - 32):
        assert raw[start : start + 32] not in blob
    # Tensor names and the safetensors JSON header are encrypted too (patterns long enough not to occur by chance).
    assert b"lora_A" not in blob and b'"dtype"' not in blob and b"data_offsets" not in blob


def test_global_round_trip(keys, lora):
    blob = sign_global(lora, run_id=RUN, server_round=ROUND, server_signing_key=keys["server_sign"])
    assert blob[:4] == b"FBG\x01"
    out = open_global(blob, expected_run_id=RUN, expected_round=ROUND, server_verify_key=keys["server_sign"].public_key())
    assert set(out) == set(lora)
    for name, arr in lora.items():
        np.testing.assert_array_equal(out[name], arr)


# --------------------------------------------------------------------------- update rejections


def test_flipped_ciphertext_byte_is_tampered(keys, lora):
    blob = _seal(keys, lora)
    _, ct_start, sig_start = _offsets(blob)
    for index in (ct_start, (ct_start + sig_start) // 2, sig_start - 1):  # first, middle, tag
        assert _reason(_open, keys, _flip(blob, index)) == "tampered"


def test_flipped_header_byte_is_tampered(keys, lora):
    blob = _seal(keys, lora)
    header_end, _, _ = _offsets(blob)
    for index in (5, 13, 30, header_end - 1):  # run id, round, ephemeral key, nonce
        assert _reason(_open, keys, _flip(blob, index)) == "tampered"


def test_rewritten_round_is_tampered_not_accepted(keys, lora):
    blob = bytearray(_seal(keys, lora, rnd=ROUND - 1))
    struct.pack_into(">I", blob, 12, ROUND)  # attacker relabels an old update
    assert _reason(_open, keys, bytes(blob)) == "tampered"


def test_signed_by_other_key_is_forged(keys, lora):
    impostor = Ed25519PrivateKey.generate()
    assert _reason(_open, keys, _seal(keys, lora, branch="bank-a", signer=impostor)) == "forged"
    # Another registered branch's key does not pass as bank-a's either.
    assert _reason(_open, keys, _seal(keys, lora, branch="bank-a", signer=keys["branches"]["bank-b"])) == "forged"


def test_flipped_signature_is_forged(keys, lora):
    blob = _seal(keys, lora)
    assert _reason(_open, keys, _flip(blob, len(blob) - 1)) == "forged"


def test_unknown_branch(keys, lora):
    blob = _seal(keys, lora, branch="bank-z", signer=Ed25519PrivateKey.generate())
    assert _reason(_open, keys, blob) == "unknown-branch"


@pytest.mark.parametrize(("run", "rnd"), [(RUN, ROUND + 1), (RUN, ROUND - 1), (RUN + 1, ROUND)])
def test_other_run_or_round_is_replayed(keys, lora, run, rnd):
    assert _reason(_open, keys, _seal(keys, lora), run=run, rnd=rnd) == "replayed"


def test_sealed_for_other_server_is_tampered(keys, lora):
    other = X25519PrivateKey.generate()
    blob = _seal(keys, lora, server_pub=other.public_key())
    assert _reason(_open, keys, blob) == "tampered"
    assert _open(keys, blob, server=other).branch_id == "bank-a"


def test_oversized_is_refused_before_parsing(keys, lora):
    blob = _seal(keys, lora)
    assert _reason(_open, keys, blob, max_bytes=len(blob) - 1) == "oversized"
    assert _open(keys, blob, max_bytes=len(blob)).nbytes == len(blob)
    assert _reason(_open, keys, b"\x00" * (DEFAULT_MAX_BYTES + 1)) == "oversized"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"",
        lambda b: b"garbage" * 20,
        lambda b: b"FBU\x02" + b[4:],  # unknown version
        lambda b: b[:-1],  # truncated signature
        lambda b: b + b"\x00",  # trailing byte
        lambda b: b[:16] + b"\x00\x00" + b[18:],  # empty branch id
        lambda b: b[:16] + b"\xff\xff" + b[18:],  # branch id longer than the blob
    ],
)
def test_malformed_layout(keys, lora, mangle):
    assert _reason(_open, keys, mangle(_seal(keys, lora))) == "malformed"


def test_non_utf8_branch_id_is_malformed(keys, lora):
    blob = _seal(keys, lora, branch="bank-a")
    assert _reason(_open, keys, blob[:18] + b"\xff" + blob[19:]) == "malformed"


def test_not_bytes_is_malformed(keys):
    assert _reason(_open, keys, "not bytes") == "malformed"


def test_global_blob_is_not_an_update(keys, lora):
    blob = sign_global(lora, run_id=RUN, server_round=ROUND, server_signing_key=keys["server_sign"])
    assert _reason(_open, keys, blob) == "malformed"


def test_authentic_but_invalid_payload_is_malformed(keys, monkeypatch):
    monkeypatch.setattr(envelope, "serialize_arrays", lambda arrays: b"definitely not safetensors")
    blob = _seal(keys, {})
    monkeypatch.undo()
    assert _reason(_open, keys, blob) == "malformed"


def test_error_is_a_fedbank_error(keys, lora):
    with pytest.raises(FedbankError) as info:
        _open(keys, _seal(keys, lora), rnd=ROUND + 1)
    assert info.value.reason == "replayed" and "replayed" in str(info.value)


def test_bytearray_and_memoryview_accepted(keys, lora):
    blob = _seal(keys, lora)
    assert _open(keys, bytearray(blob)).branch_id == "bank-a"
    assert _open(keys, memoryview(blob)).branch_id == "bank-a"


# --------------------------------------------------------------------------- seal-side validation


@pytest.mark.parametrize(
    "kw",
    [{"run": -1}, {"run": 2**64}, {"rnd": -1}, {"rnd": 2**32}, {"branch": ""}, {"branch": "x" * 256}],
)
def test_seal_rejects_bad_ids(keys, lora, kw):
    signer = Ed25519PrivateKey.generate()
    with pytest.raises(ValueError):
        _seal(keys, lora, signer=signer, **kw)


def test_seal_rejects_unserializable(keys):
    with pytest.raises(ValueError):
        _seal(keys, {"obj": np.array([object()])})
    with pytest.raises(ValueError):
        _seal(keys, {1: np.zeros(2)})


# --------------------------------------------------------------------------- global rejections


def _open_global(keys, blob, *, run=RUN, rnd=ROUND, verify=None, **kw):
    return open_global(
        blob,
        expected_run_id=run,
        expected_round=rnd,
        server_verify_key=verify or keys["server_sign"].public_key(),
        **kw,
    )


def test_global_rejections(keys, lora):
    good = sign_global(lora, run_id=RUN, server_round=ROUND, server_signing_key=keys["server_sign"])
    other = sign_global(lora, run_id=RUN, server_round=ROUND, server_signing_key=Ed25519PrivateKey.generate())
    assert _reason(_open_global, keys, other) == "forged"
    assert _reason(_open_global, keys, _flip(good, 100)) == "forged"  # payload byte
    assert _reason(_open_global, keys, _flip(good, 13)) == "forged"  # round field
    assert _reason(_open_global, keys, good, rnd=ROUND + 1) == "replayed"
    assert _reason(_open_global, keys, good, run=RUN + 1) == "replayed"
    assert _reason(_open_global, keys, good, max_bytes=len(good) - 1) == "oversized"
    assert _reason(_open_global, keys, good[:-1]) == "malformed"
    assert _reason(_open_global, keys, b"FBG\x01") == "malformed"
    assert _reason(_open_global, keys, _seal(keys, lora)) == "malformed"


def test_global_authentic_but_invalid_payload_is_malformed(keys, monkeypatch):
    monkeypatch.setattr(global_envelope, "serialize_arrays", lambda arrays: b"\xff" * 40)
    blob = sign_global({}, run_id=RUN, server_round=ROUND, server_signing_key=keys["server_sign"])
    monkeypatch.undo()
    assert _reason(_open_global, keys, blob) == "malformed"


def test_deserialize_arrays_limits():
    data = serialize_arrays({"a": np.zeros(100, np.float32)})
    assert deserialize_arrays(data)["a"].shape == (100,)
    assert _reason(deserialize_arrays, data, max_bytes=10) == "oversized"
    assert _reason(deserialize_arrays, data[:-8]) == "malformed"
