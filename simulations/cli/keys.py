"""``fedbank keys``: a deployment's key material, each private key made where it stays.

``fedbank keys branch-init --id K --out DIR`` runs at branch K: its SuperNode
authentication and signing keys, and ``DIR/branch-K.pub.json``, the bundle of
their public keys to hand to HQ (the fingerprints printed, to read to HQ over
another channel).  ``fedbank keys init`` runs at HQ: the CA, the SuperLink TLS
certificate, the server's keys, and per branch either the public keys of its
imported bundle (``--import-branch``) or, for local runs and tests, key pairs
generated at HQ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import ConfigError

HQ_PUBLIC_FILES = ("manifest.json", "ca/ca.crt", "server/x25519.pub", "server/ed25519.pub", "app-signing/ed25519.pub")
#: Always in the SuperLink certificate, beside ``--host``: the Control API is on HQ's loopback.
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def cmd_keys_init(args: argparse.Namespace) -> int:
    """HQ's keys: CA, TLS, server keys; each branch's public keys imported, or its key pairs made here."""
    from common.keys.app_signing import AppSigningKeys, init_app_signing
    from common.keys.branch_bundle import read_bundles
    from common.keys.fingerprint import key_fingerprint
    from common.keys.layout import load_ed25519_public
    from common.keys.provision import init_keys

    if args.branches < 1:
        raise ConfigError(f"--branches {args.branches}: give the number of branches, at least 1")
    ids = [f"branch-{i}" for i in range(args.branches)]
    bundles = read_bundles(args.import_branch or [], ids)  # every bundle checked before anything is written
    hosts = list(dict.fromkeys([*(args.host or []), *LOCAL_HOSTS]))  # the local flwr CLI dials 127.0.0.1
    layout = init_keys(Path(args.out), ids, hosts=hosts, force=args.force, imported=bundles)
    print(f"keys for {len(layout.branch_ids)} branches written to {layout.root} (private keys mode 0600)")
    fingerprint = key_fingerprint(load_ed25519_public(layout.server_ed25519_pub))
    print(f"  server signing key fingerprint: {fingerprint} (give it to the reviewer: ledger verify --server-fingerprint)")
    print(f"  SuperLink TLS: {layout.superlink_cert} (SANs: {', '.join(hosts)}), CA: {layout.ca_cert}")
    signing = AppSigningKeys.in_keys_dir(layout.root)
    if args.force or not signing.private.exists():
        signing = init_app_signing(layout.root, force=args.force)
        print(f"  app-signing key: {signing.private} (hand it to whoever approves releases; branches trust {signing.public})")
    for bid, bundle in bundles.items():
        prints = bundle.fingerprints
        print(f"  {bid}: imported from {bundle.source}, public keys only; check with the branch: "
              f"SuperNode auth {prints['supernode_auth']}, signing {prints['ed25519']}")
    generated = [b for b in layout.branch_ids if b not in layout.imported]
    if generated:
        print(f"  {', '.join(generated)}: private keys generated here at HQ (all-in-one: for local runs and tests; "
              "in a deployment each branch runs `fedbank keys branch-init` and HQ imports its bundle)")
    if layout.imported:
        print(f"  send each branch these public files for its key directory: {' '.join(HQ_PUBLIC_FILES)}")
    return 0


def cmd_keys_branch_init(args: argparse.Namespace) -> int:
    """Branch K's own keys, and the bundle of their public keys for HQ."""
    from common.keys.provision import init_branch_keys
    from simulations.deploy.supernode import branch_id_for

    branch_id = branch_id_for(args.id)
    bundle = init_branch_keys(Path(args.out), branch_id, force=args.force)
    prints = bundle.fingerprints
    print(f"{branch_id}'s private keys written to {Path(args.out) / 'branches' / branch_id} (mode 0600; they never leave this host)")
    print(f"  hand HQ this public-key bundle: {bundle.source}")
    print(f"  and read HQ these fingerprints over another channel (phone, in person), to compare with what "
          f"`fedbank keys init --import-branch` prints:")
    print(f"    SuperNode auth {prints['supernode_auth']}")
    print(f"    signing        {prints['ed25519']}")
    print(f"  then copy HQ's {' '.join(HQ_PUBLIC_FILES)} into {args.out}, and run "
          f"`fedbank deploy branch --id {args.id} --keys {args.out} ...`")
    return 0


def add_app_signing_parser(ksub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``fedbank keys app-signing-init``."""
    sign = ksub.add_parser("app-signing-init", help="create the app-signing key (held by whoever approves releases)")
    sign.add_argument("--out", required=True, help="key directory: writes app-signing/ed25519.key (0600) and .pub")
    sign.add_argument("--force", action="store_true", help="replace an existing app-signing key")
    sign.set_defaults(func=cmd_app_signing_init)


def cmd_app_signing_init(args: argparse.Namespace) -> int:
    """Create ``<out>/app-signing/ed25519.key`` and ``.pub``."""
    from common.keys.app_signing import init_app_signing, key_id, load_public_key

    paths = init_app_signing(Path(args.out), force=args.force)
    print(f"app-signing key {key_id(load_public_key(paths.public))}: private {paths.private} (mode 0600; keep it with "
          f"whoever approves releases), public {paths.public} (give it to every branch)")
    return 0


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``fedbank keys init``, ``fedbank keys branch-init`` and ``fedbank keys app-signing-init``."""
    keys = sub.add_parser("keys", help="deployment key material")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kinit = ksub.add_parser(
        "init", help="at HQ: CA, SuperLink TLS cert, server keys; branch public keys imported or generated here",
        description="Writes HQ's key directory. A branch given with --import-branch made its own keys "
                    "(`fedbank keys branch-init`): only its public keys are written here. Every other branch's "
                    "private keys are generated here at HQ: that all-in-one mode is for local runs and tests, "
                    "where one person holds every branch; in a deployment a branch's signature then does not "
                    "bind the branch.")
    kinit.add_argument("--branches", type=int, required=True, help="number of branches (branch-0 .. branch-N-1)")
    kinit.add_argument("--out", required=True, help="directory for the keys")
    kinit.add_argument("--host", action="append", help="SuperLink host name or IP that branches dial, for the TLS "
                       "certificate (repeatable); 127.0.0.1 and localhost are always added")
    kinit.add_argument("--import-branch", action="append", metavar="FILE|DIR",
                       help="a branch's public-key bundle (branch-K.pub.json from `fedbank keys branch-init`), or a "
                            "directory of them (repeatable); branches without one get keys generated here")
    kinit.add_argument("--force", action="store_true", help="overwrite existing keys (and remove the private keys HQ made "
                       "earlier for a branch now imported)")
    kinit.set_defaults(func=cmd_keys_init)

    add_app_signing_parser(ksub)

    kbranch = ksub.add_parser(
        "branch-init", help="at branch K: its own private keys, and a public-key bundle to hand to HQ",
        description="Makes branch K's SuperNode authentication key (P-384) and signing key (Ed25519) on this host, "
                    "under OUT/branches/<id>/ (the layout `fedbank deploy branch --keys OUT` reads), and writes "
                    "OUT/<id>.pub.json with their public keys for HQ's `fedbank keys init --import-branch`.")
    kbranch.add_argument("--id", required=True, help="branch number K (branch-K) or the branch id HQ gave")
    kbranch.add_argument("--out", required=True, help="the branch's key directory")
    kbranch.add_argument("--force", action="store_true", help="replace this branch's existing keys (HQ must import the new bundle)")
    kbranch.set_defaults(func=cmd_keys_branch_init)
