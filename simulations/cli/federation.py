"""What ``fedbank simulate`` and ``fedbank deploy local`` share: the federation's flags, their run config, progress."""

from __future__ import annotations

import argparse
from pathlib import Path


def run_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The run-config overrides the data, DP and ``--set`` flags of simulate / deploy local ask for."""
    cfg: dict[str, object] = {"num-server-rounds": args.rounds}
    if args.task:
        cfg["task"] = args.task
        if args.task == "chat" and not any(item.strip().startswith("model.name") for item in args.set):
            cfg["model.name"] = "tiny-llama"  # the offline causal LM; tiny-bert cannot write replies
    if args.data:
        cfg["data.source"] = str(Path(args.data).expanduser().resolve())
    if args.text_column:
        cfg["data.text-column"] = args.text_column
    if args.label_column:
        cfg["data.label-column"] = args.label_column
    if args.no_dp:
        cfg["dp.enabled"] = False
    if args.epsilon is not None:
        cfg["dp.target-epsilon"] = args.epsilon
    return cfg


class RoundProgress:
    """A progress bar over the rounds, fed by the run's log lines (``fedbank round r/R: ...``)."""

    def __init__(self, progress, total: int, verbose: bool) -> None:
        self.progress, self.verbose = progress, verbose
        self.task = progress.add_task("rounds", total=total)
        self.shown: set[str] = set()  # Flower logs each line to two handlers; show it once

    def on_line(self, line: str) -> None:
        """Show round lines (once each) and advance the bar; echo everything else only when verbose."""
        if "fedbank round" in line:
            text = line[line.index("fedbank round"):]
            if text in self.shown:
                return
            self.shown.add(text)
            self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
            self.progress.update(self.task, completed=int(text.split()[2].split("/")[0]))
        elif self.verbose:
            self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)


def federation_flags(parser: argparse.ArgumentParser, branches_help: str, data_help: str) -> None:
    """The flags ``simulate`` and ``deploy local`` share: size, task, data and privacy of the federation."""
    parser.add_argument("--branches", type=int, default=3, help=branches_help)
    parser.add_argument("--rounds", type=int, default=3, help="federated rounds (default 3)")
    parser.add_argument("--task", choices=("intent", "credit", "fraud", "chat"),
                        help="what the model learns (default intent); chat uses the tiny-llama causal LM unless --set model.name=...")
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--text-column", help="text column of --data")
    parser.add_argument("--label-column", help="label column of --data")
    dp = parser.add_mutually_exclusive_group()
    dp.add_argument("--epsilon", type=float, help="target epsilon per branch over the whole run")
    dp.add_argument("--no-dp", action="store_true", help="non-private baseline (no DP-SGD)")
