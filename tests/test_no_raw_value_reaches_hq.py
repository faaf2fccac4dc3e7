"""Nothing raw reaches headquarters: a whole deployment whose branches hold planted PII in every cell, misconfigured.

Real processes on 127.0.0.1, as ``fedbank deploy local`` runs them (one
SuperLink with TLS and SuperNode authentication, three SuperNodes, signed
app bundles; :class:`simulations.deploy.orchestration.LocalDeployment`), and
three runs on that one deployment.  Before each run the test rewrites each
branch's own ``data.csv``; every cell of those files (text, label, every
other column) holds a made-up name, phone, card and ID number, e-mail and a
random token (:mod:`tests.planted_pii`).  Each branch meets one mistake a
user can make, and each run ends as that mistake predicts -- the branch
fails the round with a public reason naming only columns, counts and types:

* run ``intent`` (HQ's held-out set: the synthetic generator): the branch's
  labels are not the run's (label set mismatch / unknown label); an empty
  file; a file without a header row (its first row of cells read as the header);
* run ``label-is-text`` (``data.label-column = text``): the label column is
  the text column; a duplicated header; a missing text column;
* run ``credit`` (HQ's own clean held-out CSV, ``data.positive-label = bad``):
  a wrong positive label; the wrong task (an intent file under
  ``task = credit``); and a control that trains -- non-numeric values in a
  numeric feature (age) are generalized, not an error -- so planted cells
  also pass through a whole DP round.

Then every file HQ holds -- each run's ``metrics.json``, ``ledger.jsonl`` and
checkpoint, ``fedbank report``'s HTML, JSON and CSV, the ServerApp's log as
``flwr run`` streamed it (``logs/flwr-run.log``, the deployment's
``flower.log``), ``logs/superlink.log``, the SuperLink's ``FLWR_HOME``
(its database and installed app) and the keys directory -- is searched for
every planted value, each of its parts and each digit run of six or more
digits.  The branches' own directories (``branches/<id>``: data, privacy
state, ``branch-errors.log``; their SuperNode logs and ``FLWR_HOME``) are
not HQ's and are not searched, except to check that the full errors, with
the values, are there: the values were really read, the errors really happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from simulations.cli.main import main
from tests.planted_pii import Planted, files_under, find_planted, write_csv
from tests.process_checks import assert_stopped

BRANCHES = ["branch-0", "branch-1", "branch-2"]
ROWS = 12
SMALL = {"num-server-rounds": 1, "data.records-per-branch": 24, "model.max-length": 64, "train.batch-size": 8,
         "dp.target-epsilon": 8.0, "round-timeout": 300.0, "min-train-branches": 1}
NOT_IN_SET = "label value(s) of the data are not in the run's label set"


@dataclass
class Case:
    """One branch's file in one run, and how the branch must end the round."""

    mistake: str
    header: list[str] | None  # None: the file has no header row
    columns: list[str]  # what each row's cells are: "cell" (planted text), "word" (one planted token), or a fixed value
    reason: str | None  # the public reason's expected text; None: the branch trains
    quotes_values: bool = True  # the branch's own full error quotes planted cells
    rows: int = ROWS


@dataclass
class Run:
    name: str
    config: dict
    cases: dict[str, Case]
    hq_file: bool = False  # HQ's held-out data: its own clean CSV (else the synthetic generator)
    outcome: dict = field(default_factory=dict)


RUNS = [
    Run("intent", {}, {
        "branch-0": Case("label set mismatch (unknown labels)", ["text", "label", "remark", "contact"],
                         ["cell", "word", "cell", "cell"], NOT_IN_SET),
        "branch-1": Case("empty file", ["text", "label", "remark"], [], "the data file has no rows",
                         quotes_values=False, rows=0),
        "branch-2": Case("no header row", None, ["cell", "word", "cell"], "the CSV file has no column 'text'"),
    }),
    Run("label-is-text", {"data.label-column": "text"}, {
        "branch-0": Case("label column = text column", ["text", "label", "remark"], ["cell", "word", "cell"], NOT_IN_SET),
        "branch-1": Case("duplicated header", ["text", "label", "text"], ["cell", "word", "cell"],
                         "the CSV header names column 'text' 2 times", quotes_values=False),
        "branch-2": Case("missing text column", ["message", "label", "remark"], ["cell", "word", "cell"],
                         "the CSV file has no column 'text'", quotes_values=False),
    }),
    Run("credit", {"task": "credit", "data.positive-label": "bad", "data.labels": ""}, {
        "branch-0": Case("wrong positive label", ["age", "amount", "remark", "label"], ["cell", "cell", "cell", "pair"],
                         "data.positive-label is not one of the 2 values of column 'label'"),
        "branch-1": Case("wrong task (an intent file under task=credit)", ["text", "label", "remark"],
                         ["cell", "word", "cell"], f"task 'credit' is binary but column 'label' has {ROWS} values"),
        "branch-2": Case("non-numeric feature (trains)", ["age", "amount", "remark", "label"],
                         ["cell", "cell", "cell", "good|bad"], None, quotes_values=False, rows=16),
    }, hq_file=True),
]


def _rows(planted: Planted, case: Case) -> list[list[str]]:
    pair = [planted.word(), planted.word()] if "pair" in case.columns else []
    rows = []
    for i in range(case.rows):
        row = []
        for kind in case.columns:
            if kind == "cell":
                row.append(planted.cell())
            elif kind == "word":
                row.append(planted.word())
            elif kind == "pair":
                row.append(pair[i % 2])
            else:
                row.append(kind.split("|")[i % 2])
        rows.append(row)
    return rows


def _hq_credit_file(path: Path) -> Path:
    """HQ's own clean held-out records: no planted value, both classes."""
    rows = [[str(20 + i % 50), str(1000 + 37 * i), ["car", "education", "repairs"][i % 3], ["good", "bad"][i % 3 == 0]]
            for i in range(60)]
    return write_csv(path, ["age", "amount", "purpose", "label"], rows)


@dataclass
class Deployment:
    out: Path
    runs: list[Run]
    planted: Planted
    node_branch: dict[int, str]
    errors: dict[tuple[str, str], str]  # (run, branch) -> what the branch appended to its own error log
    family: list


def _branch_log(out: Path, bid: str) -> str:
    path = out / "branches" / bid / "branch-errors.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    """One deployment, three runs (one per entry of RUNS), then everything it started is stopped."""
    from simulations.deploy.orchestration import LocalDeployment

    out = tmp_path_factory.mktemp("leak") / "deploy"
    planted = Planted()
    errors: dict[tuple[str, str], str] = {}
    dep = LocalDeployment(out, BRANCHES)
    try:
        dep.init_keys()
        for run in RUNS:  # each branch's file exists before its SuperNode starts
            for bid, case in run.cases.items():
                write_csv(dep.data_path(bid), case.header, [])
        dep.start_superlink()
        dep.register()
        dep.start_supernodes()
        dep.wait_online()
        for run in RUNS:
            before = {bid: len(_branch_log(out, bid)) for bid in BRANCHES}
            for bid, case in run.cases.items():
                write_csv(dep.data_path(bid), case.header, _rows(planted, case))
            config = {**SMALL, **run.config, "output-dir": str(out / "hq" / run.name), "num-branches": len(BRANCHES),
                      "security.keys-dir": str(out / "keys")}
            if run.hq_file:
                config["data.source"] = str(_hq_credit_file(out / "hq" / f"{run.name}-held-out.csv"))
            result = dep.wait_run(dep.start_run(config), timeout=480)
            run.outcome = {"status": f"{result.status}:{result.sub_status}"}
            for bid in BRANCHES:
                errors[(run.name, bid)] = _branch_log(out, bid)[before[bid]:]
        node_branch = {node: bid for bid, node in dep.node_ids.items() if node is not None}
    finally:
        dep.stop_all()
    family = []
    for managed in dep.processes():
        info = managed.describe()
        family.append((info["pid"], info["create_time"], managed.name))
        family += [(c["pid"], c["create_time"], managed.name) for c in info["children"]]
    for run in RUNS:
        run_dir = out / "hq" / run.name
        for fmt in ("html", "json", "csv"):
            assert main(["report", str(run_dir), "--out", str(run_dir / f"report.{fmt}")]) == 0
    return Deployment(out, RUNS, planted, node_branch, errors, family)


def _round_one(dep: Deployment, run: Run) -> dict:
    metrics = json.loads((dep.out / "hq" / run.name / "metrics.json").read_text(encoding="utf-8"))
    return {r["round"]: r for r in metrics["rounds"]}[1]


CASES = [(run.name, bid) for run in RUNS for bid in run.cases]


@pytest.mark.parametrize("run_name, bid", CASES, ids=[f"{r}-{b}" for r, b in CASES])
def test_each_branch_ends_as_its_mistake_predicts(deployment, run_name, bid):
    run = next(r for r in deployment.runs if r.name == run_name)
    case = run.cases[bid]
    assert run.outcome["status"] == "finished:completed", run.outcome
    round1 = _round_one(deployment, run)
    failures = {deployment.node_branch.get(f["node"], f["branch"]): f["reason"] for f in round1["failures"]}
    if case.reason is None:
        assert bid not in failures, failures
        assert round1["branches"][bid]["status"] == "trained", round1["branches"]
        return
    assert bid in failures, f"{case.mistake}: {bid} did not fail: {round1}"
    assert case.reason in failures[bid], f"{case.mistake}: {failures[bid]}"
    full = deployment.errors[(run_name, bid)]
    assert "Traceback" in full, f"{case.mistake}: the full error stays in the branch's own log"
    if case.quotes_values:
        assert any(cell in full for cell in deployment.planted.cells), \
            f"{case.mistake}: the branch's own log should quote its data, proving the file was read: {full[-2000:]}"


def _hq_files(dep: Deployment) -> list[Path]:
    branch_owned = [dep.out / "branches"] + [dep.out / ".flwr" / b for b in BRANCHES] + \
                   [dep.out / "logs" / f"{b}.log" for b in BRANCHES]
    return files_under(dep.out, skip=branch_owned)


def test_no_planted_value_in_any_file_hq_writes(deployment):
    files = _hq_files(deployment)
    names = {p.relative_to(deployment.out).as_posix() for p in files}
    expected = {"logs/superlink.log", "logs/flwr-run.log"}
    for run in deployment.runs:
        expected |= {f"hq/{run.name}/{f}" for f in ("metrics.json", "ledger.jsonl", "report.html", "report.json",
                                                    "report.csv")}
    assert expected <= names, sorted(expected - names)
    assert any(n.startswith(".flwr/superlink/") for n in names), "the SuperLink's FLWR_HOME is searched too"
    needles = deployment.planted.needles()
    assert len(needles) > 500, len(needles)
    hits = find_planted(files, needles)
    assert not hits, f"planted values reached HQ: {hits[:20]}"


def test_the_search_finds_what_is_there(deployment):
    """The branches' own files hold the planted values: a search that finds nothing there would prove nothing."""
    own = files_under(deployment.out / "branches")
    assert find_planted(own, deployment.planted.needles())


def test_deployment_leaves_no_process_running(deployment):
    assert len(deployment.family) > 4
    assert_stopped(deployment.family, within=10)
