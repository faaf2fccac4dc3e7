"""The headquarters' Flower ServerApp: a thin main that reads the config,
builds the initial adapter, runs the ledgered FedAvg strategy with held-out
evaluation, and writes the outputs under ``output-dir``:

* ``adapter/`` — the final adapter (PEFT ``save_pretrained``) plus its base recipe;
* ``metrics.json`` — per round: loss, accuracy, macro-F1, each branch's epsilon;
* ``ledger.jsonl`` — one hash-chained line per branch per round.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from common.config import RunConfig
from common.model import adapter_arrays, load_adapter_arrays, save_adapter
from common.protocol import arrays_to_record, record_to_arrays
from server.evaluation import HoldoutEvaluator
from server.ledger import PrivacyLedger
from server.recorder import RunRecorder
from server.strategy import LedgeredFedAvg

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the federation and write its outputs."""
    cfg = RunConfig.from_flower(context.run_config)
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    run_id = str(context.run_id)
    recorder = RunRecorder(out / "metrics.json", {
        "run_id": run_id,
        "config": cfg.to_flower(),
        "accountant": cfg.dp.accountant if cfg.dp.enabled else "none",
        "delta": cfg.dp.delta if cfg.dp.enabled else 0.0,
    })
    evaluator = HoldoutEvaluator(cfg, recorder)
    fed = cfg.federation
    strategy = LedgeredFedAvg(
        ledger=PrivacyLedger(out / "ledger.jsonl"),
        recorder=recorder,
        run_id=run_id,
        fraction_train=fed.fraction_train,
        fraction_evaluate=fed.fraction_evaluate,
        min_train_nodes=fed.min_train_branches,
        min_evaluate_nodes=fed.min_train_branches if fed.fraction_evaluate > 0 else 0,
        min_available_nodes=fed.min_train_branches,
    )
    initial = arrays_to_record(adapter_arrays(evaluator.model))
    result = strategy.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=fed.num_rounds,
        train_config=ConfigRecord({"run-id": run_id}),
        evaluate_fn=evaluator,
    )
    load_adapter_arrays(evaluator.model, record_to_arrays(result.arrays or initial))
    save_adapter(evaluator.model, out / "adapter", cfg.model, evaluator.labels)
