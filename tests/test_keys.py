"""Tests of common.keys.layout and common.keys.provision: generation, file modes, certificates, loaders, Flower formats."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from common.wire.envelope import open_update, seal_update
from common.errors import ConfigError, KeyFileError
from common.keys.layout import (
    KeyLayout,
    load_branch_verify_keys,
    load_ed25519_private,
    load_ed25519_public,
    load_x25519_private,
    load_x25519_public,
)
from common.keys.provision import init_keys

BRANCHES = ["bank-a", "bank-b", "bank-c"]


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def layout(tmp_path, umask022) -> KeyLayout:
    return init_keys(tmp_path / "keys", BRANCHES)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# --------------------------------------------------------------------------- layout and modes


def test_layout_files_exist(layout, tmp_path):
    root = tmp_path / "keys"
    expected = [
        "manifest.json", "ca/ca.crt", "ca/ca.key", "superlink/server.crt", "superlink/server.key",
        "server/x25519.key", "server/x25519.pub", "server/ed25519.key", "server/ed25519.pub",
    ]  # fmt: skip
    for b in BRANCHES:
        expected += [f"branches/{b}/{f}" for f in ("supernode_auth.key", "supernode_auth.pub", "ed25519.key", "ed25519.pub")]
    for rel in expected:
        assert (root / rel).is_file(), rel
    assert sorted(str(p.relative_to(root)) for p in layout.private_files() + layout.public_files()) == sorted(expected)
    manifest = json.loads(layout.manifest.read_text())
    assert manifest["branches"] == BRANCHES and manifest["hosts"] == ["127.0.0.1", "localhost"]
    assert KeyLayout.from_dir(root) == layout


def test_branch_count(tmp_path):
    layout = init_keys(tmp_path, 2)
    assert layout.branch_ids == ("branch-0", "branch-1")
    assert layout.branch("branch-1").ed25519_pub == tmp_path / "branches" / "branch-1" / "ed25519.pub"
    with pytest.raises(KeyFileError, match="branch-7"):
        layout.branch("branch-7")


def test_private_keys_are_0600(layout):
    for path in layout.private_files():
        assert _mode(path) == 0o600, path
    for path in layout.public_files():
        assert _mode(path) == 0o644, path


def test_private_keys_0600_even_with_open_umask(tmp_path):
    old = os.umask(0)
    try:
        layout = init_keys(tmp_path, ["b1"])
    finally:
        os.umask(old)
    assert all(_mode(p) == 0o600 for p in layout.private_files())
    assert all(_mode(p) == 0o644 for p in layout.public_files())


def test_refuses_to_overwrite(layout, tmp_path):
    before = {p: p.read_bytes() for p in layout.private_files()}
    with pytest.raises(KeyFileError, match="--force") as info:
        init_keys(tmp_path / "keys", BRANCHES)
    assert str(tmp_path / "keys") in str(info.value) and "\n" not in str(info.value)
    assert {p: p.read_bytes() for p in layout.private_files()} == before


def test_refuses_when_any_file_exists_and_writes_nothing(tmp_path):
    root = tmp_path / "keys"
    (root / "server").mkdir(parents=True)
    (root / "server" / "ed25519.pub").write_text("old")
    with pytest.raises(KeyFileError, match="ed25519.pub"):
        init_keys(root, ["b1"])
    assert not (root / "ca").exists() and not (root / "manifest.json").exists()


def test_force_overwrites_with_fresh_keys_and_strict_modes(layout, tmp_path, umask022):
    old_key = layout.server_x25519_key.read_bytes()
    layout.server_x25519_key.chmod(0o644)  # a loosened file must not keep its mode
    new = init_keys(tmp_path / "keys", BRANCHES, force=True)
    assert new.server_x25519_key.read_bytes() != old_key
    assert _mode(new.server_x25519_key) == 0o600


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("branches", [[], ["ok", "ok"], ["../evil"], ["a/b"], [""], ["-lead"], ["x" * 65]])
def test_bad_branch_ids(tmp_path, branches):
    with pytest.raises(ConfigError):
        init_keys(tmp_path, branches)


@pytest.mark.parametrize("hosts", [[], ["bad host"], ["-x.example"], "localhost"])
def test_bad_hosts(tmp_path, hosts):
    with pytest.raises(ConfigError):
        init_keys(tmp_path, ["b1"], hosts=hosts)


# --------------------------------------------------------------------------- certificates


def test_ca_and_sans(tmp_path):
    hosts = ["10.0.0.5", "superlink.bank.internal", "::1", "localhost"]
    layout = init_keys(tmp_path, ["b1"], hosts=hosts)
    ca, leaf = _cert(layout.ca_cert), _cert(layout.superlink_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("::1")}
    assert set(san.get_values_for_type(x509.DNSName)) == {"superlink.bank.internal", "localhost"}
    assert leaf.issuer == ca.subject


def test_default_sans(layout):
    san = _cert(layout.superlink_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]


def test_tls_cert_verifies_against_ca(layout):
    ca, leaf = _cert(layout.ca_cert), _cert(layout.superlink_cert)
    builder = PolicyBuilder().store(Store([ca]))
    for subject in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        chain = builder.build_server_verifier(subject).verify(leaf, [])
        assert chain[-1] == ca
    with pytest.raises(VerificationError):
        builder.build_server_verifier(x509.DNSName("evil.example")).verify(leaf, [])
    other_ca = _cert(init_keys(layout.root.parent / "other", ["b1"]).ca_cert)
    with pytest.raises(VerificationError):
        PolicyBuilder().store(Store([other_ca])).build_server_verifier(x509.DNSName("localhost")).verify(leaf, [])


def test_server_key_matches_cert(layout):
    key = serialization.load_pem_private_key(layout.superlink_key.read_bytes(), None)
    assert key.public_key() == _cert(layout.superlink_cert).public_key()


@pytest.mark.parametrize("server_name", ["localhost", "127.0.0.1"])
def test_tls_handshake(layout, server_name):
    """A real OpenSSL handshake: server uses server.crt/key, client trusts only ca.crt."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(layout.superlink_cert, layout.superlink_key)
    client_ctx = ssl.create_default_context(cafile=str(layout.ca_cert))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve():
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                assert tls.recv(2) == b"ok"
        thread.join(timeout=5)


# --------------------------------------------------------------------------- Flower SuperNode auth format


def test_supernode_auth_key_loads_with_flower(layout):
    from flwr.cli.supernode.register import try_load_public_key
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes, uses_nist_ec_curve
    from flwr.supernode.cli.flower_supernode import _try_setup_client_authentication

    branch = layout.branch("bank-a")
    args = argparse.Namespace(auth_supernode_private_key=str(branch.supernode_auth_key), auth_supernode_public_key=None)
    private, public = _try_setup_client_authentication(args)  # what flower-supernode does
    assert isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP384R1)
    assert uses_nist_ec_curve(public)
    # `flwr supernode register <pub>` sends exactly this: it must be the same key.
    assert try_load_public_key(branch.supernode_auth_pub) == public_key_to_bytes(public)
    assert branch.supernode_auth_pub.read_text().startswith("ecdsa-sha2-nistp384 ")
    assert branch.supernode_auth_key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_supernode_auth_keys_differ_per_branch(layout):
    pubs = {layout.branch(b).supernode_auth_pub.read_text() for b in BRANCHES}
    assert len(pubs) == len(BRANCHES)


# --------------------------------------------------------------------------- loaders


def test_loaders_and_envelope_integration(layout):
    verify = load_branch_verify_keys(layout.root)
    assert sorted(verify) == BRANCHES
    arrays = {"lora_A": np.ones((8, 64), np.float32)}
    blob = seal_update(
        arrays,
        run_id=1,
        server_round=1,
        branch_id="bank-b",
        branch_signing_key=load_ed25519_private(layout.branch("bank-b").ed25519_key),
        server_public_key=load_x25519_public(layout.server_x25519_pub),
    )
    opened = open_update(
        blob,
        expected_run_id=1,
        expected_round=1,
        server_private_key=load_x25519_private(layout.server_x25519_key),
        branch_verify_keys=verify,
    )
    assert opened.branch_id == "bank-b"
    assert load_ed25519_public(layout.server_ed25519_pub) == load_ed25519_private(layout.server_ed25519_key).public_key()


def test_missing_file(layout):
    missing = layout.root / "server" / "nope.key"
    with pytest.raises(KeyFileError) as info:
        load_x25519_private(missing)
    message = str(info.value)
    assert str(missing) in message and "fedbank keys init" in message and "\n" not in message


@pytest.mark.parametrize(
    ("loader", "attr"),
    [
        (load_x25519_private, "server_ed25519_key"),  # Ed25519, not X25519
        (load_ed25519_private, "server_x25519_key"),  # X25519, not Ed25519
        (load_ed25519_private, "server_ed25519_pub"),  # public, not private
        (load_ed25519_public, "server_ed25519_key"),  # private, not public
        (load_x25519_public, "server_ed25519_pub"),
        (load_ed25519_public, "ca_cert"),  # a certificate
        (load_ed25519_private, "superlink_key"),  # an EC key
        (load_ed25519_public, "manifest"),  # not PEM at all
    ],
)
def test_wrong_kind(layout, loader, attr):
    path = getattr(layout, attr)
    with pytest.raises(KeyFileError) as info:
        loader(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_supernode_ssh_key_is_not_an_ed25519_key(layout):
    with pytest.raises(KeyFileError, match="supernode_auth.key"):
        load_ed25519_private(layout.branch("bank-a").supernode_auth_key)


def test_directory_instead_of_file(layout):
    with pytest.raises(KeyFileError, match="directory"):
        load_x25519_public(layout.root / "server")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of mode")
def test_unreadable_file(layout):
    layout.server_x25519_key.chmod(0)
    with pytest.raises(KeyFileError, match="permissions"):
        load_x25519_private(layout.server_x25519_key)


def test_branch_verify_keys_errors(layout, tmp_path):
    with pytest.raises(KeyFileError, match="fedbank keys init"):
        load_branch_verify_keys(tmp_path / "empty")
    layout.branch("bank-c").ed25519_pub.unlink()
    with pytest.raises(KeyFileError, match="bank-c"):
        load_branch_verify_keys(layout.root)
    layout.manifest.write_text("{not json")
    with pytest.raises(KeyFileError, match="manifest"):
        load_branch_verify_keys(layout.root)
    layout.manifest.write_text(json.dumps({"format": "fedbank-keys", "version": 1, "branches": ["../x"]}))
    with pytest.raises(KeyFileError, match="manifest"):
        KeyLayout.from_dir(layout.root)


def test_branches_as_string_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="list of branch ids"):
        init_keys(tmp_path, "bank-a")


def test_keys_init_host_adds_to_the_local_names(tmp_path, capsys):
    """``--host hq.bank.test`` adds a name: 127.0.0.1 and localhost stay, for HQ's own flwr CLI (Control API)."""
    from simulations.cli.main import main

    assert main(["keys", "init", "--branches", "1", "--out", str(tmp_path / "k"), "--host", "hq.bank.test"]) == 0
    san = _cert(tmp_path / "k" / "superlink" / "server.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hq.bank.test", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    manifest = json.loads((tmp_path / "k" / "manifest.json").read_text())
    assert manifest["hosts"] == ["hq.bank.test", "127.0.0.1", "localhost"]
    assert "SANs: hq.bank.test, 127.0.0.1, localhost" in capsys.readouterr().out
