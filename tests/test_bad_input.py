"""Bad input: every case exits non-zero with one line naming the problem and the fix.

Each case runs the real command line (``python -m simulations.cli.main``) on tiny
files and checks: exit code != 0, stderr is exactly one line starting with
``fedbank: error:`` that names the key / column / file / label, no traceback
anywhere, nothing on stdout, and (for ``simulate``) no output directory left
behind: the preflight fails before any Flower process starts.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import DataError, FedbankError, KeyFileError, fedbank_message

ROOT = Path(__file__).resolve().parents[1]


def fedbank(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "simulations.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed with exactly one ``fedbank: error:`` line holding every fragment."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("fedbank: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def simulate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``fedbank simulate`` into a new directory that a refused run must not create."""
    out = tmp_path / "run"
    proc = fedbank("simulate", "--branches", "2", "--rounds", "1", "--out", str(out), *args)
    assert not out.exists(), "a refused run left an output directory behind"
    return proc


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def labelled(n: int, labels: str = "ab") -> list[tuple[str, str]]:
    return [(f"customer message number {i}", labels[i % len(labels)]) for i in range(n)]


# --------------------------------------------------------------------------- config keys and values


@pytest.mark.parametrize("args, fragments", [
    (["--set", "model.lora.rnk=4"], ["unknown config key 'model.lora.rnk'", "did you mean 'model.lora.rank'"]),
    (["--set", "train.batch-size=sixteen"], ["config key 'train.batch-size' must be int", "'sixteen'"]),
    (["--set", "model.lora.rank=0"], ["config key 'model.lora.rank' is 0", "must be an integer >= 1"]),
    (["--epsilon", "-1"], ["config key 'dp.target-epsilon' is -1.0", "must be a number > 0"]),
    (["--set", "model.head-init=label-names"],
     ["model.head-init = label-names needs model.pooling = mean", "'tiny-bert' resolves to 'head'"]),
    (["--task", "chat", "--set", "model.head-init=label-names"], ["task 'chat' has none", "model.head-init = random"]),
], ids=["unknown-key", "mistyped-value", "rank-0", "negative-epsilon", "head-init-without-mean", "head-init-chat"])
def test_bad_config(tmp_path, args, fragments):
    assert_one_line_error(simulate(tmp_path, *args), *fragments)


# --------------------------------------------------------------------------- data


def test_malformed_csv(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nhello,a\nthree,fields,here\n", encoding="utf-8")
    assert_one_line_error(simulate(tmp_path, "--data", str(data)), f"{data}:3", "malformed CSV row", "check quoting")


def test_missing_text_column(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["message", "label"], labelled(20))
    assert_one_line_error(simulate(tmp_path, "--data", str(data)), str(data), "no column 'text'",
                          "columns: label, message", "--text-column")


def test_missing_label_column(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], labelled(20))
    assert_one_line_error(simulate(tmp_path, "--data", str(data), "--label-column", "category"),
                          str(data), "no column 'category'", "--label-column")


def test_file_with_no_rows(tmp_path):
    data = write_csv(tmp_path / "empty.csv", ["text", "label"], [])
    assert_one_line_error(simulate(tmp_path, "--data", str(data)), str(data), "has no rows")


def test_branch_with_no_rows(tmp_path):
    data = write_csv(tmp_path / "small.csv", ["text", "label"], labelled(10))
    proc = simulate(tmp_path, "--data", str(data), "--branches", "8")
    assert_one_line_error(proc, "8 branches", "a branch would be empty", "use fewer branches")


def test_label_at_evaluation_that_training_never_saw(tmp_path):
    from common.data.split import train_test_split

    n, seed, test_fraction = 40, 42, 0.2  # the run's defaults decide which rows are held out
    _, held_out = train_test_split(n, test_fraction, seed)
    rows = labelled(n)
    rows[held_out[0]] = ("please close my safe deposit box", "close_box")  # the only row of this label
    data = write_csv(tmp_path / "d.csv", ["text", "label"], rows)
    assert_one_line_error(simulate(tmp_path, "--data", str(data)), "label 'close_box'", "held-out evaluation set",
                          "in no training row", "add training rows with that label")


def test_label_outside_the_configured_label_set(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], labelled(40, "abc"))
    assert_one_line_error(simulate(tmp_path, "--data", str(data), "--set", "data.labels=a,b"),
                          "label 'c'", "not in the run's label set", "add it to data.labels")


@pytest.mark.parametrize("name, content, fragment", [
    ("d.csv", b"text,label\nhello,\xff\xfe\n", "is not UTF-8 text"),
    ("d.jsonl", b'{"text": "hi", "label": "\xff"}\n', "is not UTF-8 text"),
    ("d.jsonl", b'{"text": "hi", "label": "a"}\n{"text": "hi"\n', "d.jsonl:2: not valid JSON"),
    ("d.jsonl", b'{"text": "hi", "label": "a"}\n[1, 2]\n', "d.jsonl:2: expected a JSON object per line"),
    ("d.csv", b"text,label\nhello,\n", "d.csv:2: empty text or label"),
    ("dir.csv", None, "is a directory"),
])
def test_data_loader_errors_are_one_line(tmp_path, name, content, fragment):
    """More ways a data file can be bad (in-process: the loader every node uses)."""
    from common.data.files import load_table

    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(DataError) as err:
        load_table(path, "text", "label")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_csv_with_a_byte_order_mark_loads(tmp_path):
    from common.data.files import load_table

    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftext,label\nhello,a\n".encode("utf-8"))
    assert load_table(path, "text", "label").labels == ["a"]


# --------------------------------------------------------------------------- key files


@pytest.fixture(scope="module")
def key_template(tmp_path_factory) -> Path:
    from common.keys.provision import init_keys

    root = tmp_path_factory.mktemp("keys") / "keys"
    init_keys(root, 2)
    return root


@pytest.fixture()
def keys(tmp_path, key_template) -> Path:
    root = tmp_path / "keys"
    shutil.copytree(key_template, root)
    return root


def test_missing_key_directory(tmp_path):
    missing = tmp_path / "no-keys"
    assert_one_line_error(simulate(tmp_path, "--set", f"security.keys-dir={missing}"),
                          f"key directory {missing} does not exist", "fedbank keys init")


def test_ed25519_key_where_x25519_is_expected(tmp_path, keys):
    shutil.copy(keys / "server" / "ed25519.key", keys / "server" / "x25519.key")
    assert_one_line_error(simulate(tmp_path, "--set", f"security.keys-dir={keys}"),
                          str(keys / "server" / "x25519.key"), "is not an unencrypted X25519 private key",
                          "found an Ed25519 private key", "point to the right file")


def test_certificate_where_a_key_is_expected(tmp_path, keys):
    shutil.copy(keys / "ca" / "ca.crt", keys / "branches" / "branch-1" / "ed25519.pub")
    assert_one_line_error(simulate(tmp_path, "--set", f"security.keys-dir={keys}"),
                          str(keys / "branches" / "branch-1" / "ed25519.pub"), "is not an unencrypted Ed25519 public key",
                          "found a certificate")


def test_unreadable_key_file_a_directory(tmp_path, keys):
    path = keys / "branches" / "branch-0" / "ed25519.key"
    path.unlink()
    path.mkdir()  # tests run as root, so an unreadable mode would not stop a read: a directory does
    assert_one_line_error(simulate(tmp_path, "--set", f"security.keys-dir={keys}"),
                          str(path), "is a directory, not a key file")


def test_garbage_key_file(tmp_path, keys):
    path = keys / "server" / "ed25519.key"
    path.write_bytes(bytes(range(256)) * 4)
    assert_one_line_error(simulate(tmp_path, "--set", f"security.keys-dir={keys}"),
                          str(path), "is not an unencrypted Ed25519 private key", "not PEM")


def test_key_directory_without_a_simulated_branch(tmp_path, keys):
    proc = fedbank("simulate", "--branches", "3", "--rounds", "1", "--out", str(tmp_path / "run"),
                   "--set", f"security.keys-dir={keys}")
    assert_one_line_error(proc, "branch 'branch-2' has no keys", "fedbank keys init")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case", ["missing", "directory", "garbage", "empty", "ed25519-as-x25519",
                                  "certificate-as-key", "public-as-private", "openssh-as-pem"])
def test_key_loaders_give_one_line_key_file_errors(tmp_path, key_template, case):
    """The loaders themselves (used by every party of a deployment), in-process."""
    from common.keys.layout import load_ed25519_private, load_x25519_private

    k = key_template
    path = {
        "missing": tmp_path / "absent.key",
        "directory": tmp_path,
        "garbage": tmp_path / "garbage.key",
        "empty": tmp_path / "empty.key",
        "ed25519-as-x25519": k / "server" / "ed25519.key",
        "certificate-as-key": k / "superlink" / "server.crt",
        "public-as-private": k / "server" / "x25519.pub",
        "openssh-as-pem": k / "branches" / "branch-0" / "supernode_auth.key",
    }[case]
    (tmp_path / "garbage.key").write_bytes(os.urandom(300))
    (tmp_path / "empty.key").write_bytes(b"")
    loader = load_ed25519_private if case == "openssh-as-pem" else load_x25519_private
    with pytest.raises(KeyFileError) as err:
        loader(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and ": " in message
    expected = {"missing": "does not exist", "directory": "is a directory", "garbage": "not PEM",
                "empty": "an empty file", "ed25519-as-x25519": "found an Ed25519 private key",
                "certificate-as-key": "found a certificate", "public-as-private": "found a public key",
                "openssh-as-pem": "found an OpenSSH private key"}[case]
    assert expected in message


# --------------------------------------------------------------------------- base model


def test_base_model_path_that_does_not_exist(tmp_path):
    assert_one_line_error(simulate(tmp_path, "--set", "model.name=/nonexistent/path"),
                          "model.name path '/nonexistent/path' does not exist", "save_pretrained")


def test_base_model_path_that_is_not_a_model(tmp_path):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    assert_one_line_error(simulate(tmp_path, "--set", f"model.name={not_a_model}"),
                          f"model.name path '{not_a_model}' has no config.json", "save_pretrained")


def test_lora_target_modules_the_model_does_not_have(tmp_path):
    assert_one_line_error(simulate(tmp_path, "--set", "model.lora.target-modules=qkv_proj"),
                          "model.lora.target-modules 'qkv_proj'", "set model.lora.target-modules to module names")


# --------------------------------------------------------------------------- earlier outputs


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>", p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def test_failing_commands_leave_earlier_outputs_intact(tmp_path):
    previous = tmp_path / "previous"
    (previous / "adapter").mkdir(parents=True)
    (previous / "ledger.jsonl").write_text('{"round": 1, "branch": "branch-0", "hash": "ab"}\n')
    (previous / "metrics.json").write_text('{"rounds": [{"round": 1, "accuracy": 0.5}]}\n')
    (previous / "flower.log").write_text("INFO: run 1 finished\n")
    (previous / "adapter" / "adapter_model.safetensors").write_bytes(b"\x00weights")
    before = _snapshot(previous)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("text,label\nhello,a,extra\n", encoding="utf-8")

    # a bad key, then a valid command, against the existing run directory
    assert_one_line_error(fedbank("simulate", "--out", str(previous), "--set", "dp.epsilon=3"), "unknown config key 'dp.epsilon'")
    assert_one_line_error(fedbank("simulate", "--out", str(previous), "--rounds", "1"),
                          f"output directory {previous} already holds a run", "ledger.jsonl", "choose a new --out")
    # a bad data file, into a sibling directory
    sibling = tmp_path / "sibling"
    assert_one_line_error(fedbank("simulate", "--out", str(sibling), "--data", str(bad_csv)), "malformed CSV row")
    assert not sibling.exists()
    assert _snapshot(previous) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "previous"]


# --------------------------------------------------------------------------- errors raised inside a run


def test_error_messages_are_always_one_line():
    err = DataError("/data/x.csv:3: cell 'a\nb'\r\n  is malformed")
    assert str(err) == "/data/x.csv:3: cell 'a b' is malformed"
    assert isinstance(err, FedbankError)


def test_fedbank_error_is_found_in_a_failed_runs_log(tmp_path):
    """What a ServerApp or ClientApp raised is recoverable from Flower's log, as one line."""
    from simulations.local.preflight import explain_failure, fedbank_error_in_log
    from common.errors import RunFailed

    server_log = tmp_path / "server.log"
    server_log.write_text(
        "\x1b[91mERROR \x1b[0m:     Simulation raised an exception\nTraceback (most recent call last):\n"
        '  File "server/evaluation/holdout.py", line 33, in tokenize_corpus\n'
        "common.errors.DataError: label 'z' is in the held-out evaluation set (1 row(s)) but in no training row: add training rows\n"
        "\x1b[91mERROR \x1b[0m:     Exit Code: 700\n", encoding="utf-8")
    client_log = tmp_path / "client.log"
    client_log.write_text(
        "ERROR:An exception was raised when processing a message by RayBackend\n"
        "Exception ClientAppException occurred. Message: /data/branch.csv:3: malformed CSV row (expected 2 fields)\n",
        encoding="utf-8")
    assert fedbank_error_in_log(server_log).startswith("label 'z' is in the held-out evaluation set")
    assert fedbank_error_in_log(client_log) == "/data/branch.csv:3: malformed CSV row (expected 2 fields)"
    assert fedbank_error_in_log(tmp_path / "absent.log") is None
    reply_reason = ("<class 'ray.exceptions.RayTaskError(ClientAppException)'>:<'\x1b[36mray::ClientAppActor.run()\x1b[39m\n"
                    '  File "client/branch_data.py", line 73, in prepare_branch\n'
                    "common.errors.DataError: /data/branch.csv:3: malformed CSV row (expected 2 fields)\n\n"
                    "The above exception was the direct cause of the following exception:\n'>")
    assert fedbank_message(reply_reason) == "/data/branch.csv:3: malformed CSV row (expected 2 fields)"
    assert fedbank_message("ValueError: not ours") is None
    explained = explain_failure(RunFailed("run 7 ended with status finished:failed; see x"), client_log)
    assert isinstance(explained, RunFailed) and str(explained).startswith("/data/branch.csv:3: malformed CSV row")
