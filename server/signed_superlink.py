"""``python -m server.signed_superlink ARGS``: Flower's ``flower-superlink`` that forwards app signatures.

The deployment's SuperLink (:mod:`simulations.deploy.superlink`) runs this
instead of the ``flower-superlink`` executable: the same program, with the
arguments given, after :func:`server.flower_patches.install_fab_signature_forwarding`,
so that the branches' SuperNodes (started with ``--trusted-entities``)
receive the signatures an uploaded app bundle was submitted with.
"""

from __future__ import annotations

import sys

from server.flower_patches import install_fab_signature_forwarding


def main() -> None:
    """Install the forwarding, then run ``flower-superlink`` with this process's arguments."""
    from flwr.superlink.cli import flower_superlink

    install_fab_signature_forwarding()
    sys.argv[0] = "flower-superlink"
    flower_superlink()


if __name__ == "__main__":
    main()
