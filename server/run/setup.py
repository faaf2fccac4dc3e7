"""One server run's setup and finish, whichever round loop runs in between.

:meth:`ServerRun.open` prepares ``output-dir`` for the run: the server's keys
(envelope on), a fresh run (refused where a run already lies) or the restore
of the last checkpoint (``resume``: the ledger rewound to it, ``metrics.json``
cut back to its round), the recorder of ``metrics.json``, the privacy ledger
and the held-out evaluator (which builds the model).  :meth:`ServerRun.finish`
writes what a run leaves besides its records:

* ``adapter/`` -- the final adapter (PEFT ``save_pretrained``) plus its base recipe;
* ``audit.json`` -- the canary audit, when ``audit.canaries`` > 0.

In between, a round loop (:func:`server.run.rounds.run_rounds`) evaluates the
initial adapter (:meth:`ServerRun.initial_arrays`), each round's result, and
checkpoints it (:meth:`ServerRun.save_checkpoint`) when the loop can resume.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord
from flwr.common.logger import log

from common.config.run import RunConfig
from common.errors import FedbankError
from common.model.adapter import adapter_arrays, load_adapter_arrays, save_adapter
from common.wire.protocol import arrays_to_record, record_to_arrays
from server.evaluation.canary_audit import formal_epsilon_of, run_audit
from server.evaluation.holdout import HoldoutEvaluator
from server.records.checkpoint import Checkpoint, load_checkpoint, rewind_ledger, save_checkpoint
from server.records.keyring import ServerKeys
from server.records.ledger import PrivacyLedger
from server.records.metrics import RunRecorder

INFO = 20


@dataclass
class ServerRun:
    """The parts of one server run that every round loop shares."""

    cfg: RunConfig
    keys: ServerKeys | None
    run_id: int  # the fedbank run id: Flower's for a fresh run, the checkpoint's for a resumed one
    first_round: int
    recorder: RunRecorder
    ledger: PrivacyLedger
    evaluator: HoldoutEvaluator
    resumed: Checkpoint | None = None
    resumed_arrays: dict[str, np.ndarray] | None = None

    @property
    def out(self) -> Path:
        """The run's output directory."""
        return self.cfg.output_dir

    @classmethod
    def open(cls, cfg: RunConfig, flower_run_id: int, *, run_info: dict | None = None) -> "ServerRun":
        """Prepare ``output-dir``: a fresh run, or (``resume``) the one checkpointed there.

        ``run_info``: more fields for the head of a fresh run's ``metrics.json``.
        """
        out = cfg.output_dir
        out.mkdir(parents=True, exist_ok=True)
        keys = ServerKeys.load(cfg.keys_dir) if cfg.security.envelope else None
        ckpt, arrays = None, None
        if cfg.federation.resume:
            ckpt, arrays = load_checkpoint(out)
            moved = rewind_ledger(out / "ledger.jsonl", ckpt, keys.signing_key.public_key() if keys else None)
            log(INFO, "fedbank: resuming run %s after round %d (%d unfinished ledger line(s) set aside)",
                ckpt.run_id, ckpt.round, moved)
            run_id, first_round = ckpt.run_id, ckpt.round + 1
            recorder = RunRecorder.resume(out / "metrics.json", ckpt.round)
        else:
            if (out / "ledger.jsonl").exists() or (out / "checkpoint").exists():
                fix = "choose a new output-dir" if cfg.security.secagg else \
                    "resume it (resume=true) or choose a new output-dir"
                raise FedbankError(f"{out} already holds a run: {fix}")
            run_id, first_round = int(flower_run_id), 1
            recorder = RunRecorder(out / "metrics.json", {
                "run_id": str(run_id),
                "config": cfg.to_flower(),
                "accountant": cfg.dp.accountant if cfg.dp.enabled else "none",
                "delta": cfg.dp.delta if cfg.dp.enabled else 0.0,
                **(run_info or {}),
            })
        evaluator = HoldoutEvaluator(cfg, recorder)
        # The ledger signs every line it writes, and each round's head, with the server's key.
        ledger = PrivacyLedger(out / "ledger.jsonl", signing_key=keys.signing_key if keys else None,
                               branch_keys=keys.branch_keys if keys else None)
        return cls(cfg, keys, run_id, first_round, recorder, ledger, evaluator,
                   resumed=ckpt, resumed_arrays=arrays)

    def initial_arrays(self) -> ArrayRecord:
        """The global adapter the first round starts from; a fresh run evaluates it as round 0."""
        start = self.resumed_arrays if self.resumed_arrays is not None else adapter_arrays(self.evaluator.model)
        initial = arrays_to_record(start)
        if self.resumed is None:
            self.evaluator(0, initial)
        return initial

    def save_checkpoint(self, server_round: int, arrays: ArrayRecord, *, client_level: dict | None,
                        strategy: dict, velocity: dict[str, np.ndarray] | None) -> None:
        """Checkpoint the state after ``server_round`` (the global adapter, the ledger position, the aggregation state)."""
        if server_round == self.cfg.faults.server_crash_round and not self.cfg.federation.resume:
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection: the worst moment to die
        self.ledger.seal_round(server_round)
        save_checkpoint(self.out, Checkpoint(
            run_id=self.run_id, round=server_round, adapter_file="", ledger_entries=len(self.ledger),
            ledger_head=self.ledger.head, client_level=client_level, strategy=strategy,
        ), record_to_arrays(arrays), velocity=velocity)

    def finish(self, final: ArrayRecord) -> None:
        """Save the final adapter and, when configured, audit it with canaries."""
        cfg, evaluator = self.cfg, self.evaluator
        load_adapter_arrays(evaluator.model, record_to_arrays(final))
        save_adapter(evaluator.model, self.out / "adapter", cfg.model, evaluator.labels, task=cfg.task.name)
        if cfg.audit.canaries > 0:  # empirical privacy audit of the final global model
            run_audit(cfg, evaluator.model, evaluator.tokenizer, evaluator.labels, self.out,
                      formal_epsilon=formal_epsilon_of(self.recorder.data, cfg.audit.canary_branch, cfg.dp.enabled),
                      delta=cfg.dp.delta)
