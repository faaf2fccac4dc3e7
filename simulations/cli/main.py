"""The ``fedbank`` command line: the friendly front door.

The one layer allowed to import both ``server`` and ``client``.  Each
subcommand parses its flags, validates them into a :class:`RunConfig` before
anything starts, calls the module that does the work, and turns any
:class:`FedbankError` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.config.overrides import parse_overrides
from common.config.run import RunConfig
from common.errors import FedbankError
from simulations.cli.desensitize import add_parser as add_desensitize_parser

APP_DIR = Path(__file__).resolve().parents[2]


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


def simulate_config(args: argparse.Namespace) -> dict[str, object]:
    """The run-config overrides a ``fedbank simulate`` call asks for."""
    cfg = {**run_overrides(args), "num-branches": args.branches, "min-train-branches": min(args.branches, 2)}
    cfg.update(parse_overrides(args.set))
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
    out = cfg.output_dir
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]federated rounds"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        rounds = RoundProgress(progress, cfg.federation.num_rounds, args.verbose)
        result = simulate(APP_DIR, out, args.branches, dict(overrides),
                          num_cpus=args.cpus_per_branch, num_gpus=args.gpus_per_branch, on_line=rounds.on_line)
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


def deploy_local_config(args: argparse.Namespace) -> dict[str, object]:
    """The run-config overrides a ``fedbank deploy local`` call asks for (every branch trains by default)."""
    cfg = {**run_overrides(args), "min-train-branches": args.branches}
    cfg.update(parse_overrides(args.set))
    return cfg


def cmd_deploy_local(args: argparse.Namespace) -> int:
    """A real deployment on 127.0.0.1: SuperLink + N SuperNodes over TLS with node auth, one run."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from common.data.sources import load_corpus
    from simulations.deploy.orchestration import deploy_local

    if args.branches < 1:
        raise FedbankError("--branches must be at least 1")
    overrides = deploy_local_config(args)
    out = Path(args.out).expanduser().resolve()
    cfg = RunConfig.from_flower({**RunConfig().to_flower(), **overrides, "output-dir": str(out), "num-branches": args.branches})
    if cfg.data.source != "synthetic":
        load_corpus(cfg)  # fail now, with the data error, not inside a branch
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]federated rounds"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        rounds = RoundProgress(progress, cfg.federation.num_rounds, args.verbose)

        def on_event(text: str) -> None:
            progress.console.print(f"[dim]deploy[/dim] {text}", highlight=False, soft_wrap=True)

        result = deploy_local(out, args.branches, overrides, on_line=rounds.on_line, on_event=on_event, timeout=args.timeout)
    console.print(f"run {result.run_id} finished ({result.status}:{result.sub_status}) over TLS with SuperNode authentication: outputs in {out}")
    console.print(f"  adapter      {out / 'adapter'}")
    console.print(f"  metrics      {out / 'metrics.json'}")
    console.print(f"  ledger       {out / 'ledger.jsonl'}")
    console.print(f"  logs         {out / 'logs'}")
    return 0


def cmd_deploy_superlink(args: argparse.Namespace) -> int:
    """Run the headquarters' SuperLink (TLS, node auth) with every branch's key registered, until Ctrl-C."""
    from simulations.deploy.hosts import serve_superlink
    from simulations.deploy.superlink import DEPLOYMENT_CONNECTION

    state = Path(args.state).expanduser().resolve()

    def on_ready(link) -> None:
        import json

        hosts = json.loads(link.keys.manifest.read_text(encoding="utf-8")).get("hosts", [])
        print(f"ready: branches run  fedbank deploy branch --superlink HOST:{args.fleet_port}  with HOST one of the "
              f"certificate's names: {', '.join(hosts)}")
        print(f"submit a run here with:  FLWR_HOME={link.flwr_home} flwr run <app dir> {DEPLOYMENT_CONNECTION} --stream --run-config \"...\"")
        print("Ctrl-C stops the SuperLink", flush=True)

    branches = [b.strip() for b in args.branches.split(",") if b.strip()] if args.branches else None
    serve_superlink(args.keys, state, fleet_host=args.host, fleet_port=args.fleet_port, control_host=args.control_host,
                    control_port=args.control_port, branch_ids=branches, on_event=lambda m: print(m, flush=True),
                    on_ready=on_ready)
    print("SuperLink stopped")
    return 0


def cmd_deploy_branch(args: argparse.Namespace) -> int:
    """Run one branch's SuperNode (TLS with the CA, authenticated with its key), until Ctrl-C."""
    from simulations.deploy.hosts import serve_branch
    from simulations.deploy.supernode import branch_id_for

    branch_id = branch_id_for(args.id)
    state = Path(args.state or Path("fedbank-state") / branch_id).expanduser().resolve()
    serve_branch(args.keys, branch_id, args.superlink, data_path=args.data, state_dir=state,
                 runtime_port=args.runtime_port, on_event=lambda m: print(m, flush=True))
    print(f"SuperNode of {branch_id} stopped")
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
    _federation_flags(sim, "number of simulated branches (default 3)",
                      "CSV/JSONL of labelled texts (default: the synthetic PII-planting generator)")
    sim.add_argument("--out", help="output directory (new)")
    sim.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run after its last checkpointed round")
    sim.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any run-config key, e.g. --set model.lora.rank=4")
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

    keys = sub.add_parser("keys", help="deployment key material")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kinit = ksub.add_parser("init", help="create CA, SuperLink TLS cert, SuperNode auth keys, server and branch keys")
    kinit.add_argument("--branches", type=int, required=True, help="number of branches (branch-0 .. branch-N-1)")
    kinit.add_argument("--out", required=True, help="directory for the keys")
    kinit.add_argument("--host", action="append", help="SuperLink host name or IP for the TLS certificate (repeatable)")
    kinit.add_argument("--force", action="store_true", help="overwrite existing keys")
    kinit.set_defaults(func=cmd_keys_init)

    deploy = sub.add_parser("deploy", help="real deployment: SuperLink and SuperNodes over TLS with node authentication")
    dsub = deploy.add_subparsers(dest="deploy_command", required=True)
    dlink = dsub.add_parser("superlink", help="run the headquarters' SuperLink and register every branch's key (until Ctrl-C)")
    dlink.add_argument("--keys", required=True, help="key directory from 'fedbank keys init' (needs ca/, superlink/, branches/*/supernode_auth.pub)")
    dlink.add_argument("--host", default="0.0.0.0", help="address the Fleet API (branches) listens on (default 0.0.0.0)")
    dlink.add_argument("--fleet-port", type=int, default=9092, help="Fleet API port, the one branches connect to (default 9092)")
    dlink.add_argument("--control-host", default="127.0.0.1", help="address of the Control/Runtime HTTPS API for flwr run (default 127.0.0.1)")
    dlink.add_argument("--control-port", type=int, default=9093, help="Control/Runtime HTTPS API port (default 9093)")
    dlink.add_argument("--branches", help="comma-separated branch ids to register (default: every branch in the key manifest)")
    dlink.add_argument("--state", default="fedbank-state/superlink", help="directory for FLWR_HOME, the SuperLink database and log (default fedbank-state/superlink)")
    dlink.set_defaults(func=cmd_deploy_superlink)

    dbranch = dsub.add_parser("branch", help="run one branch's SuperNode (until Ctrl-C)")
    dbranch.add_argument("--id", required=True, help="branch number K (branch-K) or branch id from the key manifest")
    dbranch.add_argument("--keys", required=True, help="key directory (needs ca/ca.crt, branches/<id>/, server/*.pub)")
    dbranch.add_argument("--data", required=True, help="the branch's own CSV/JSONL of labelled texts")
    dbranch.add_argument("--superlink", required=True, metavar="HOST:PORT", help="SuperLink Fleet API address; HOST must be in its TLS certificate")
    dbranch.add_argument("--state", help="directory for the branch's privacy state, FLWR_HOME and log (default fedbank-state/<id>)")
    dbranch.add_argument("--runtime-port", type=int, default=9094, help="local (127.0.0.1) Runtime API port of the SuperNode; distinct per SuperNode on one host (default 9094)")
    dbranch.set_defaults(func=cmd_deploy_branch)

    dlocal = dsub.add_parser("local", help="SuperLink + N SuperNodes on 127.0.0.1 over TLS with node auth; one run, then stop all")
    _federation_flags(dlocal, "number of branches (default 3)",
                      "CSV/JSONL partitioned into the branches' files (default: the synthetic generator)")
    dlocal.add_argument("--out", required=True, help="output directory (new): keys, branch data, logs, adapter, metrics, ledger")
    dlocal.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any run-config key, e.g. --set model.max-length=64")
    dlocal.add_argument("--timeout", type=float, default=3600.0, help="seconds the run may take (default 3600)")
    dlocal.add_argument("-v", "--verbose", action="store_true", help="echo Flower's full log")
    dlocal.set_defaults(func=cmd_deploy_local)
    return parser


def _federation_flags(parser: argparse.ArgumentParser, branches_help: str, data_help: str) -> None:
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
