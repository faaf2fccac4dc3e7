"""The headquarters' Flower ServerApp: a thin main that picks the round loop.

Reads the config, prepares the run (:class:`server.run.setup.ServerRun`: keys,
records, the initial adapter or the last checkpoint with ``resume``), runs the
rounds (:func:`server.run.rounds.run_rounds`) with the normal aggregation path
(:class:`server.run.standard_loop.StandardRounds`) or, with ``security.secagg``,
SecAgg+ (:class:`server.run.secagg_loop.SecAggRounds`), and finishes the run.
Its outputs, under ``output-dir``:

* ``adapter/`` -- the final adapter (PEFT ``save_pretrained``) plus its base recipe;
* ``metrics.json`` -- per round: held-out loss/accuracy/macro-F1, each branch's
  status and epsilon, failures, rejected updates, client-level epsilon;
* ``ledger.jsonl`` -- one hash-chained line per branch per round, signed by the branch;
* ``checkpoint/`` -- the state after the last completed round (normal path);
* ``audit.json`` -- the canary audit, when ``audit.canaries`` > 0.
"""

from __future__ import annotations

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from common.config.run import RunConfig
from server.flower_patches import install_fast_idle_poll
from server.run.rounds import run_rounds
from server.run.secagg_loop import SecAggRounds, check_supported, run_info
from server.run.setup import ServerRun
from server.run.standard_loop import StandardRounds

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run (or resume) the federation and write its outputs."""
    install_fast_idle_poll(grid)  # only under flwr-simulation: its engine polls every branch every 0.1 s
    cfg = RunConfig.from_flower(context.run_config)
    if cfg.security.secagg:
        check_supported(cfg)
        run = ServerRun.open(cfg, int(context.run_id), run_info=run_info())
        driver = SecAggRounds(run, grid, context)
    else:
        run = ServerRun.open(cfg, int(context.run_id))
        driver = StandardRounds(run, grid)
    run.finish(run_rounds(driver, run))
