"""What bench/real_data.py derives from its arms: the issue's goals, the prices, reused arms, the printed tables.

* goals (issue 6): (c) >= mean (d) + margin, and (c) / (a) >= ratio;
* prices (issue 20): (e) / (a), the price of privacy (centralized DP-SGD against centralized
  non-private training), and (c) / (e), the price of federating under privacy (the DP federation
  against centralized DP-SGD at the same epsilon and delta);
* ``--reuse FILE``: arms of an earlier result file whose run config is this run's (the base
  compared by the directory it resolves to), so one arm can be added without re-running the others.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.harness import table

ARMS = {"a": "centralized, non-private", "b": "federated, non-private", "c": "federated, DP eps 8 per branch",
        "d": "each branch alone, DP eps 8 (mean)", "e": "centralized, DP eps 8"}
PRICES = (("e", "a", "price of privacy: (e) / (a)"), ("c", "e", "price of federating under privacy: (c) / (e)"))


def goals(result: dict, margin: float, ratio: float) -> list[dict]:
    """The issue's two goals for each metric of the data set, where the arms they compare were run."""
    arms, out = result["arms"], []
    for m in result["metrics"]:
        if "c" in arms and "d" in arms:
            gap = arms["c"][m] - arms["d"][m]
            out.append({"goal": f"(c) >= mean (d) + {margin:g}", "metric": m, "value": gap, "pass": gap >= margin})
        if "c" in arms and "a" in arms:
            value = arms["c"][m] / arms["a"][m] if arms["a"][m] else float("nan")
            out.append({"goal": f"(c) / (a) >= {ratio:g}", "metric": m, "value": value, "pass": value >= ratio})
    return out


def prices(result: dict) -> list[dict]:
    """(e) / (a) and (c) / (e) for each metric, where both arms are present (run or reused)."""
    arms, out = result["arms"], []
    for top, bottom, name in PRICES:
        if top in arms and bottom in arms:
            for m in result["metrics"]:
                value = arms[top][m] / arms[bottom][m] if arms[bottom][m] else float("nan")
                out.append({"price": name, "metric": m, "value": value})
    return out


def _same_base(a: str, b: str) -> bool:
    from common.model.pretrained import model_source

    return a == b or Path(model_source(a)).resolve() == Path(model_source(b)).resolve()


def reused_arms(files: list[Path], name: str, flat: dict) -> dict[str, dict]:
    """Arms of data set ``name`` from earlier result files run with the config ``flat`` (later files win).

    Raises:
        SystemExit: a file cannot be read, or its config for ``name`` differs from ``flat`` (names the key).
    """
    out: dict[str, dict] = {}
    for path in files:
        try:
            earlier = json.loads(Path(path).read_text(encoding="utf-8"))["datasets"]
        except (OSError, ValueError, KeyError) as err:
            raise SystemExit(f"--reuse {path}: not a bench/real_data.py result ({err}): give a JSON it wrote")
        if name not in earlier:
            continue
        config = earlier[name]["config"]
        differ = sorted(k for k in set(config) | set(flat) if k != "model.name" and config.get(k) != flat.get(k))
        if differ or not _same_base(str(config.get("model.name")), str(flat.get("model.name"))):
            key = differ[0] if differ else "model.name"
            raise SystemExit(f"--reuse {path}: its {name} run had {key}={config.get(key)!r}, this one "
                             f"{flat.get(key)!r}: reuse only a result of the same settings")
        for arm, figures in earlier[name]["arms"].items():
            out[arm] = {**figures, "reused_from": str(path)}
    return out


def print_tables(results: dict) -> None:
    """The arms, the goals and the prices of every data set as Markdown tables on stdout."""
    rows, goal_rows, price_rows = [], [], []
    for name, r in results.items():
        m1, m2 = r["metrics"]
        for arm, a in sorted(r["arms"].items()):
            spread = (f" ({a[m1 + '_min']:.3f}-{a[m1 + '_max']:.3f})" if f"{m1}_min" in a else "")
            eps = a.get("epsilon_max", a.get("epsilon"))
            invalid = f" [INVALID: {len(a['failures'])} branch rounds failed]" if a.get("failures") else ""
            rows.append([name, f"({arm}) {ARMS[arm]}" + (" [reused]" if "reused_from" in a else "") + invalid,
                         f"{m1} {a[m1]:.3f}{spread}", f"{m2} {a[m2]:.3f}",
                         "-" if eps is None else f"{eps:.2f}", f"{a['seconds']:.0f}"])
        goal_rows += [[name, g["goal"], g["metric"], f"{g['value']:.3f}", "PASS" if g["pass"] else "FAIL"] for g in r["goals"]]
        price_rows += [[name, p["price"], p["metric"], f"{p['value']:.3f}"] for p in r.get("prices", [])]
    print(table(["data set", "arm", "metric 1 (min-max over branches)", "metric 2", "epsilon (max)", "seconds"], rows))
    if goal_rows:
        print()
        print(table(["data set", "goal", "metric", "value", "result"], goal_rows))
    if price_rows:
        print()
        print(table(["data set", "price", "metric", "value"], price_rows))
