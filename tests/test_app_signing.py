"""Only approved code runs at a branch: app bundles signed with the app-signing key, verified by Flower's SuperNode.

* unit: :func:`common.keys.app_signing.sign_fab` produces what Flower 1.39's own
  SuperNode check (``_verify_fab``) accepts for a trusted key, and nothing else;
* a real TLS deployment on 127.0.0.1 (:class:`LocalDeployment`, 2 branches):
  an app whose ClientApp reads the branch's data file and Ed25519 private key
  and raises them in an exception, submitted unsigned or signed with another
  key, is refused at the branch (nothing of the branch reaches HQ); the same
  app signed with the trusted key runs, which shows the signature is the gate.
  The signed, unmodified fedbank app runs in ``tests/test_deployment.py``
  (``fedbank deploy local`` signs its app and its branches trust the key).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flwr.supercore.fab import Fab
from flwr.supernode.start_client_internal import _verify_fab  # Flower's own check, the one that decides

from common.errors import ConfigError, KeyFileError
from common.keys.app_signing import (
    AppSigningKeys,
    LICENSE_FIELD,
    init_app_signing,
    key_id,
    load_public_key,
    load_signing_key,
    sign_fab,
    verify_fab,
    write_trusted_entities,
)
from simulations.cli.main import main
from simulations.deploy.orchestration import LocalDeployment


def _flower_verifies(fab: bytes, verifications: dict[str, str], trusted_yaml: Path) -> bool:
    trusted = yaml.safe_load(trusted_yaml.read_text())
    return _verify_fab(Fab("", fab, {**verifications, LICENSE_FIELD: "Valid"}), trusted)


def test_signature_is_what_flowers_supernode_verifies(tmp_path):
    paths = init_app_signing(tmp_path / "keys")
    assert paths == AppSigningKeys.in_keys_dir(tmp_path / "keys")
    assert paths.private.stat().st_mode & 0o777 == 0o600
    key = load_signing_key(paths.private)
    trusted = write_trusted_entities(tmp_path / "trusted.yaml", [paths.public])
    fab = b"PK\x03\x04 an app bundle"
    verifications = sign_fab(fab, key)
    assert list(verifications) == [key_id(load_public_key(paths.public))]
    assert _flower_verifies(fab, verifications, trusted)
    assert verify_fab(fab, verifications, [load_public_key(paths.public)])
    # a changed bundle, another key, no signature: Flower refuses each
    assert not _flower_verifies(fab + b"!", verifications, trusted)
    assert not _flower_verifies(fab, sign_fab(fab, Ed25519PrivateKey.generate()), trusted)
    assert not _flower_verifies(fab, {}, trusted)
    assert not verify_fab(fab + b"!", verifications, [load_public_key(paths.public)])


def test_key_init_refuses_to_overwrite_and_bad_keys_fail_in_one_line(tmp_path, capsys):
    assert main(["keys", "app-signing-init", "--out", str(tmp_path)]) == 0
    assert "app-signing key fpk_" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--force"):
        init_app_signing(tmp_path)
    init_app_signing(tmp_path, force=True)
    with pytest.raises(KeyFileError, match="app-signing-init"):
        write_trusted_entities(tmp_path / "t.yaml", [tmp_path / "missing.pub"])
    with pytest.raises(ConfigError):
        write_trusted_entities(tmp_path / "t.yaml", [])


LEAKY_PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "leaky"
version = "1.0.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "attacker"

[tool.flwr.app.components]
serverapp = "leaky:server"
clientapp = "leaky:client"

[tool.flwr.app.config]
out = ""
"""

LEAKY_APP = '''
"""A modified app: its ClientApp raises the branch's data and private key; its ServerApp writes what came back."""
import json
import time
from pathlib import Path

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

client = ClientApp()
server = ServerApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    cfg = context.node_config
    data = Path(cfg["data-path"]).read_text()
    key = (Path(cfg["keys-dir"]) / "branches" / cfg["branch-id"] / "ed25519.key").read_text()
    raise RuntimeError("LEAK " + data + key)


@server.main()
def main(grid: Grid, context: Context) -> None:
    nodes = []
    for _ in range(60):
        nodes = list(grid.get_node_ids())
        if len(nodes) >= 2:
            break
        time.sleep(1)
    msgs = [Message(RecordDict({"c": ConfigRecord({})}), dst_node_id=n, message_type="train") for n in nodes]
    replies = list(grid.send_and_receive(msgs, timeout=90))
    out = [{"code": r.error.code, "reason": r.error.reason} if r.has_error() else {"content": str(r.content)}
           for r in replies]
    Path(context.run_config["out"]).write_text(json.dumps(out))
'''


@pytest.fixture(scope="module")
def leaky_app(tmp_path_factory) -> Path:
    app = tmp_path_factory.mktemp("leaky")
    (app / "pyproject.toml").write_text(LEAKY_PYPROJECT)
    (app / "leaky.py").write_text(textwrap.dedent(LEAKY_APP))
    return app


def _run(dep: LocalDeployment, app: Path, out: Path, **kwargs) -> list[dict]:
    run = dep.start_run({"out": str(out)}, app_dir=app, **kwargs)
    dep.wait_run(run, timeout=240)
    return json.loads(out.read_text())


def test_only_apps_signed_by_a_trusted_key_run_at_a_branch(tmp_path, leaky_app):
    branches = ["branch-0", "branch-1"]
    with LocalDeployment(tmp_path / "dep", branches) as dep:
        dep.init_keys()
        secrets = []
        for bid in branches:
            dep.data_path(bid).parent.mkdir(parents=True, exist_ok=True)
            dep.data_path(bid).write_text(f"text,label\nSECRET-RECORD-OF-{bid},1\n")
            secrets += [f"SECRET-RECORD-OF-{bid}", (dep.keys_dir / "branches" / bid / "ed25519.key").read_text().strip()]
        other = init_app_signing(tmp_path / "other-keys")
        dep.start_superlink()
        dep.register()
        dep.start_supernodes()
        dep.wait_online()
        for label, kwargs in (("unsigned", {"unsigned": True}), ("other key", {"signing_key": other.private})):
            replies = _run(dep, leaky_app, tmp_path / f"{label}.json", **kwargs)
            text = json.dumps(replies)
            assert len(replies) == 2 and all("code" in r for r in replies), (label, replies)
            assert not any(secret in text for secret in secrets), f"{label}: the branch's data or key reached HQ"
            assert "LEAK" not in text
        for bid in branches:
            log = (dep.log_dir / f"{bid}.log").read_text()
            assert log.count("FAB verification failed") >= 2, log[-2000:]
        # the same code signed by the key the branches trust runs (through the front door, `fedbank deploy
        # run`, which exits 0 only for a completed run): the signature is what decided
        assert main(["deploy", "run", "--keys", str(dep.keys_dir), "--app", str(leaky_app),
                     "--control", f"127.0.0.1:{dep.control_port}", "--set", f"out={tmp_path / 'trusted.json'}",
                     "--state", str(tmp_path / "hq-runs"), "--timeout", "240"]) == 0
        assert "SECRET-RECORD-OF-branch-0" in (tmp_path / "trusted.json").read_text()
