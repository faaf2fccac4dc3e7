"""bench/real_data.py arm (e): centralized DP-SGD at the federation's epsilon, beside reused arms, with the prices.

Runs the script's own ``main`` on a small Banking77-shaped file with the tiny base: arm (a) first, then
``--arms e --reuse`` that result, as the README's commands do.  (e) must train on the union of the branches'
rows with DP (noise planned by the same accountant for the central sample rate, spending the target epsilon),
be evaluated on the same held-out rows, and the JSON must carry (e) / (a) computed from both arms.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from bench import real_data
from common.privacy.accounting import planned_noise_multiplier


@pytest.fixture()
def data_dir(bench_data_dir):
    """The shared Banking77-shaped folder (tests/conftest.py) under the name the tests use."""
    return bench_data_dir


def run(data_dir, out, *extra):
    real_data.main(["--data-dir", str(data_dir), "--datasets", "banking77", "--quick", "--out", str(out),
                    "--set", "data.dirichlet-alpha=100", "--set", "train.batch-size=16", *extra])
    return json.loads(out.read_text(encoding="utf-8"))


def test_arm_e_is_central_dp_sgd_beside_reused_arms(data_dir, tmp_path, capsys):
    first = run(data_dir, tmp_path / "a.json", "--arms", "a")
    result = run(data_dir, tmp_path / "e.json", "--arms", "e", "--reuse", str(tmp_path / "a.json"))
    r = result["datasets"]["banking77"]
    a, e = r["arms"]["a"], r["arms"]["e"]
    assert a == {**first["datasets"]["banking77"]["arms"]["a"], "reused_from": str(tmp_path / "a.json")}
    # (e): every train row of the split (the branches' union, as in (a)), with DP at the target epsilon
    n = a["examples"]
    assert e["examples"] == n and n == 240 - r["held_out"]
    batch, epochs = 16, 1
    assert e["sample_rate"] == pytest.approx(1 / math.ceil(n / batch))
    assert e["noise_multiplier"] == pytest.approx(
        planned_noise_multiplier(8.0, 1e-5, e["sample_rate"], e["steps"], "rdp"))
    assert e["steps"] == epochs * math.ceil(n / batch) and e["noise_multiplier"] > 0.3
    assert 7.0 < e["epsilon"] <= 8.0 + 1e-6
    assert a["epsilon"] is None
    prices = {(p["price"], p["metric"]): p["value"] for p in r["prices"]}
    assert prices[("price of privacy: (e) / (a)", "accuracy")] == pytest.approx(e["accuracy"] / a["accuracy"])
    assert not any("(c) / (e)" in p for p, _ in prices)  # (c) was not run: no price of federating
    captured = capsys.readouterr()
    printed = captured.out
    assert "(e) centralized, DP eps 8" in printed and "(a) centralized, non-private [reused]" in printed
    # a central arm trains for minutes in one process: one progress line per epoch, with the steps taken so far
    progress = re.findall(r"banking77 \((a|e)\): epoch (\d+)/(\d+), (\d+) steps, training loss ([0-9.]+)", captured.err)
    assert progress == [("a", "1", "1", str(a["steps"]), progress[0][4]), ("e", "1", "1", str(e["steps"]), progress[1][4])]
    assert all(math.isfinite(float(p[4])) and float(p[4]) > 0 for p in progress)


def test_reuse_refuses_a_result_of_other_settings(data_dir, tmp_path):
    run(data_dir, tmp_path / "a.json", "--arms", "a")
    with pytest.raises(SystemExit, match=r"--reuse .*a\.json: its banking77 run had seed=42, this one 7"):
        run(data_dir, tmp_path / "e.json", "--arms", "e", "--reuse", str(tmp_path / "a.json"), "--set", "seed=7")
