"""A deployment's key directory at run time: its layout, the loaders of its files, their checks.

:func:`common.keys.provision.init_keys` writes every key and certificate a
deployment needs under one directory (private keys mode 0600)::

    <keys>/manifest.json                  {"format": "fedbank-keys", "version": 1, "branches": [...], "hosts": [...],
                                           "imported": [...]}  (branches whose keys were born at the branch)
    <keys>/ca/ca.crt                      CA certificate (ECDSA P-256, PEM): SuperLink --ssl-ca-certfile,
                                          SuperNode --root-certificates, `root-certificates` of the flwr CLI
    <keys>/ca/ca.key                      CA private key (PKCS#8 PEM; keep it offline)
    <keys>/superlink/server.crt           SuperLink TLS certificate signed by the CA, SAN = hosts
    <keys>/superlink/server.key           its private key (PKCS#8 PEM): SuperLink --ssl-keyfile
    <keys>/server/x25519.key|.pub         aggregation server's update-decryption key pair (PKCS#8 / SPKI PEM)
    <keys>/server/ed25519.key|.pub        aggregation server's global-adapter signing key pair (PEM)
    <keys>/branches/<id>/supernode_auth.key   SuperNode authentication key, ECDSA P-384 in OpenSSH
                                              private-key format: flower-supernode --auth-supernode-private-key
    <keys>/branches/<id>/supernode_auth.pub   its OpenSSH public key ("ecdsa-sha2-nistp384 ..."):
                                              flwr supernode register <file> <connection>
    <keys>/branches/<id>/ed25519.key|.pub     branch's update-signing key pair (PEM)

A branch listed under ``imported`` made its own keys (``fedbank keys
branch-init``, :mod:`common.keys.branch_bundle`): HQ's directory holds only
its two public keys, the branch's directory its two private keys.

The formats of the SuperNode keys follow flwr 1.39: ``flower-supernode`` reads
the private key with ``load_ssh_private_key`` and needs a NIST-curve EC key;
``flwr supernode register`` reads the public key with ``load_ssh_public_key``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from common.errors import ConfigError, KeyFileError

__all__ = [
    "BranchKeys",
    "KeyLayout",
    "check_branch_ids",
    "check_key_dir",
    "require_key_files",
    "load_branch_verify_keys",
    "load_certificate",
    "load_ed25519_private",
    "load_ed25519_public",
    "load_x25519_private",
    "load_x25519_public",
]

MANIFEST_FORMAT = "fedbank-keys"
MANIFEST_VERSION = 1
_BRANCH_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_INIT_HINT = "run `fedbank keys init`"


@dataclass(frozen=True)
class BranchKeys:
    """Paths of one branch's key files.

    ``supernode_auth_key`` / ``supernode_auth_pub``: SuperNode authentication
    key pair (OpenSSH formats, ECDSA P-384); ``ed25519_key`` / ``ed25519_pub``:
    the branch's update-signing key pair (PEM).
    """

    branch_id: str
    dir: Path

    supernode_auth_key = property(lambda self: self.dir / "supernode_auth.key")
    supernode_auth_pub = property(lambda self: self.dir / "supernode_auth.pub")
    ed25519_key = property(lambda self: self.dir / "ed25519.key")
    ed25519_pub = property(lambda self: self.dir / "ed25519.pub")


@dataclass(frozen=True)
class KeyLayout:
    """Paths of every file of a key directory (layout in the module docstring)."""

    root: Path
    branch_ids: tuple[str, ...]
    imported: tuple[str, ...] = ()

    manifest = property(lambda self: self.root / "manifest.json")
    ca_cert = property(lambda self: self.root / "ca" / "ca.crt")
    ca_key = property(lambda self: self.root / "ca" / "ca.key")
    superlink_cert = property(lambda self: self.root / "superlink" / "server.crt")
    superlink_key = property(lambda self: self.root / "superlink" / "server.key")
    server_x25519_key = property(lambda self: self.root / "server" / "x25519.key")
    server_x25519_pub = property(lambda self: self.root / "server" / "x25519.pub")
    server_ed25519_key = property(lambda self: self.root / "server" / "ed25519.key")
    server_ed25519_pub = property(lambda self: self.root / "server" / "ed25519.pub")

    def branch(self, branch_id: str) -> BranchKeys:
        """Return the key paths of one branch.

        Raises:
            KeyFileError: The branch is not listed in the manifest.
        """
        if branch_id not in self.branch_ids:
            raise KeyFileError(
                f"branch {branch_id!r} has no keys in {self.root} (known: {', '.join(self.branch_ids)}): "
                f"{_INIT_HINT} with that branch"
            )
        return BranchKeys(branch_id, self.root / "branches" / branch_id)

    @property
    def branches(self) -> dict[str, BranchKeys]:
        """Key paths of every branch, by branch id."""
        return {b: self.branch(b) for b in self.branch_ids}

    def private_files(self) -> list[Path]:
        """Every private-key file this directory holds (mode 0600): none of an imported branch's."""
        files = [self.ca_key, self.superlink_key, self.server_x25519_key, self.server_ed25519_key]
        for bid, b in self.branches.items():
            if bid not in self.imported:
                files += [b.supernode_auth_key, b.ed25519_key]
        return files

    def public_files(self) -> list[Path]:
        """Every non-secret file (certificates, public keys, manifest)."""
        files = [self.manifest, self.ca_cert, self.superlink_cert, self.server_x25519_pub, self.server_ed25519_pub]
        for b in self.branches.values():
            files += [b.supernode_auth_pub, b.ed25519_pub]
        return files

    @classmethod
    def from_dir(cls, keys_dir: str | os.PathLike[str]) -> KeyLayout:
        """Read the layout of an existing key directory from its ``manifest.json``.

        Raises:
            KeyFileError: The manifest is missing, unreadable or invalid.
        """
        root = Path(keys_dir)
        path = root / "manifest.json"
        try:
            data = json.loads(_read(path, "key manifest"))
            if data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
                raise ValueError("unknown format or version")
            ids = tuple(check_branch_ids(data["branches"]))
            imported = data.get("imported", [])
            if not isinstance(imported, list) or not set(imported) <= set(ids):
                raise ValueError("'imported' must list branches of 'branches'")
        except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
            raise KeyFileError(f"{path} is not a valid fedbank key manifest ({exc}): run `fedbank keys init --force`") from exc
        return cls(root, ids, tuple(b for b in ids if b in imported))


def check_branch_ids(ids: Sequence[str]) -> list[str]:
    """The branch ids, checked: at least one, each 1-64 safe characters, no duplicates (ConfigError otherwise)."""
    ids = list(ids)
    if not ids:
        raise ConfigError("no branches given: name at least one branch")
    for bid in ids:
        if not isinstance(bid, str) or not _BRANCH_ID_RE.match(bid):
            raise ConfigError(f"invalid branch id {bid!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if len(set(ids)) != len(ids):
        raise ConfigError(f"duplicate branch ids in {ids}")
    return ids


def require_key_files(paths: Iterable[Path], role: str) -> None:
    """Raise :class:`KeyFileError` naming the first of ``paths`` that is missing, which ``role`` needs."""
    for path in paths:
        if not path.is_file():
            raise KeyFileError(f"{path} is missing: the {role} needs it (copy it from the `fedbank keys init` directory)")


# --------------------------------------------------------------------------- loading


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"{what} {path} does not exist: {_INIT_HINT} or pass the right key directory") from exc
    except IsADirectoryError as exc:
        raise KeyFileError(f"{what} {path} is a directory, not a key file: pass the file path") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror or exc}; check its permissions") from exc


def _load(path: str | os.PathLike[str], kind: type, private: bool, label: str):  # noqa: ANN202
    path = Path(path)
    data = _read(path, f"{label} {'private' if private else 'public'} key")
    what = f"an unencrypted {label} {'private' if private else 'public'} key in PEM format"
    try:
        key = (
            serialization.load_pem_private_key(data, password=None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not {what} (found {_describe(data)}): point to the right file or {_INIT_HINT}") from exc
    if not isinstance(key, kind):
        raise KeyFileError(f"{path} is not {what} (found {_key_kind(key)}): point to the right file")
    return key


_PEM_LABEL_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_PEM_KINDS = {
    b"CERTIFICATE": "a certificate",
    b"TRUSTED CERTIFICATE": "a certificate",
    b"CERTIFICATE REQUEST": "a certificate signing request",
    b"PUBLIC KEY": "a public key",
    b"PRIVATE KEY": "a private key",
    b"ENCRYPTED PRIVATE KEY": "a password-protected private key",
    b"OPENSSH PRIVATE KEY": "an OpenSSH private key",
}


def _describe(data: bytes) -> str:
    """What a file that failed to load looks like, in a few words."""
    if not data.strip():
        return "an empty file"
    match = _PEM_LABEL_RE.search(data[:4096])
    if match is None:
        head = data.lstrip()[:32]
        if head.startswith((b"ssh-", b"ecdsa-sha2-")):
            return "an OpenSSH public key"
        return "bytes that are not PEM text"
    label = match.group(1)
    return _PEM_KINDS.get(label, f"a PEM '{label.decode()}' block")


def _key_kind(key: object) -> str:
    """'an Ed25519 private key', 'an EC (secp256r1) public key', ..."""
    name = type(key).__name__.lstrip("_")
    part = "private" if "Private" in name else "public" if "Public" in name else ""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        algo = f"EC ({key.curve.name})"
    else:
        algo = re.sub(r"(Private|Public)Key$", "", name) or name
    text = f"{algo} {part} key".replace("  ", " ")
    return ("an " if text[0] in "AEIORX" else "a ") + text


def load_certificate(path: str | os.PathLike[str], label: str = "certificate") -> x509.Certificate:
    """Load a PEM X.509 certificate. Raises KeyFileError on any problem."""
    path = Path(path)
    data = _read(path, label)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM {label} (found {_describe(data)}): point to the right file or {_INIT_HINT}") from exc


def load_x25519_private(path: str | os.PathLike[str]) -> X25519PrivateKey:
    """Load an X25519 private key (PKCS#8 PEM). Raises KeyFileError on any problem."""
    return _load(path, X25519PrivateKey, True, "X25519")


def load_x25519_public(path: str | os.PathLike[str]) -> X25519PublicKey:
    """Load an X25519 public key (SubjectPublicKeyInfo PEM). Raises KeyFileError on any problem."""
    return _load(path, X25519PublicKey, False, "X25519")


def load_ed25519_private(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Load an Ed25519 private key (PKCS#8 PEM). Raises KeyFileError on any problem."""
    return _load(path, Ed25519PrivateKey, True, "Ed25519")


def load_ed25519_public(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Load an Ed25519 public key (SubjectPublicKeyInfo PEM). Raises KeyFileError on any problem."""
    return _load(path, Ed25519PublicKey, False, "Ed25519")


def load_branch_verify_keys(keys_dir: str | os.PathLike[str]) -> dict[str, Ed25519PublicKey]:
    """Load every branch's Ed25519 verification key listed in the key manifest.

    Args:
        keys_dir: A key directory written by :func:`~common.keys.provision.init_keys` (only the
            manifest and the ``branches/<id>/ed25519.pub`` files are needed).

    Returns:
        Verification key of each branch, by branch id.

    Raises:
        KeyFileError: The manifest or a public key is missing or invalid.
    """
    layout = KeyLayout.from_dir(keys_dir)
    return {bid: load_ed25519_public(b.ed25519_pub) for bid, b in layout.branches.items()}


def check_key_dir(keys_dir: str | os.PathLike[str], branch_ids: Sequence[str] | None = None) -> KeyLayout:
    """Check a whole key directory the way a simulation will use it.

    Every party's keys are on one machine in a simulation, so this reads the
    manifest, the server's X25519 and Ed25519 key pairs, and the Ed25519 key
    pair of each branch in ``branch_ids`` (default: every branch of the
    manifest), checks each private key matches its public key, and reads the
    certificates and SuperNode keys that are present.

    Raises:
        KeyFileError: one line naming the first missing, unreadable,
            mismatched or wrong-kind file and the fix.
    """
    root = Path(keys_dir)
    if not root.exists():
        raise KeyFileError(f"key directory {root} does not exist: run `fedbank keys init --out {root} --branches N`, or set security.keys-dir to an existing key directory")
    if not root.is_dir():
        raise KeyFileError(f"key directory {root} is a file, not a directory: set security.keys-dir to the directory written by `fedbank keys init`")
    layout = KeyLayout.from_dir(root)
    wanted = list(branch_ids) if branch_ids is not None else list(layout.branch_ids)
    branches = [layout.branch(b) for b in wanted]  # KeyFileError for a branch without keys
    born_elsewhere = [b for b in wanted if b in layout.imported]
    if born_elsewhere:
        raise KeyFileError(f"branch {born_elsewhere[0]}'s private keys were born at the branch ({root} holds only its public "
                           "keys): a simulation needs every branch's keys here, so use a key directory from "
                           "`fedbank keys init` without --import-branch")
    pairs = [
        (layout.server_x25519_key, layout.server_x25519_pub, load_x25519_private, load_x25519_public),
        (layout.server_ed25519_key, layout.server_ed25519_pub, load_ed25519_private, load_ed25519_public),
    ] + [(b.ed25519_key, b.ed25519_pub, load_ed25519_private, load_ed25519_public) for b in branches]
    raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for key_path, pub_path, load_private, load_public in pairs:
        private, public = load_private(key_path), load_public(pub_path)
        if private.public_key().public_bytes(*raw) != public.public_bytes(*raw):
            raise KeyFileError(f"{pub_path} is not the public key of {key_path}: run `fedbank keys init --force` to write a matching pair")
    for path, label in ((layout.ca_cert, "CA certificate"), (layout.superlink_cert, "SuperLink TLS certificate")):
        if path.exists() or path.is_symlink():
            load_certificate(path, label)
    for b in branches:
        for path, loader in ((b.supernode_auth_key, serialization.load_ssh_private_key), (b.supernode_auth_pub, serialization.load_ssh_public_key)):
            if not (path.exists() or path.is_symlink()):
                continue
            data = _read(path, "SuperNode authentication key")
            try:
                key = loader(data, None) if loader is serialization.load_ssh_private_key else loader(data)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise KeyFileError(f"{path} is not an OpenSSH SuperNode authentication key (found {_describe(data)}): point to the right file or {_INIT_HINT}") from exc
            if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
                raise KeyFileError(f"{path} is {_key_kind(key)}, but a SuperNode authentication key must be a NIST-curve EC key: {_INIT_HINT}")
    return layout
