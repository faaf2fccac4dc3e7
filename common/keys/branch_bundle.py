"""A branch's public-key bundle: what a branch hands HQ, so that its private keys never leave the branch.

``fedbank keys branch-init`` writes the branch's two key pairs and, beside
them, ``<out>/<branch-id>.pub.json``::

    {"format": "fedbank-branch-keys", "version": 1, "branch_id": "branch-2",
     "supernode_auth_pub": "ecdsa-sha2-nistp384 AAAA...",  OpenSSH, as `flwr supernode register` reads it
     "supernode_auth_fingerprint": "SHA256:...",            as `ssh-keygen -lf supernode_auth.pub` prints it
     "ed25519_pub": "-----BEGIN PUBLIC KEY-----...",        PEM, the branch's claim and update signing key
     "ed25519_fingerprint": "SHA256:...",                   as `fedbank keys init` prints key fingerprints
     "created": "2025-01-01T00:00:00Z"}

HQ's ``fedbank keys init --import-branch`` reads it with :func:`read_bundles`:
the schema, both keys (right kind, public only), the fingerprints against the
keys, the branch id against HQ's branches and against the other bundles.  Each
failure is one line naming the file and the fix, before anything is written.
The fingerprints are what the branch reads to HQ over another channel: the
file itself proves nothing about who sent it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import ConfigError, KeyFileError
from common.keys.fingerprint import key_fingerprint, ssh_key_fingerprint
from common.keys.layout import check_branch_ids

BUNDLE_FORMAT = "fedbank-branch-keys"
BUNDLE_VERSION = 1
BUNDLE_SUFFIX = ".pub.json"
MAX_BUNDLE_BYTES = 64 * 1024
FIELDS = ("format", "version", "branch_id", "supernode_auth_pub", "supernode_auth_fingerprint",
          "ed25519_pub", "ed25519_fingerprint", "created")
ASK_AGAIN = "ask the branch for the file `fedbank keys branch-init` wrote and import that"


@dataclass(frozen=True)
class BranchBundle:
    """One branch's public keys, as its bundle carries them.

    ``supernode_auth_pub``: the OpenSSH public-key line (with a newline), the
    bytes of ``supernode_auth.pub``; ``ed25519_pub``: the PEM of
    ``ed25519.pub``; ``source``: the file it was read from, if any.
    """

    branch_id: str
    supernode_auth_pub: bytes
    ed25519_pub: bytes
    created: str
    source: Path | None = None

    @property
    def fingerprints(self) -> dict[str, str]:
        """``supernode_auth`` and ``ed25519`` fingerprints of the two public keys."""
        ed = serialization.load_pem_public_key(self.ed25519_pub)
        if not isinstance(ed, Ed25519PublicKey):  # made by init_branch_keys or checked by read_bundle: never
            raise KeyFileError(f"the bundle of {self.branch_id} holds no Ed25519 signing key: {ASK_AGAIN}")
        return {"supernode_auth": ssh_key_fingerprint(self.supernode_auth_pub), "ed25519": key_fingerprint(ed)}

    def to_json(self) -> bytes:
        """The bundle file's bytes."""
        prints = self.fingerprints
        data = {
            "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "branch_id": self.branch_id,
            "supernode_auth_pub": self.supernode_auth_pub.decode("ascii").strip(),
            "supernode_auth_fingerprint": prints["supernode_auth"],
            "ed25519_pub": self.ed25519_pub.decode("ascii"), "ed25519_fingerprint": prints["ed25519"],
            "created": self.created,
        }  # fmt: skip
        return (json.dumps(data, indent=2) + "\n").encode("ascii")


def bundle_path(out_dir: str | os.PathLike[str], branch_id: str) -> Path:
    """Where ``fedbank keys branch-init`` writes the bundle of ``branch_id``."""
    return Path(out_dir) / f"{branch_id}{BUNDLE_SUFFIX}"


def _fail(path: Path, problem: str, fix: str = ASK_AGAIN) -> KeyFileError:
    return KeyFileError(f"branch key bundle {path} {problem}: {fix}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
    except FileNotFoundError:
        raise _fail(path, "does not exist", "give --import-branch the path of a branch's *.pub.json file") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})", "check the path and its permissions") from None
    if len(data) > MAX_BUNDLE_BYTES:
        raise _fail(path, f"is larger than {MAX_BUNDLE_BYTES // 1024} KiB, so it is not a bundle")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise _fail(path, "is not JSON") from None
    if not isinstance(value, dict) or value.get("format") != BUNDLE_FORMAT:
        raise _fail(path, f"is not a fedbank branch key bundle (no \"format\": \"{BUNDLE_FORMAT}\")")
    if value.get("version") != BUNDLE_VERSION:
        raise _fail(path, f"has version {value.get('version')!r}, not {BUNDLE_VERSION}",
                    "make it with this fedbank's `fedbank keys branch-init`")
    unknown, missing = sorted(set(value) - set(FIELDS)), [f for f in FIELDS if f not in value]
    if unknown or missing:
        what = f"has unknown field {unknown[0]!r}" if unknown else f"has no {missing[0]!r}"
        raise _fail(path, what)
    for field in FIELDS[2:]:
        if not isinstance(value[field], str) or len(value[field]) > 4096:
            raise _fail(path, f"has a {field!r} that is not a short string")
    return value


def _ed25519_pem(path: Path, text: str) -> bytes:
    if "PRIVATE KEY" in text:
        raise _fail(path, "holds a private key, and a bundle carries public keys only",
                    "that key is no longer secret: the branch must make new keys with "
                    "`fedbank keys branch-init --force` and send the new bundle")
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise _fail(path, "has an 'ed25519_pub' that is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise _fail(path, f"has an 'ed25519_pub' that is a {type(key).__name__.lstrip('_')}, not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _supernode_auth_line(path: Path, text: str) -> bytes:
    if "PRIVATE KEY" in text:
        raise _fail(path, "holds a private key, and a bundle carries public keys only",
                    "that key is no longer secret: the branch must make new keys with "
                    "`fedbank keys branch-init --force` and send the new bundle")
    try:
        key = serialization.load_ssh_public_key(text.strip().encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise _fail(path, "has a 'supernode_auth_pub' that is not an OpenSSH public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise _fail(path, "has a 'supernode_auth_pub' that is not an ECDSA P-384 key (ecdsa-sha2-nistp384)")
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n"


def read_bundle(path: str | os.PathLike[str]) -> BranchBundle:
    """Read and check one bundle file.

    Raises:
        KeyFileError: one line naming the file, what is wrong and the fix.
    """
    path = Path(path)
    value = _read_json(path)
    try:
        check_branch_ids([value["branch_id"]])
    except ConfigError as exc:
        raise _fail(path, f"names a branch id that cannot be used ({exc})") from None
    bundle = BranchBundle(value["branch_id"], _supernode_auth_line(path, value["supernode_auth_pub"]),
                          _ed25519_pem(path, value["ed25519_pub"]), value["created"], path)
    prints = bundle.fingerprints
    for name in ("supernode_auth", "ed25519"):
        if value[f"{name}_fingerprint"] != prints[name]:
            raise _fail(path, f"has a {name}_fingerprint that does not match its {name}_pub (the file was changed "
                        "after `fedbank keys branch-init` wrote it)")
    return bundle


def bundle_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The bundle files named: each file as given, each directory's ``*.pub.json``."""
    files: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found = sorted(path.glob(f"*{BUNDLE_SUFFIX}"))
            if not found:
                raise KeyFileError(f"directory {path} holds no *{BUNDLE_SUFFIX} branch key bundle: put the files "
                                   "the branches' `fedbank keys branch-init` wrote there, or name each file")
            files += found
        else:
            files.append(path)
    unique: dict[Path, Path] = {}
    for path in files:  # a file named twice (alone and through its directory) counts once
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def read_bundles(paths: Iterable[str | os.PathLike[str]], branch_ids: Sequence[str]) -> dict[str, BranchBundle]:
    """Read every bundle of ``paths`` (files or directories) for HQ's ``branch_ids``; by branch id.

    Raises:
        KeyFileError: a bad bundle, a branch HQ does not have, two bundles for
            one branch or with the same key: one line naming the file(s) and the fix.
    """
    by_id: dict[str, BranchBundle] = {}
    for path in bundle_files(paths):
        bundle = read_bundle(path)
        if bundle.branch_id not in branch_ids:
            known = f"{branch_ids[0]} .. {branch_ids[-1]}" if len(branch_ids) > 2 else ", ".join(branch_ids)
            raise _fail(path, f"is for branch {bundle.branch_id!r}, which is not one of HQ's branches ({known})",
                        "raise --branches to include it, or have the branch run `fedbank keys branch-init` "
                        "with the id HQ gave it")
        if bundle.branch_id in by_id:
            raise _fail(path, f"is for branch {bundle.branch_id!r}, as is {by_id[bundle.branch_id].source}",
                        "import one bundle per branch")
        for other in by_id.values():
            if set(bundle.fingerprints.values()) & set(other.fingerprints.values()):
                raise _fail(path, f"holds a key that {other.source} (branch {other.branch_id}) holds too",
                            "every branch makes its own keys with `fedbank keys branch-init`")
        by_id[bundle.branch_id] = bundle
    return {bid: by_id[bid] for bid in branch_ids if bid in by_id}

