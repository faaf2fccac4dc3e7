"""Branch keys born at the branch: ``fedbank keys branch-init`` and ``fedbank keys init --import-branch``.

The branch's private keys are written only at the branch (0600), HQ holds only
the public keys of the bundle, a signature made with the branch-born key
verifies with what HQ holds, a bad bundle is one line naming the file, and
nothing is overwritten without ``--force``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from client.channel import BranchChannel
from common.config.run import RunConfig
from common.errors import KeyFileError
from common.keys.branch_bundle import read_bundle
from common.keys.layout import KeyLayout, check_key_dir, load_ed25519_private
from common.wire.envelope import open_update
from common.wire.protocol import claim_bytes, privacy_claim
from server.records.keyring import ServerKeys
from simulations.cli.keys import HQ_PUBLIC_FILES
from simulations.cli.main import build_parser, main


@pytest.fixture(autouse=True)
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _branch_init(tmp_path: Path, k: int | str, out: str | None = None) -> Path:
    out_dir = tmp_path / (out or f"b{k}")
    assert main(["keys", "branch-init", "--id", str(k), "--out", str(out_dir)]) == 0
    return out_dir


def _hq_init(tmp_path: Path, *imports: Path, branches: int = 3, extra: tuple[str, ...] = ()) -> int:
    argv = ["keys", "init", "--branches", str(branches), "--out", str(tmp_path / "hq"), *extra]
    for path in imports:
        argv += ["--import-branch", str(path)]
    return main(argv)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("fedbank: error: ") and "\n" not in err, err
    return err


def test_branch_init_writes_private_keys_0600_and_a_public_bundle(tmp_path, capsys):
    out = _branch_init(tmp_path, 1)
    keys = out / "branches" / "branch-1"
    assert sorted(p.name for p in keys.iterdir()) == ["ed25519.key", "ed25519.pub", "supernode_auth.key", "supernode_auth.pub"]
    assert _mode(keys / "ed25519.key") == 0o600 and _mode(keys / "supernode_auth.key") == 0o600
    assert _mode(keys / "ed25519.pub") == 0o644
    auth = serialization.load_ssh_private_key((keys / "supernode_auth.key").read_bytes(), None)
    assert isinstance(auth, ec.EllipticCurvePrivateKey) and isinstance(auth.curve, ec.SECP384R1)

    bundle_file = out / "branch-1.pub.json"
    text = bundle_file.read_text()
    assert "PRIVATE" not in text
    data = json.loads(text)
    assert data["branch_id"] == "branch-1" and data["ed25519_pub"] == (keys / "ed25519.pub").read_text()
    assert data["supernode_auth_pub"] == (keys / "supernode_auth.pub").read_text().strip()
    printed = capsys.readouterr().out
    assert data["ed25519_fingerprint"] in printed and data["supernode_auth_fingerprint"] in printed
    assert read_bundle(bundle_file).fingerprints == {"supernode_auth": data["supernode_auth_fingerprint"],
                                                     "ed25519": data["ed25519_fingerprint"]}
    if shutil.which("ssh-keygen"):  # the branch can check the SuperNode key's fingerprint with OpenSSH itself
        listed = subprocess.run(["ssh-keygen", "-lf", str(keys / "supernode_auth.pub")], capture_output=True, text=True)
        assert data["supernode_auth_fingerprint"] in listed.stdout


def test_hq_imports_public_keys_only(tmp_path, capsys):
    b1 = _branch_init(tmp_path, 1)
    bundles = tmp_path / "bundles"
    b2 = _branch_init(tmp_path, 2)
    bundles.mkdir()
    shutil.copy(b2 / "branch-2.pub.json", bundles)
    capsys.readouterr()
    assert _hq_init(tmp_path, b1 / "branch-1.pub.json", bundles) == 0  # a file and a directory of bundles
    printed = capsys.readouterr().out
    hq = tmp_path / "hq"
    layout = KeyLayout.from_dir(hq)
    assert layout.imported == ("branch-1", "branch-2")
    assert json.loads((hq / "manifest.json").read_text())["imported"] == ["branch-1", "branch-2"]
    for k, born in ((1, b1), (2, b2)):
        mine, hq_copy = born / "branches" / f"branch-{k}", hq / "branches" / f"branch-{k}"
        assert sorted(p.name for p in hq_copy.iterdir()) == ["ed25519.pub", "supernode_auth.pub"]
        for name in ("ed25519.pub", "supernode_auth.pub"):
            assert (hq_copy / name).read_bytes() == (mine / name).read_bytes()
        assert read_bundle(born / f"branch-{k}.pub.json").fingerprints["ed25519"] in printed
    assert (hq / "branches" / "branch-0" / "ed25519.key").is_file()  # no bundle: the all-in-one generation
    assert "branch-0: private keys generated here at HQ" in printed
    private = {str(p.relative_to(hq)) for p in hq.rglob("*") if p.is_file() and _mode(p) == 0o600}
    # the release approvers' app-signing key is made by `keys init` too (it never goes to a branch)
    assert private == {str(p.relative_to(hq)) for p in layout.private_files()} | {"app-signing/ed25519.key"}
    assert not any("branch-1" in p or "branch-2" in p for p in private)
    with pytest.raises(KeyFileError, match="born at the branch"):
        check_key_dir(hq)  # a simulation needs every branch's keys in one place


def _branch_host(tmp_path: Path, born: Path) -> Path:
    """The branch's key directory once HQ's public files are copied in."""
    for rel in HQ_PUBLIC_FILES:
        (born / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "hq" / rel, born / rel)
    return born


def test_a_branch_born_signature_verifies_at_hq(tmp_path):
    born = _branch_init(tmp_path, 1)
    assert _hq_init(tmp_path, born / "branch-1.pub.json") == 0
    host = _branch_host(tmp_path, born)
    private = sorted(str(p.relative_to(host)) for p in host.rglob("*.key"))
    assert private == ["branches/branch-1/ed25519.key", "branches/branch-1/supernode_auth.key"]

    channel = BranchChannel.load(host, "branch-1", max_bytes=1 << 20)  # what the branch's ClientApp loads
    claim = privacy_claim(RunConfig(), run_id=7, server_round=1, branch_id="branch-1", status="ok", budget_epsilon=8.0,
                          examples=10, steps=2, sample_rate=0.1, noise=1.0, epsilon=0.5, pii_counts={})
    signature = channel.sign(claim_bytes(claim))
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    blob = channel.seal(arrays, run_id=7, server_round=1)

    server = ServerKeys.load(tmp_path / "hq")  # what HQ's ServerApp loads
    server.branch_keys["branch-1"].verify(signature, claim_bytes(claim))
    opened = open_update(blob, expected_run_id=7, expected_round=1, server_private_key=server.decrypt_key,
                         branch_verify_keys=server.branch_keys)
    assert opened.branch_id == "branch-1" and np.array_equal(opened.arrays["w"], arrays["w"])
    with pytest.raises(InvalidSignature):  # another branch's key does not pass for branch-1
        server.branch_keys["branch-0"].verify(signature, claim_bytes(claim))


def test_reimport_with_force_removes_the_hq_made_private_keys(tmp_path):
    assert _hq_init(tmp_path) == 0  # all-in-one first: HQ made branch-1's keys
    hq_made = load_ed25519_private(tmp_path / "hq" / "branches" / "branch-1" / "ed25519.key")
    born = _branch_init(tmp_path, 1)
    assert _hq_init(tmp_path, born / "branch-1.pub.json") == 2  # keys exist: --force needed
    assert _hq_init(tmp_path, born / "branch-1.pub.json", extra=("--force",)) == 0
    assert not (tmp_path / "hq" / "branches" / "branch-1" / "ed25519.key").exists()
    assert not (tmp_path / "hq" / "branches" / "branch-1" / "supernode_auth.key").exists()
    with pytest.raises(InvalidSignature):  # the key HQ once made no longer speaks for branch-1
        ServerKeys.load(tmp_path / "hq").branch_keys["branch-1"].verify(hq_made.sign(b"claim"), b"claim")


def test_branch_init_never_overwrites_without_force(tmp_path, capsys):
    out = _branch_init(tmp_path, 0)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["keys", "branch-init", "--id", "0", "--out", str(out)]) == 2
    assert "--force" in _one_line_error(capsys)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (out / "branches" / "branch-0" / "ed25519.key").unlink()  # a half-written directory is refused too
    assert main(["keys", "branch-init", "--id", "0", "--out", str(out)]) == 2
    assert main(["keys", "branch-init", "--id", "0", "--out", str(out), "--force"]) == 0
    assert (out / "branch-0.pub.json").read_bytes() != before[out / "branch-0.pub.json"]
    assert _mode(out / "branches" / "branch-0" / "ed25519.key") == 0o600


def _edit(path: Path, **changes) -> Path:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def _x25519_pem() -> str:
    key = X25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _p256_line() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


BAD_BUNDLES = {
    "not JSON": (lambda f: (f.write_text("{oops"), f)[1], "is not JSON"),
    "other JSON": (lambda f: (f.write_text('{"format": "fedbank-keys"}'), f)[1], "not a fedbank branch key bundle"),
    "unknown field": (lambda f: _edit(f, extra=1), "unknown field 'extra'"),
    "bad id": (lambda f: _edit(f, branch_id="../hq"), "branch id that cannot be used"),
    "id outside --branches": (lambda f: _edit(f, branch_id="branch-9"), "not one of HQ's branches"),
    "private key": (lambda f: _edit(f, ed25519_pub=(f.parent / "branches/branch-1/ed25519.key").read_text()),
                    "holds a private key"),
    "X25519 not Ed25519": (lambda f: _edit(f, ed25519_pub=_x25519_pem()), "not an Ed25519 key"),
    "P-256 auth key": (lambda f: _edit(f, supernode_auth_pub=_p256_line()), "not an ECDSA P-384 key"),
    "garbled auth key": (lambda f: _edit(f, supernode_auth_pub="ssh-rsa nope"), "not an OpenSSH public key"),
    "fingerprint": (lambda f: _edit(f, ed25519_fingerprint="SHA256:" + "A" * 43), "does not match"),
    "missing file": (lambda f: f.parent / "nope.pub.json", "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_BUNDLES))
def test_a_bad_bundle_is_one_line_naming_the_file(tmp_path, capsys, case):
    born = _branch_init(tmp_path, 1)
    spoil, expected = BAD_BUNDLES[case]
    path = spoil(born / "branch-1.pub.json")
    capsys.readouterr()
    assert _hq_init(tmp_path, path) == 2
    err = _one_line_error(capsys)
    assert str(path) in err and expected in err
    assert not (tmp_path / "hq").exists()  # checked before anything is written


def test_duplicate_bundles_and_shared_keys_are_refused(tmp_path, capsys):
    first, again = _branch_init(tmp_path, 1), _branch_init(tmp_path, 1, out="again")
    capsys.readouterr()
    assert _hq_init(tmp_path, first / "branch-1.pub.json", again / "branch-1.pub.json") == 2
    err = _one_line_error(capsys)
    assert "as is" in err and str(first / "branch-1.pub.json") in err and "one bundle per branch" in err
    copied = _edit(shutil.copy(first / "branch-1.pub.json", tmp_path / "copy.pub.json"), branch_id="branch-2")
    assert _hq_init(tmp_path, first / "branch-1.pub.json", copied) == 2
    assert "holds a key that" in _one_line_error(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _hq_init(tmp_path, empty) == 2
    assert "holds no *.pub.json" in _one_line_error(capsys)
    assert not (tmp_path / "hq").exists()


def test_help_says_the_all_in_one_generation_is_for_local_runs_and_tests():
    keys = build_parser()._subparsers._group_actions[0].choices["keys"]  # argparse has no public walk
    init = keys._subparsers._group_actions[0].choices["init"]
    text = " ".join(init.format_help().split())
    assert "local runs and tests" in text and "--import-branch" in text and "branch-init" in text
