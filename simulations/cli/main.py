"""The ``fedbank`` command line: the friendly front door.

The one layer allowed to import both ``server`` and ``client``.  Each
subcommand parses its flags, validates them into a :class:`RunConfig` before
anything starts, calls the module that does the work, and turns any
:class:`FedbankError` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from common.config.overrides import parse_overrides
from common.config.policy import BranchPolicy
from common.config.run import RunConfig
from common.errors import FedbankError
from simulations.cli.branch import add_parser as add_branch_parser
from simulations.cli.deploy import add_keys_parser, add_parser as add_deploy_parser
from simulations.cli.desensitize import add_parser as add_desensitize_parser
from simulations.cli.federation import RoundProgress, federation_flags, run_overrides

APP_DIR = Path(__file__).resolve().parents[2]


def simulate_config(args: argparse.Namespace) -> dict[str, object]:
    """The run-config overrides a ``fedbank simulate`` call asks for."""
    cfg = {**run_overrides(args), "num-branches": args.branches, "min-train-branches": min(args.branches, 2)}
    cfg.update(parse_overrides(args.set))
    return cfg


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run a simulated federation and report where its outputs are."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulations.local.preflight import preflight
    from simulations.local.runner import simulate

    if args.resume:
        overrides = resume_config(Path(args.resume))
        args.branches, args.out = int(overrides["num-branches"]), args.resume
        cfg = RunConfig.from_flower(overrides)
    else:
        if not args.out:
            raise FedbankError("simulate needs --out DIR (a new directory), or --resume RUN_DIR")
        overrides = simulate_config(args)
        cfg = RunConfig.from_flower({**RunConfig().to_flower(), **overrides, "output-dir": str(args.out)})
        preflight(cfg)  # data, labels, keys, model, --out: fail now, in one line, before Flower starts
        if (cfg.output_dir / "ledger.jsonl").exists():
            raise FedbankError(f"output directory {cfg.output_dir} already holds a run (ledger.jsonl): choose a new --out or --resume it")
    policy = Path(args.branch_policy).expanduser().resolve() if args.branch_policy else None
    if policy is not None:
        BranchPolicy.load(policy)  # a bad policy file: one line now, before Flower starts
    elif not cfg.dp.enabled and not args.resume:
        # In simulation one person owns every branch: --no-dp is their branches' policy too, said out loud.
        policy = cfg.output_dir / "simulated-branch-policy.toml"
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(dataclasses.replace(BranchPolicy(), dp_required=False).to_toml(), encoding="utf-8")
        print(f"fedbank: the simulated branches' policy allows training without DP ({policy})", file=sys.stderr)
    out = cfg.output_dir
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]federated rounds"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        rounds = RoundProgress(progress, cfg.federation.num_rounds, args.verbose)
        result = simulate(APP_DIR, out, args.branches, dict(overrides), num_cpus=args.cpus_per_branch,
                          num_gpus=args.gpus_per_branch, on_line=rounds.on_line, branch_policy=policy)
    console.print(f"run {result.run_id} finished: outputs in {out}")
    console.print(f"  adapter      {out / 'adapter'}")
    console.print(f"  metrics      {out / 'metrics.json'}")
    console.print(f"  ledger       {out / 'ledger.jsonl'}")
    return 0


def resume_config(run_dir: Path) -> dict[str, object]:
    """The run config of an interrupted run, to continue it after its last checkpoint."""
    import json

    metrics = run_dir / "metrics.json"
    if not (run_dir / "checkpoint" / "checkpoint.json").exists() or not metrics.exists():
        raise FedbankError(f"{run_dir} has no checkpoint/checkpoint.json and metrics.json: nothing to resume")
    config = dict(json.loads(metrics.read_text(encoding="utf-8"))["config"])
    config.update({"resume": True, "output-dir": str(run_dir.resolve())})
    return config


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    """Verify a ledger against the trust anchor the reviewer states; print exactly what was proven.

    Exit 0: everything verified; 2: nothing wrong, but less was proven (reason printed); 1: a bad line.
    """
    from server.records.ledger_proof import VERIFIED, prove_ledger

    proof = prove_ledger(Path(args.ledger), server_fingerprint=args.server_fingerprint, server_key_file=args.server_key)
    verdict = {VERIFIED: "OK", "not-verified": "NOT VERIFIED", "failed": "FAIL"}[proof.status]
    print(f"{verdict}: {proof.reason or 'every line verified against the stated server key'}")
    for statement in proof.statements:
        print(f"  {statement}")
    return {VERIFIED: 0, "not-verified": 2, "failed": 1}[proof.status]


def cmd_report(args: argparse.Namespace) -> int:
    """Write the compliance reviewer's report of a run directory (HTML, JSON or CSV)."""
    from server.report.build import infer_format, write_report

    fmt = infer_format(args.out, args.format)
    out = write_report(Path(args.run_dir), Path(args.out), fmt, server_fingerprint=args.server_fingerprint,
                       server_key_file=args.server_key)
    print(f"{fmt} report of {args.run_dir} written to {out}")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Answer prompts with a chat adapter (desensitizing each prompt first)."""
    from simulations.cli.chat import chat_session

    return chat_session(Path(args.adapter), base=args.base, prompts=args.prompt, max_new_tokens=args.max_new_tokens,
                        device=args.device)


def cmd_keys_init(args: argparse.Namespace) -> int:
    """Create the CA, TLS, SuperNode-auth, server and branch keys of a deployment."""
    from common.keys.fingerprint import key_fingerprint
    from common.keys.layout import load_ed25519_public
    from common.keys.provision import init_keys

    hosts = args.host or ["127.0.0.1", "localhost"]
    layout = init_keys(Path(args.out), args.branches, hosts=hosts, force=args.force)
    print(f"keys for {len(layout.branch_ids)} branches written to {layout.root} (private keys mode 0600)")
    fingerprint = key_fingerprint(load_ed25519_public(layout.server_ed25519_pub))
    print(f"  server signing key fingerprint: {fingerprint} (give it to the reviewer: ledger verify --server-fingerprint)")
    print(f"  SuperLink TLS: {layout.superlink_cert} (SANs: {', '.join(hosts)}), CA: {layout.ca_cert}")
    return 0


def _add_anchor_arguments(parser: argparse.ArgumentParser) -> None:
    """The trust anchor a reviewer states for a ledger (``ledger verify`` and ``report``)."""
    parser.add_argument("--server-fingerprint", metavar="SHA256:...",
                        help="fingerprint of the server's signing key, as `fedbank keys init` printed it")
    parser.add_argument("--server-key", metavar="FILE",
                        help="the server's Ed25519 public key (PEM) you hold, e.g. from keys/server/ed25519.pub "
                             "copied when the keys were made")


def _add_ledger_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``fedbank ledger verify``: the reviewer states the anchor; a keys/ folder beside the ledger is never trusted."""
    ledger = sub.add_parser("ledger", help="privacy ledger tools")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True)
    verify = lsub.add_parser(
        "verify", help="verify a ledger.jsonl: hash chain, server and branch signatures, signed head",
        description="Checks a ledger against the server key the reviewer states (never a keys/ folder beside it); "
                    "branch keys come from the ledger's server-signed head lines. Exit 0: all verified; "
                    "2: nothing wrong, but less was proven (printed); 1: a bad line.")
    verify.add_argument("ledger", help="path to ledger.jsonl")
    _add_anchor_arguments(verify)
    verify.set_defaults(func=cmd_ledger_verify)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="fedbank", description="Privacy-preserving federated LoRA fine-tuning for bank branches.")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="simulate N branches on this machine (Flower simulation engine)")
    federation_flags(sim, "number of simulated branches (default 3)",
                      "CSV/JSONL of labelled texts (default: the synthetic PII-planting generator)")
    sim.add_argument("--out", help="output directory (new)")
    sim.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run after its last checkpointed round")
    sim.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any run-config key, e.g. --set model.lora.rank=4")
    sim.add_argument("--branch-policy", metavar="FILE", help="a branch policy (TOML) every simulated branch enforces "
                     "(default: each writes the safe defaults)")
    sim.add_argument("--cpus-per-branch", type=float, default=1.0, help="CPUs reserved per simulated branch (default 1)")
    sim.add_argument("--gpus-per-branch", type=float, default=0.0,
                     help="GPUs reserved per simulated branch, fractional to share one (e.g. 0.25); default 0")
    sim.add_argument("-v", "--verbose", action="store_true", help="echo Flower's full log")
    sim.set_defaults(func=cmd_simulate)

    _add_ledger_parser(sub)

    report = sub.add_parser("report", help="compliance report of a run: epsilon per branch, ledger check, utility")
    report.add_argument("run_dir", help="the run's output directory (holds metrics.json and ledger.jsonl)")
    report.add_argument("--out", required=True, help="file to write, e.g. report.html")
    report.add_argument("--format", choices=("html", "json", "csv"),
                        help="html (one self-contained page), json or csv; default: from --out's suffix, else html")
    _add_anchor_arguments(report)
    report.set_defaults(func=cmd_report)

    chat = sub.add_parser("chat", help="answer prompts with a chat adapter (task chat); prompts are desensitized first")
    chat.add_argument("--adapter", required=True, help="adapter directory of a chat run (RUN_DIR/adapter)")
    chat.add_argument("--base", help="hub id or local path of the base model, if not where the run recorded it")
    chat.add_argument("--prompt", action="append", help="a customer message (repeatable); default: read one per line from stdin")
    chat.add_argument("--max-new-tokens", type=int, default=128, help="most tokens per reply (default 128)")
    chat.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run the model (default auto)")
    chat.set_defaults(func=cmd_chat)

    add_desensitize_parser(sub)
    add_deploy_parser(sub)
    add_branch_parser(sub)

    keys = sub.add_parser("keys", help="deployment key material")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kinit = ksub.add_parser("init", help="create CA, SuperLink TLS cert, SuperNode auth keys, server and branch keys")
    kinit.add_argument("--branches", type=int, required=True, help="number of branches (branch-0 .. branch-N-1)")
    kinit.add_argument("--out", required=True, help="directory for the keys")
    kinit.add_argument("--host", action="append", help="SuperLink host name or IP for the TLS certificate (repeatable)")
    kinit.add_argument("--force", action="store_true", help="overwrite existing keys")
    kinit.set_defaults(func=cmd_keys_init)
    add_keys_parser(ksub)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedbank`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FedbankError as err:
        print(f"fedbank: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fedbank: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
