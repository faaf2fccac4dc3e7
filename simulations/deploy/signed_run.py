"""``python -m simulations.deploy.signed_run APP CONNECTION --signing-key KEY [--run-config ...]``: a signed ``flwr run``.

What ``flwr run APP CONNECTION --stream`` does for a local app -- build the
app bundle (FAB) from ``APP``, ``StartRun`` at the SuperLink of the
``flwr`` connection ``CONNECTION``, print ``Successfully started run N``,
stream the run's log -- with one addition: the FAB carries the signature of
the app-signing key (:func:`common.keys.app_signing.sign_fab`), which each
branch's SuperNode verifies against the keys it trusts before it runs the
app.  ``flwr run`` itself cannot attach a signature (it submits
``Fab(hash, bytes, {})``).  :mod:`simulations.deploy.runs` runs this module
as the subprocess whose output it streams.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from common.errors import FedbankError, RunFailed
from common.keys.app_signing import key_id, load_signing_key, sign_fab
from simulations.app_bundle import build_fab
from simulations.flower_cli import RUN_STARTED_TEXT


def submit_signed(app_dir: Path, connection: str, signing_key: Path, run_config: list[str], stream: bool = True) -> int:
    """Build, sign and submit the app; stream its log when ``stream``; the run id.

    Raises:
        KeyFileError: the signing key cannot be used.
        RunFailed: the SuperLink did not start the run.
    """
    from flwr.cli.flower_config import read_superlink_connection
    from flwr.cli.log import start_stream
    from flwr.cli.utils import init_http_client_from_connection
    from flwr.common.config import parse_config_args
    from flwr.common.serde import fab_to_proto, user_config_to_proto
    from flwr.proto.control_pb2 import StartRunRequest  # pylint: disable=E0611
    from flwr.supercore.fab import Fab

    key = load_signing_key(signing_key)
    link = read_superlink_connection(connection)
    fab_bytes = build_fab(app_dir)  # what flwr run would build, without walking a .venv in the checkout
    verifications = sign_fab(fab_bytes, key)
    fab_hash = hashlib.sha256(fab_bytes).hexdigest()
    print(f"app bundle {fab_hash[:12]} ({len(fab_bytes)} bytes) signed by {key_id(key.public_key())}", flush=True)
    client = init_http_client_from_connection(link)
    try:
        request = StartRunRequest(fab=fab_to_proto(Fab(fab_hash, fab_bytes, verifications)),
                                  override_config=user_config_to_proto(parse_config_args(run_config)),
                                  federation=link.federation or "")
        response = client.StartRun(request)
        if not response.HasField("run_id"):
            raise RunFailed("the SuperLink did not start the run")
        print(f"{RUN_STARTED_TEXT} {response.run_id}", flush=True)
        if stream:
            start_stream(response.run_id, client)
        return int(response.run_id)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m simulations.deploy.signed_run", description=__doc__.splitlines()[0])
    parser.add_argument("app", help="the Flower app directory (with pyproject.toml)")
    parser.add_argument("connection", help="the flwr SuperLink connection in $FLWR_HOME/config.toml")
    parser.add_argument("--signing-key", required=True, help="the app-signing private key")
    parser.add_argument("--run-config", action="append", default=[], help="run-config overrides, as for flwr run")
    parser.add_argument("--no-stream", action="store_true", help="return once the run started")
    args = parser.parse_args(argv)
    try:
        submit_signed(Path(args.app), args.connection, Path(args.signing_key), args.run_config, not args.no_stream)
    except FedbankError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
