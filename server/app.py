"""The headquarters' Flower ServerApp: a thin main that wires the pieces.

Reads the config, loads the server's keys (envelope on), builds the initial
adapter or restores the last checkpoint (``resume``), runs the rounds with
:class:`server.aggregation.strategy.BranchStrategy` around the configured Flower
aggregator, and writes the outputs under ``output-dir``:

* ``adapter/`` -- the final adapter (PEFT ``save_pretrained``) plus its base recipe;
* ``metrics.json`` -- per round: held-out loss/accuracy/macro-F1, each branch's
  status and epsilon, failures, rejected updates, client-level epsilon;
* ``ledger.jsonl`` -- one hash-chained line per branch per round, signed by the branch;
* ``checkpoint/`` -- the state after the last completed round;
* ``audit.json`` -- the canary audit, when ``audit.canaries`` > 0.
"""

from __future__ import annotations

import os
import signal

from flwr.app import ArrayRecord, Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from common.config.run import RunConfig
from common.errors import FedbankError
from common.model.adapter import adapter_arrays, load_adapter_arrays, save_adapter
from common.wire.protocol import arrays_to_record, record_to_arrays
from server.aggregation.aggregators import ClientLevelAccountant, build_aggregator
from server.evaluation.canary_audit import formal_epsilon_of, run_audit
from server.records.checkpoint import Checkpoint, load_checkpoint, load_velocity, rewind_ledger, save_checkpoint, unfinished_claims
from server.evaluation.holdout import HoldoutEvaluator
from server.admission.intake import Intake
from server.records.keyring import ServerKeys
from server.records.ledger import PrivacyLedger
from server.records.metrics import RunRecorder
from server.run.rounds import run_rounds
from server.aggregation.server_momentum import ServerMomentum
from server.flower_patches import install_fast_idle_poll
from server.aggregation.strategy import BranchStrategy

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run (or resume) the federation and write its outputs."""
    install_fast_idle_poll(grid)  # simulation only: Flower's engine polls every branch every 0.1 s (server/flower_patches.py)
    cfg = RunConfig.from_flower(context.run_config)
    if cfg.security.secagg:
        from server.run.secagg_loop import run_secagg

        run_secagg(grid, context, cfg)
        return
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    keys = ServerKeys.load(cfg.keys_dir) if cfg.security.envelope else None

    if cfg.federation.resume:
        ckpt, start_arrays = load_checkpoint(out)
        moved = rewind_ledger(out / "ledger.jsonl", ckpt)
        log(20, "fedbank: resuming run %s after round %d (%d unfinished ledger line(s) set aside)", ckpt.run_id, ckpt.round, moved)
        run_id, first_round = ckpt.run_id, ckpt.round + 1
        recorder = RunRecorder.resume(out / "metrics.json", ckpt.round)
    else:
        if (out / "ledger.jsonl").exists() or (out / "checkpoint").exists():
            raise FedbankError(f"{out} already holds a run: resume it (resume=true) or choose a new output-dir")
        ckpt, start_arrays = None, None
        run_id, first_round = int(context.run_id), 1
        recorder = RunRecorder(out / "metrics.json", {
            "run_id": str(run_id),
            "config": cfg.to_flower(),
            "accountant": cfg.dp.accountant if cfg.dp.enabled else "none",
            "delta": cfg.dp.delta if cfg.dp.enabled else 0.0,
        })

    evaluator = HoldoutEvaluator(cfg, recorder)
    ledger = PrivacyLedger(out / "ledger.jsonl")
    client_level = ClientLevelAccountant(cfg) if cfg.central_dp.mode != "off" else None
    inner = build_aggregator(cfg)
    momentum = ServerMomentum(cfg.aggregation.server_learning_rate, cfg.aggregation.server_momentum)
    if ckpt is not None:
        momentum.load_state_arrays(load_velocity(out, ckpt))
        if client_level is not None and ckpt.client_level:
            client_level.load_state_dict(ckpt.client_level)
        if "clipping_norm" in ckpt.strategy:
            inner.clipping_norm = ckpt.strategy["clipping_norm"]
    strategy = BranchStrategy(
        inner,
        intake=Intake(run_id=run_id, keys=keys, max_update_norm=cfg.aggregation.max_update_norm,
                      max_bytes=int(cfg.security.max_update_mb * 1024 * 1024)),
        ledger=ledger, recorder=recorder, keys=keys,
        min_train_branches=cfg.federation.min_train_branches, client_level=client_level, server_optimizer=momentum,
        round_timeout=cfg.federation.round_timeout,
        interrupted={first_round: unfinished_claims(out, first_round)} if ckpt is not None else None,
    )

    def checkpoint(server_round: int, arrays: ArrayRecord) -> None:
        if server_round == cfg.faults.server_crash_round and not cfg.federation.resume:
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection: the worst moment to die
        state = {"clipping_norm": float(inner.clipping_norm)} if hasattr(inner, "clipping_norm") else {}
        save_checkpoint(out, Checkpoint(
            run_id=run_id, round=server_round, adapter_file="", ledger_entries=len(ledger), ledger_head=ledger.head,
            client_level=client_level.state_dict() if client_level else None, strategy=state,
        ), record_to_arrays(arrays), velocity=momentum.state_arrays())

    initial = arrays_to_record(start_arrays if start_arrays is not None else adapter_arrays(evaluator.model))
    if ckpt is None:
        evaluator(0, initial)
    final = run_rounds(
        strategy, grid, arrays=initial, first_round=first_round, num_rounds=cfg.federation.num_rounds,
        train_config={"run-id": run_id}, timeout=cfg.federation.round_timeout,
        evaluate=evaluator, checkpoint=checkpoint,
    )
    load_adapter_arrays(evaluator.model, record_to_arrays(final))
    save_adapter(evaluator.model, out / "adapter", cfg.model, evaluator.labels, task=cfg.task.name)
    if cfg.audit.canaries > 0:  # empirical privacy audit of the final global model
        run_audit(cfg, evaluator.model, evaluator.tokenizer, evaluator.labels, out,
                  formal_epsilon=formal_epsilon_of(recorder.data, cfg.audit.canary_branch, cfg.dp.enabled),
                  delta=cfg.dp.delta)
