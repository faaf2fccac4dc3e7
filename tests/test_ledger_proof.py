"""A ledger that proves what it says (server/records/ledger_proof.py, `fedbank ledger verify`).

Each reproduction of the issue "A ledger and a report that hold against a
dishonest server or branch" is a test here: a stripped and re-hashed ledger,
a deleted line, an edit of a field a branch does not sign, a replaced key
folder, a malformed signature, lines cut off the end.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.keys.fingerprint import key_fingerprint
from common.wire.canonical import canonical_json
from server.records.ledger import RESERVED_FIELDS, PrivacyLedger, verify_ledger
from server.records.ledger_lines import entry_hash
from server.records.ledger_proof import FAILED, NOT_VERIFIED, VERIFIED, prove_ledger
from simulations.cli.main import main

BRANCHES = ("branch-0", "branch-1")


def claim(rnd: int, branch: str, epsilon: float) -> dict:
    return {"run_id": "7", "round": rnd, "branch": branch, "status": "trained", "epsilon": epsilon, "delta": 1e-5,
            "budget_epsilon": 8.0, "kind": "record-level"}


@pytest.fixture
def signed(tmp_path):
    """A 2-branch x 2-round ledger written the way the server writes it, sealed after each round."""
    server = Ed25519PrivateKey.generate()
    branches = {b: Ed25519PrivateKey.generate() for b in BRANCHES}
    path = tmp_path / "ledger.jsonl"
    ledger = PrivacyLedger(path, signing_key=server, branch_keys={b: k.public_key() for b, k in branches.items()})
    for rnd in (1, 2):
        for b, key in branches.items():
            entry = claim(rnd, b, 1.0 * rnd)
            sig = key.sign(canonical_json(entry))  # the branch signs its claim before the server adds its fields
            ledger.append({**entry, "time": "2025-01-01T00:00:00+00:00", "aggregated": True}, signature=sig)
        ledger.seal_round(rnd)
    return path, server, key_fingerprint(server.public_key())


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rewrite(path, entries, signing_key=None, branch_keys=None) -> None:
    """Re-chain ``entries`` through the real writer (what a dishonest party with the files can do)."""
    path.unlink()
    ledger = PrivacyLedger(path, signing_key=signing_key, branch_keys=branch_keys)
    for e in entries:
        sig = bytes.fromhex(e["signature"]) if "signature" in e else None
        ledger.append({k: v for k, v in e.items() if k not in RESERVED_FIELDS}, signature=sig)


def test_honest_ledger_is_verified_and_says_what_was_proven(signed):
    path, _, fp = signed
    proof = prove_ledger(path, server_fingerprint=fp)
    assert proof.status == VERIFIED and proof.reason == ""
    text = "\n".join(proof.statements)
    assert "lines: 6 of 6 in an intact hash chain" in text
    assert f"server signature over the whole line ({fp}): 6 of 6 lines" in text
    assert "claims signed by: branch-0 x2, branch-1 x2" in text
    assert "signed head: line 6, after round 2; nothing after it" in text


def test_stripped_and_rehashed_ledger_is_never_ok(signed):
    path, _, fp = signed
    forged = [{k: v for k, v in e.items() if k not in ("signature", "server_signature")}
              for e in lines(path) if e.get("kind") != "head"]
    forged[0]["epsilon"] = 0.5
    rewrite(path, forged)
    assert verify_ledger(path).ok  # the chain alone is intact ...
    assert prove_ledger(path).status == NOT_VERIFIED and "not signed" in prove_ledger(path).reason
    assert prove_ledger(path, server_fingerprint=fp).status == FAILED  # ... but proves nothing against the anchor


@pytest.mark.parametrize("edit", [
    lambda es: es.pop(1),  # a branch's line deleted
    lambda es: es[0].update(aggregated=False),
    lambda es: es[0].update(reject_reason="update-norm"),
    lambda es: es[0].update(time="2030-01-01T00:00:00+00:00"),
    lambda es: es.insert(0, es.pop(1)),  # reordered
])
def test_rechained_edit_of_any_field_fails(signed, edit):
    """Even re-chained with a valid hash chain, an edit breaks the server's signature over the whole line."""
    path, _, fp = signed
    entries = lines(path)
    edit(entries)
    rewrite(path, entries)  # without the server's key: no server signature can be made
    proof = prove_ledger(path, server_fingerprint=fp)
    assert proof.status == FAILED and proof.result.bad_line is not None


@pytest.mark.parametrize("field, value", [("aggregated", False), ("reject_reason", "x"), ("time", "2030"),
                                          ("epsilon", 0.5)])
def test_edited_field_keeping_the_server_signature_fails(signed, field, value):
    path, _, fp = signed
    raw = path.read_text().splitlines(keepends=True)
    entry = json.loads(raw[4])  # branch-1's claim of round 2
    entry[field] = value  # the hash is recomputed, the signatures kept
    entry["hash"] = entry_hash(entry)
    raw[4] = canonical_json(entry).decode() + "\n"
    path.write_text("".join(raw))
    proof = prove_ledger(path, server_fingerprint=fp)
    assert proof.status == FAILED and proof.result.bad_line == 5 and "server signature does not verify" in proof.reason


def test_replaced_server_key_is_refused(signed, tmp_path):
    """A dishonest party re-signs everything with its own key: the fingerprint the reviewer holds does not match."""
    path, _, fp = signed
    evil = Ed25519PrivateKey.generate()
    entries = lines(path)
    entries[0]["epsilon"] = 0.5
    rewrite(path, [e for e in entries if e.get("kind") != "head"][:2], signing_key=evil)
    PrivacyLedger(path, signing_key=evil).seal_round(1)
    proof = prove_ledger(path, server_fingerprint=fp)
    assert proof.status == FAILED and "not the trusted" in proof.reason
    pub = tmp_path / "evil.pub"
    from cryptography.hazmat.primitives import serialization
    pub.write_bytes(evil.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    assert prove_ledger(path, server_fingerprint=fp, server_key_file=pub).status == FAILED


@pytest.mark.parametrize("field", ["signature", "server_signature"])
def test_malformed_signature_is_refused_without_any_key(signed, field):
    path, _, fp = signed
    raw = path.read_text().splitlines(keepends=True)
    entry = json.loads(raw[0])
    entry[field] = "00"
    raw[0] = canonical_json(entry).decode() + "\n"
    path.write_text("".join(raw))
    for proof in (prove_ledger(path), prove_ledger(path, server_fingerprint=fp)):
        assert proof.status == FAILED and proof.result.bad_line == 1 and "malformed" in proof.reason


def test_lines_cut_off_the_end(signed):
    path, _, fp = signed
    raw = path.read_text().splitlines(keepends=True)
    path.write_text("".join(raw[:-1]))  # the last head cut: round 2's lines are not sealed
    proof = prove_ledger(path, server_fingerprint=fp)
    assert proof.status == NOT_VERIFIED and "after the last signed head (line 3)" in proof.reason
    path.write_text("".join(raw[:3]))  # cut back to round 1's head: proven, and the proof says up to round 1
    proof = prove_ledger(path, server_fingerprint=fp)
    assert proof.status == VERIFIED and "signed head: line 3, after round 1" in "\n".join(proof.statements)


def test_cli_exit_codes_and_output(signed, tmp_path, capsys):
    path, _, fp = signed
    assert main(["ledger", "verify", str(path), "--server-fingerprint", fp]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and "signed head: line 6, after round 2" in out
    assert main(["ledger", "verify", str(path)]) == 2  # no anchor stated: a keys/ folder is never trusted
    assert "NOT VERIFIED: signed, but no trust anchor stated" in capsys.readouterr().out
    other = key_fingerprint(Ed25519PrivateKey.generate().public_key())
    assert main(["ledger", "verify", str(path), "--server-fingerprint", other]) == 1
    assert capsys.readouterr().out.startswith("FAIL: ")


def test_keys_init_prints_the_server_fingerprint(tmp_path, capsys):
    from common.keys.layout import KeyLayout, load_ed25519_public

    assert main(["keys", "init", "--branches", "2", "--out", str(tmp_path / "keys")]) == 0
    pub = load_ed25519_public(KeyLayout.from_dir(tmp_path / "keys").server_ed25519_pub)
    assert f"server signing key fingerprint: {key_fingerprint(pub)}" in capsys.readouterr().out


def test_resume_checks_the_checkpoint_against_the_signed_head(signed):
    from common.errors import LedgerError
    from server.records.checkpoint import Checkpoint, rewind_ledger

    path, server, _ = signed
    ledger = PrivacyLedger(path, signing_key=server)
    ckpt = Checkpoint(run_id=7, round=2, adapter_file="", ledger_entries=len(ledger), ledger_head=ledger.head)
    ledger.append(claim(3, "branch-0", 3.0))  # a round that did not finish
    assert rewind_ledger(path, ckpt, server.public_key()) == 1
    wrong_round = Checkpoint(run_id=7, round=3, adapter_file="", ledger_entries=ckpt.ledger_entries,
                             ledger_head=ckpt.ledger_head)
    with pytest.raises(LedgerError, match="server-signed head of round 3"):
        rewind_ledger(path, wrong_round, server.public_key())
    with pytest.raises(LedgerError, match="does not match the checkpoint"):
        rewind_ledger(path, ckpt, Ed25519PrivateKey.generate().public_key())
