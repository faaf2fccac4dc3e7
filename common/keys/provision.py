"""Provisioning of a deployment's key material: generate and write every key and certificate.

Used by ``fedbank keys init`` and ``fedbank keys branch-init``, by ``fedbank deploy local`` and by the
simulation runner (which creates a simulated federation's keys once);
nothing at run time generates keys.  :func:`init_keys` writes the layout
described in :mod:`common.keys.layout` (private keys mode 0600, never
overwritten without ``force``): an ECDSA P-256 CA and the SuperLink TLS
certificate it signs (SAN = the hosts), the server's X25519 and Ed25519 key
pairs, and per branch an ECDSA P-384 SuperNode authentication key in
OpenSSH formats plus an Ed25519 update-signing key pair, or, for a branch
that made its own keys, only the public keys of its bundle.
:func:`init_branch_keys` is the branch's side (``fedbank keys
branch-init``): its two key pairs, made where they stay, and the bundle of
their public keys for HQ.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.errors import ConfigError, KeyFileError
from common.keys.branch_bundle import BranchBundle, bundle_path
from common.keys.layout import MANIFEST_FORMAT, MANIFEST_VERSION, BranchKeys, KeyLayout, check_branch_ids

CA_DAYS = 3650
CERT_DAYS = 825
_DNS_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def init_keys(
    out_dir: str | os.PathLike[str],
    branches: Sequence[str] | int,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    force: bool = False,
    imported: Mapping[str, BranchBundle] | None = None,
) -> KeyLayout:
    """Create all key material of a deployment under ``out_dir`` (HQ's key directory).

    Args:
        out_dir: Directory to write to (created if missing).
        branches: Branch ids, or a count ``n`` for ``branch-0`` .. ``branch-{n-1}``.
        hosts: Names and IP addresses the SuperLink is reached at; each goes into
            the TLS certificate's subjectAltName.
        force: Replace existing files instead of refusing (and remove an
            imported branch's private keys left from an earlier generation).
        imported: Bundles of branches that made their own keys (by branch id):
            only their public keys are written, and the manifest lists them.
            Every other branch's key pairs are generated here (all-in-one: for
            local runs and tests, where one person holds every branch).

    Returns:
        The layout of the written files.

    Raises:
        ConfigError: A branch id or host is invalid.
        KeyFileError: A file exists and ``force`` is false, a bundle is for an
            unknown branch, or a file cannot be written.
    """
    if isinstance(branches, str):
        raise ConfigError(f"branches must be a list of branch ids or a count, got the string {branches!r}")
    ids = [f"branch-{i}" for i in range(branches)] if isinstance(branches, int) else list(branches)
    imported = dict(imported or {})
    unknown = sorted(set(imported) - set(ids))
    if unknown:
        raise KeyFileError(f"a bundle is for branch {unknown[0]!r}, which is not one of the branches {ids}: name it among the branches")
    layout = KeyLayout(Path(out_dir), tuple(check_branch_ids(ids)), tuple(b for b in ids if b in imported))
    sans = _subject_alt_names(hosts)
    stale = [p for bid in layout.imported for p in (layout.branch(bid).supernode_auth_key, layout.branch(bid).ed25519_key)]
    if not force:
        for path in layout.private_files() + layout.public_files() + stale:
            if path.exists() or path.is_symlink():
                raise KeyFileError(f"{path} already exists: pass --force to overwrite the keys in {layout.root}")

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)
    tls_key = ec.generate_private_key(ec.SECP256R1())
    tls_cert = _server_certificate(tls_key, ca_key, ca_cert, sans, hosts[0])
    pem = serialization.Encoding.PEM
    files: list[tuple[Path, bytes, bool]] = [
        (layout.ca_cert, ca_cert.public_bytes(pem), False),
        (layout.ca_key, _private_pem(ca_key), True),
        (layout.superlink_cert, tls_cert.public_bytes(pem), False),
        (layout.superlink_key, _private_pem(tls_key), True),
        *_pem_pair(layout.server_x25519_key, layout.server_x25519_pub, X25519PrivateKey.generate()),
        *_pem_pair(layout.server_ed25519_key, layout.server_ed25519_pub, Ed25519PrivateKey.generate()),
    ]
    for bid, b in layout.branches.items():
        bundle = imported.get(bid)
        files += _branch_files(b) if bundle is None else [(b.supernode_auth_pub, bundle.supernode_auth_pub, False),
                                                          (b.ed25519_pub, bundle.ed25519_pub, False)]
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "branches": list(layout.branch_ids),
                "hosts": list(hosts), "imported": list(layout.imported)}
    files.append((layout.manifest, (json.dumps(manifest, indent=2) + "\n").encode(), False))

    _make_dirs([layout.root / sub for sub in ("", "ca", "superlink", "server", "branches")]
               + [b.dir for b in layout.branches.values()])
    for path in stale:
        _remove(path)
    for path, data, private in files:
        _write(path, data, private=private, force=force)
    return layout


def init_branch_keys(out_dir: str | os.PathLike[str], branch_id: str, force: bool = False) -> BranchBundle:
    """Make one branch's key pairs at the branch, and the bundle of its public keys for HQ.

    Writes ``out_dir/branches/<branch_id>/{supernode_auth,ed25519}.{key,pub}``
    (the layout a branch host reads; private keys mode 0600) and
    ``out_dir/<branch_id>.pub.json`` (:mod:`common.keys.branch_bundle`).

    Raises:
        ConfigError: The branch id is invalid.
        KeyFileError: A file exists and ``force`` is false, or a file cannot be written.
    """
    check_branch_ids([branch_id])
    keys = BranchKeys(branch_id, Path(out_dir) / "branches" / branch_id)
    target = bundle_path(out_dir, branch_id)
    files = _branch_files(keys)
    paths = [path for path, _data, _private in files] + [target]
    if not force:
        for path in paths:
            if path.exists() or path.is_symlink():
                raise KeyFileError(f"{path} already exists: pass --force to replace {branch_id}'s keys "
                                   "(HQ must then import the new bundle)")
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    public = {path: data for path, data, private in files if not private}
    bundle = BranchBundle(branch_id, public[keys.supernode_auth_pub], public[keys.ed25519_pub], created, target)
    files.append((target, bundle.to_json(), False))
    _make_dirs([Path(out_dir), keys.dir.parent, keys.dir])
    for path, data, private in files:
        _write(path, data, private=private, force=force)
    return bundle


def _branch_files(b: BranchKeys) -> list[tuple[Path, bytes, bool]]:
    """A branch's freshly generated key pairs: (path, bytes, private)."""
    pem = serialization.Encoding.PEM
    auth = ec.generate_private_key(ec.SECP384R1())
    ssh_priv = auth.private_bytes(pem, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    ssh_pub = auth.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return [(b.supernode_auth_key, ssh_priv, True), (b.supernode_auth_pub, ssh_pub + b"\n", False),
            *_pem_pair(b.ed25519_key, b.ed25519_pub, Ed25519PrivateKey.generate())]


def _make_dirs(directories: Iterable[Path]) -> None:
    for directory in directories:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyFileError(f"cannot create {directory}: {exc.strerror or exc}; check permissions") from exc


def _remove(path: Path) -> None:
    """Remove a private key HQ must no longer hold (an imported branch's, from an earlier generation)."""
    try:
        if path.exists() or path.is_symlink():
            path.unlink()
    except OSError as exc:
        raise KeyFileError(f"cannot remove {path}: {exc.strerror or exc}; remove it by hand") from exc


def _subject_alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    if isinstance(hosts, str) or not hosts:
        raise ConfigError("hosts must be a non-empty list of DNS names or IP addresses")
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not (len(host) <= 253 and all(_DNS_LABEL_RE.match(label) for label in host.rstrip(".").split("."))):
            raise ConfigError(f"invalid host {host!r}: give a DNS name or an IP address")
        sans.append(x509.DNSName(host))
    return list(dict.fromkeys(sans))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedbank"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    name = _name("fedbank deployment CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    sans: list[x509.GeneralName],
    common_name: str,
) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name[:64]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_pair(key_path: Path, pub_path: Path, key: X25519PrivateKey | Ed25519PrivateKey) -> Iterator[tuple]:
    yield key_path, _private_pem(key), True
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    yield pub_path, pub, False


def _write(path: Path, data: bytes, *, private: bool, force: bool) -> None:
    """Create ``path`` with its final mode from the start (0600 private, 0644 public)."""
    try:
        if force and (path.exists() or path.is_symlink()):
            path.unlink()  # O_TRUNC would keep the old file's (maybe looser) mode
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists: pass --force to overwrite it") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}; check the directory's permissions") from exc
