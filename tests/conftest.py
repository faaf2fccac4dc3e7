"""Shared fixtures: the real data location, a small Banking77-shaped data folder for the benchmarks, and the
one end-to-end simulated run."""

from __future__ import annotations

import atexit
import csv
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
# The suite's own memo of noise searches (common/privacy/noise_plans.py), made by the first process (pytest-xdist
# workers and every run the tests start inherit it): no test depends on what this machine's ~/.cache holds.
if "FEDBANK_CACHE_DIR" not in os.environ:
    os.environ["FEDBANK_CACHE_DIR"] = _CACHE = tempfile.mkdtemp(prefix="fedbank-test-cache-")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
BANKING77 = SHARED_DATA / "banking77" / "train.csv"

# Small enough for CI on 2 cores, large enough that DP-SGD takes several steps.
E2E_CONFIG = {
    "num-server-rounds": 2,
    "data.records-per-branch": 48,
    "model.max-length": 96,
    "train.batch-size": 8,
    "dp.target-epsilon": 8.0,
    "min-train-branches": 3,
}


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory):
    """A real Flower simulation: 3 branches x 2 rounds with DP (run once per session)."""
    from simulations.local.runner import simulate

    out = tmp_path_factory.mktemp("e2e") / "run"
    result = simulate(ROOT, out, num_branches=3, run_config=E2E_CONFIG, timeout=900)
    return result


@pytest.fixture()
def server_task_identity():
    """The identity a ServerApp process has when it creates a message (for in-process ClientApp calls)."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 7, 0
    yield
    TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


BENCH_INTENTS = {"card_arrival": "when will my new card arrive {}", "lost_card": "i lost my card near {} please block it",
                 "exchange_rate": "what is the exchange rate to {} today",
                 "top_up_failed": "my top up from {} failed again"}
BENCH_PLACES = ["london", "paris", "berlin", "madrid", "rome", "lisbon", "dublin", "vienna", "prague", "oslo",
                "the station", "work", "home", "the airport", "the mall"]
BENCH_ROWS = 240


@pytest.fixture()
def bench_data_dir(tmp_path):
    """A data folder holding ``banking77/train.csv``: BENCH_ROWS messages of four intents (the benchmarks' --data-dir)."""
    folder = tmp_path / "data" / "banking77"
    folder.mkdir(parents=True)
    with (folder / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        for i in range(BENCH_ROWS):
            label = list(BENCH_INTENTS)[i % len(BENCH_INTENTS)]
            writer.writerow([BENCH_INTENTS[label].format(BENCH_PLACES[(i // 4) % len(BENCH_PLACES)]), label])
    return tmp_path / "data"
