"""bench/ablation.py: each lever's cells run with the lever's settings, are kept, and are not run twice.

Runs the script's own ``main`` with the tiny base on a small Banking77-shaped file, arm (e) only (in
process, seconds per cell): the large-batch lever must really train at its batch (every row sampled at
every step), a second call must run nothing, a changed setting must run the cells again, the server-side
lever gets no (e) cell, levers that act across rounds train (e) round by round under one accountant, and a
baseline imported from a result of other settings is refused.
"""

from __future__ import annotations

import json
import re

import pytest

from bench import ablation


@pytest.fixture()
def data_dir(bench_data_dir):
    """The shared Banking77-shaped folder (tests/conftest.py) under the name the tests use."""
    return bench_data_dir


def argv(data_dir, out, *extra):
    return ["--base", "tiny", "--datasets", "banking77", "--data-dir", str(data_dir), "--out", str(out),
            "--set", "model.lora.layers=1", "--set", "num-server-rounds=1", "--set", "data.dirichlet-alpha=100", *extra]


def cells(out):
    return json.loads(out.read_text(encoding="utf-8"))["cells"]


def test_cells_run_once_with_each_levers_settings(data_dir, tmp_path, capsys):
    out = tmp_path / "ablation.json"
    ablation.main(argv(data_dir, out, "--seeds", "1,2", "--arms", "e", "--levers", "baseline,large-batch,server-adam"))
    first = cells(out)
    assert sorted(first) == [f"banking77|{s}|{lev}|e" for s in (1, 2) for lev in ("baseline", "large-batch")]
    for seed in (1, 2):
        base, large = first[f"banking77|{seed}|baseline|e"], first[f"banking77|{seed}|large-batch|e"]
        n = base["examples"]
        assert base["sample_rate"] == pytest.approx(1 / -(-n // 128)) and base["steps"] == -(-n // 128)
        assert large["sample_rate"] == 1.0 and large["steps"] == 1  # batch 4,096 > n: every row, every step
        assert large["config"]["train.learning-rate"] == 10.0 and large["config"]["train.momentum"] == 0.0
        assert 7.0 < large["epsilon"] <= 8.0 + 1e-6 and 7.0 < base["epsilon"] <= 8.0 + 1e-6
        # the noise on each step's mean gradient: sigma x clip / expected batch
        assert large["noise_multiplier"] / n < base["noise_multiplier"] / (base["sample_rate"] * n)
    # the two seeds are two splits
    assert first["banking77|1|baseline|e"]["config"]["seed"] == 1 and first["banking77|2|baseline|e"]["config"]["seed"] == 2

    ablation.main(argv(data_dir, out, "--seeds", "1,2", "--arms", "e", "--levers", "baseline,large-batch"))
    assert cells(out) == first  # nothing ran again
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("| large-batch "))
    mean = (first["banking77|1|large-batch|e"]["accuracy"] + first["banking77|2|large-batch|e"]["accuracy"]) / 2
    assert f"{mean:.3f}" in row
    assert "n/a" in next(line for line in table.splitlines() if line.startswith("| server-adam "))

    ablation.main(argv(data_dir, out, "--seeds", "1", "--arms", "e", "--levers", "baseline", "--set", "train.local-epochs=2"))
    again = cells(out)
    assert again["banking77|1|baseline|e"]["finished"] >= first["banking77|1|baseline|e"]["finished"]
    assert again["banking77|1|baseline|e"]["steps"] == 2 * first["banking77|1|baseline|e"]["steps"]
    assert again["banking77|2|baseline|e"] == first["banking77|2|baseline|e"]


def test_levers_across_rounds_train_the_central_arm_round_by_round(data_dir, tmp_path, monkeypatch, capsys):
    """LP-FT's (e), 4 rounds of 1 epoch: 3 head-only calls, then one on the adapter too, each starting from the last
    call's adapter with the accountant's history so far; the steps and spend of the baseline's one call of 4.
    Both print one progress line per epoch, numbered across calls."""
    import client.training
    from common.model.adapter import adapter_arrays

    calls, real = [], client.training.train_round

    def spy(model, data, cfg, plan, history, seed, class_weights=None, on_epoch=None):
        start = adapter_arrays(model)
        outcome = real(model, data, cfg, plan, history, seed, class_weights, on_epoch)
        calls.append({"plan": plan, "history": list(history), "start": start, "out": outcome})
        return outcome

    monkeypatch.setattr(client.training, "train_round", spy)
    out = tmp_path / "ablation.json"
    ablation.main(argv(data_dir, out, "--seeds", "1", "--arms", "e", "--levers", "baseline,lp-ft",
                       "--set", "num-server-rounds=4"))
    got = cells(out)
    base, lpft = got["banking77|1|baseline|e"], got["banking77|1|lp-ft|e"]
    assert base["calls"] == 1 and lpft["calls"] == 4 and len(calls) == 5
    assert [c["plan"].head_only for c in calls[1:]] == [True, True, True, False]
    for before, after in zip(calls[1:], calls[2:]):
        assert after["history"] == before["out"].accountant_history
        assert after["start"].keys() == before["out"].arrays.keys()
        assert all((after["start"][k] == before["out"].arrays[k]).all() for k in after["start"])
    assert lpft["steps"] == base["steps"] and lpft["noise_multiplier"] == base["noise_multiplier"]
    assert 7.0 < lpft["epsilon"] <= 8.0 + 1e-6 and lpft["epsilon"] == pytest.approx(base["epsilon"], rel=1e-6)
    err = capsys.readouterr().err
    for lever, cell in (("baseline", base), ("lp-ft", lpft)):
        lines = re.findall(rf"seed 1 {re.escape(lever)} \(e\): epoch (\d)/4, (\d+) steps", err)
        assert [int(e) for e, _ in lines] == [1, 2, 3, 4] and int(lines[-1][1]) == cell["steps"]


def test_import_refuses_a_baseline_of_other_settings(data_dir, tmp_path):
    args = ablation.parse_args(argv(data_dir, tmp_path / "x.json", "--seeds", "1"))
    flat = ablation.flat_config("banking77", 1, "baseline", args)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"datasets": {"banking77": {"config": {**flat, "train.batch-size": 64},
                                                            "arms": {"c": {"accuracy": 0.5}}}}}), encoding="utf-8")
    with pytest.raises(SystemExit, match="train.batch-size=64"):
        ablation.main(argv(data_dir, tmp_path / "x.json", "--seeds", "1", "--table-only", "--import", str(other)))
    same = tmp_path / "same.json"
    same.write_text(json.dumps({"datasets": {"banking77": {"config": flat, "arms": {"a": {"accuracy": 0.8},
                                                                                     "c": {"accuracy": 0.6}}}}}),
                    encoding="utf-8")
    ablation.main(argv(data_dir, tmp_path / "x.json", "--seeds", "1", "--table-only", "--import", str(same)))
    stored = cells(tmp_path / "x.json")
    assert stored["banking77|1|baseline|c"]["accuracy"] == 0.6 and stored["banking77|1|baseline|a"]["accuracy"] == 0.8


def test_import_takes_the_ffa_lora_run_of_the_methods_benchmark(data_dir, tmp_path):
    args = ablation.parse_args(argv(data_dir, tmp_path / "x.json", "--seeds", "1"))
    ffa = ablation.flat_config("banking77", 1, "ffa-lora", args)
    methods = {"benchmark": "peft_methods", "dataset": "banking77",
               "methods": {"ffa-lora": {"config": ffa, "c": {"accuracy": 0.7}}, "ia3": {"config": {}, "c": {}}}}
    path = tmp_path / "methods.json"
    path.write_text(json.dumps(methods), encoding="utf-8")
    ablation.main(argv(data_dir, tmp_path / "x.json", "--seeds", "1", "--table-only", "--import", str(path)))
    assert list(cells(tmp_path / "x.json")) == ["banking77|1|ffa-lora|c"]
    methods["methods"]["ffa-lora"]["config"] = {**ffa, "model.peft": "lora"}
    path.write_text(json.dumps(methods), encoding="utf-8")
    with pytest.raises(SystemExit, match="model.peft='lora'"):
        ablation.main(argv(data_dir, tmp_path / "y.json", "--seeds", "1", "--table-only", "--import", str(path)))


def test_a_run_with_failed_branches_counts_for_nothing():
    cells = {"banking77|1|baseline|a": {"accuracy": 0.9}, "banking77|2|baseline|a": {"accuracy": 0.9},
             "banking77|1|ffa-lora|c": {"accuracy": 0.81, "failures": []},
             "banking77|2|ffa-lora|c": {"accuracy": 0.64, "failures": [{"round": 4, "branch": "branch-9"}]}}
    row = ablation.summary_rows(cells, ["banking77"], [1, 2], ["ffa-lora"])[0]
    assert row[1] == "0.810 (0.810, x)" and row[2] == "0.900"
    cells["banking77|1|ffa-lora|c"]["failures"] = [{"round": 1}]
    assert ablation.summary_rows(cells, ["banking77"], [1, 2], ["ffa-lora"])[0][1:3] == ["invalid (x, x)", "-"]


def test_levers_are_measured_against_the_lora_preset_while_minilm_dp_takes_the_winning_rows(data_dir, tmp_path):
    """minilm-dp took the head-only large-batch row for both data sets; the ablation stays on the preset it measured against."""
    from bench import real_data

    args = ablation.parse_args(argv(data_dir, tmp_path / "x.json", "--seeds", "1"))
    baseline = ablation.flat_config("banking77", 1, "baseline", args)
    assert baseline.get("model.peft", "lora") == "lora" and baseline.get("train.linear-probe-rounds", 0) == 0
    assert ablation.flat_config("banking77", 1, "ffa-lora", args)["model.peft"] == "ffa-lora"
    preset = real_data.parse_args(["--preset", "minilm-dp", "--datasets", "banking77", "--data-dir", str(data_dir)])
    configs = {"banking77": real_data.base_config("banking77", preset),
               "german-credit": real_data.PRESETS["minilm-dp"]["german-credit"]}  # the test data is Banking77-shaped
    for dataset, lr in (("banking77", 40.0), ("german-credit", 4.0)):
        winner = ablation.LEVERS["lp-only+large-batch+4x-step"][dataset]
        config = configs[dataset]
        assert {k: config[k] for k in winner} == winner and config["train.learning-rate"] == lr
        assert config["train.linear-probe-rounds"] == config["num-server-rounds"]  # every round: the head alone


def test_the_levers_cover_every_data_set_the_benchmark_loads():
    """bench/levers.py names the data sets itself (importing real_data would be a cycle): a data set added to one
    list and not the other would run with no lever settings or fail with a KeyError mid-table."""
    from bench import levers, real_data

    assert set(levers.DATASETS) == set(real_data.DATASETS)
    for name, preset in levers.PRESETS.items():
        assert set(preset) == set(real_data.DATASETS), name
    for name, lever in levers.LEVERS.items():
        assert set(lever) - {"arms"} == set(real_data.DATASETS), name


def test_the_plot_averages_the_tables_seeds_over_their_own_a_and_leaves_out_failed_runs(tmp_path):
    from bench import ablation_plot

    def cell(curve, metric="accuracy", failures=()):
        return {metric: curve[-1], "by_round": {metric: curve}, "failures": list(failures)}

    result = {"banking77|42|baseline|c": cell([0.1, 0.5, 0.8]), "banking77|7|baseline|c": cell([0.1, 0.3, 0.4]),
              "banking77|123|baseline|c": cell([0.0, 0.0, 0.0]),  # a seed the table leaves out
              "banking77|42|lp-ft|c": cell([0.1, 0.6, 0.9]),
              "banking77|7|lp-ft|c": cell([0.1, 0.1, 0.1], failures=["branch-3"]),  # branches failed: measures nothing
              "banking77|42|baseline|a": {"accuracy": 1.0}, "banking77|7|baseline|a": {"accuracy": 0.5},
              "banking77|42|baseline|e": {"accuracy": 0.6}}
    curves = ablation_plot.curves(result, "banking77", "accuracy", [42, 7])
    assert curves["baseline"] == (pytest.approx([0.15, 0.55, 0.8]), [42, 7])  # 0.8/1.0 and 0.4/0.5: the table's mean
    assert curves["lp-ft"] == (pytest.approx([0.1, 0.6, 0.9]), [42])
    assert ablation_plot.reference(result, "banking77", "baseline", "e", "accuracy", [42, 7]) == pytest.approx(0.6)
    assert ablation_plot.reference(result, "banking77", "lp-ft", "e", "accuracy", [42, 7]) is None
    # the (e) line: the leading lever's where it has one, else the next one's, the baseline's last
    assert ablation_plot.leading_e(result, "banking77", ["lp-ft", "baseline"], "accuracy", [42, 7]) == (
        "baseline", pytest.approx(0.6))
    with_e = {**result, "banking77|42|lp-ft|e": {"accuracy": 0.7}}
    assert ablation_plot.leading_e(with_e, "banking77", ["lp-ft", "baseline"], "accuracy", [42, 7]) == (
        "lp-ft", pytest.approx(0.7))
    assert ablation_plot.leading_e({}, "banking77", ["lp-ft"], "accuracy", [42]) is None

    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"cells": result}))
    ablation_plot.main(["--result", str(path), "--out-dir", str(tmp_path / "plots")])
    png = (tmp_path / "plots" / "ablation_banking77.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert not (tmp_path / "plots" / "ablation_german-credit.png").exists()  # no German Credit cell, no figure
    path.write_text(json.dumps({"rows": []}))
    for bad in (tmp_path / "missing.json", path):
        with pytest.raises(SystemExit, match="not a bench/ablation.py result"):
            ablation_plot.main(["--result", str(bad)])


def test_a_bad_arms_or_lever_is_refused_with_a_one_line_error(data_dir, tmp_path, capsys):
    """--arms x used to select no arm and run nothing without a word; now it names the arms to give."""
    for extra, says in ((("--arms", "x"), "--arms 'x'"), (("--arms", "c,f"), "--arms 'c,f'"),
                        (("--levers", "nope"), "unknown lever 'nope'")):
        with pytest.raises(SystemExit):
            ablation.parse_args(argv(data_dir, tmp_path / "x.json", *extra))
        assert says in capsys.readouterr().err
    assert ablation.parse_args(argv(data_dir, tmp_path / "x.json", "--arms", "e,c")).arms == ["c", "e"]
