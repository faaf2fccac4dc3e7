"""``fedbank deploy``: the SuperLink at headquarters, one SuperNode per branch, a signed run, or all of it on 127.0.0.1.

Also ``fedbank keys app-signing-init`` (:func:`add_keys_parser`): the key that
approves the code branches run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.config.overrides import parse_overrides
from common.config.run import RunConfig
from common.errors import FedbankError
from simulations.cli.federation import RoundProgress, federation_flags, run_overrides


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
        print(f"on this host (the Control API listens on {link.control_address}), submit a signed run with:  "
              f"fedbank deploy run --keys {args.keys} --control {link.control_address} "
              f"--signing-key <approver's app-signing key> [--rounds R] [--set key=value]")
        print(f"(raw, unsigned: FLWR_HOME={link.flwr_home} flwr run <app dir> {DEPLOYMENT_CONNECTION} --stream; "
              "branches that trust an app-signing key refuse it)")
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
    if args.allow_unsigned_apps and args.trust_app_key:
        raise FedbankError("--allow-unsigned-apps and --trust-app-key contradict each other: give one")
    trusted = [] if args.allow_unsigned_apps else ([Path(p).expanduser() for p in args.trust_app_key] or None)
    serve_branch(args.keys, branch_id, args.superlink, data_path=args.data, state_dir=state,
                 runtime_port=args.runtime_port, on_event=lambda m: print(m, flush=True),
                 policy_file=Path(args.policy).expanduser().resolve() if args.policy else None,
                 trusted_app_keys=trusted)
    print(f"SuperNode of {branch_id} stopped")
    return 0


def cmd_deploy_run(args: argparse.Namespace) -> int:
    """Build the app bundle, sign it, submit it to the SuperLink, stream it; exit 0 only if it completed."""
    from common.keys.app_signing import AppSigningKeys
    from common.keys.layout import KeyLayout, require_key_files
    from simulations.deploy.runs import hq_connection, start_run, wait_run

    keys = KeyLayout.from_dir(args.keys)
    require_key_files([keys.ca_cert], "fedbank deploy run")
    key = Path(args.signing_key).expanduser() if args.signing_key else AppSigningKeys.in_keys_dir(args.keys).private
    app = Path(args.app).expanduser().resolve() if args.app else Path(__file__).resolve().parents[2]
    if not (app / "pyproject.toml").is_file():
        raise FedbankError(f"--app {app} is not a Flower app (no pyproject.toml)")
    overrides: dict[str, object] = {} if args.rounds is None else {"num-server-rounds": args.rounds}
    overrides.update(parse_overrides(args.set))
    link = hq_connection(Path(args.state).expanduser(), args.control, keys.ca_cert)
    run = start_run(link, app, overrides, link.log_path, on_line=lambda line: print(line, flush=True), signing_key=key)
    result = wait_run(run, args.timeout)
    print(f"run {result.run_id} finished ({result.status}:{result.sub_status})")
    return 0


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``fedbank deploy superlink | branch | local``."""
    deploy = sub.add_parser("deploy", help="real deployment: SuperLink and SuperNodes over TLS with node authentication")
    dsub = deploy.add_subparsers(dest="deploy_command", required=True)
    dlink = dsub.add_parser("superlink", help="run the headquarters' SuperLink and register every branch's key (until Ctrl-C)")
    dlink.add_argument("--keys", required=True, help="key directory from 'fedbank keys init' (needs ca/, superlink/, branches/*/supernode_auth.pub)")
    dlink.add_argument("--host", default="0.0.0.0", help="address the Fleet API (branches) listens on (default 0.0.0.0)")
    dlink.add_argument("--fleet-port", type=int, default=9092, help="Fleet API port, the one branches connect to (default 9092)")
    dlink.add_argument("--control-host", default="127.0.0.1", help="address of the Control/Runtime HTTPS API (default 127.0.0.1: "
                       "`fedbank deploy run` and `flwr run` then run on this host)")
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
    dbranch.add_argument("--policy", help="the branch's own policy (TOML; default <state>/branch-policy.toml, written "
                         "with safe defaults on first start): what HQ's run config may not loosen")
    dbranch.add_argument("--runtime-port", type=int, default=9094, help="local (127.0.0.1) Runtime API port of the SuperNode; distinct per SuperNode on one host (default 9094)")
    dbranch.add_argument("--trust-app-key", action="append", default=[], metavar="PUB",
                         help="app-signing public key whose signed apps this branch runs (repeatable; "
                              "default <keys>/app-signing/ed25519.pub)")
    dbranch.add_argument("--allow-unsigned-apps", action="store_true",
                         help="run any app the SuperLink sends, signed or not (HQ's code then runs here unchecked)")
    dbranch.set_defaults(func=cmd_deploy_branch)

    drun = dsub.add_parser("run", help="build the app bundle, sign it, submit it to the SuperLink and stream it; "
                                       "exit non-zero unless the run completed")
    drun.add_argument("--keys", required=True, help="key directory (needs ca/ca.crt; default signing key app-signing/ed25519.key)")
    drun.add_argument("--app", help="the Flower app directory (default: this fedbank checkout)")
    drun.add_argument("--signing-key", help="the app-signing private key (default <keys>/app-signing/ed25519.key)")
    drun.add_argument("--control", default="127.0.0.1:9093", metavar="HOST:PORT",
                      help="the SuperLink's Control API; HOST must be in its certificate (default 127.0.0.1:9093)")
    drun.add_argument("--rounds", type=int, help="federated rounds (num-server-rounds)")
    drun.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any run-config key, e.g. --set dp.target-epsilon=4")
    drun.add_argument("--state", default="fedbank-state/hq-runs", help="directory for the flwr connection and the run's log")
    drun.add_argument("--timeout", type=float, default=3600.0, help="seconds the run may take (default 3600)")
    drun.set_defaults(func=cmd_deploy_run)

    dlocal = dsub.add_parser("local", help="SuperLink + N SuperNodes on 127.0.0.1 over TLS with node auth; one run, then stop all")
    federation_flags(dlocal, "number of branches (default 3)",
                      "CSV/JSONL partitioned into the branches' files (default: the synthetic generator)")
    dlocal.add_argument("--out", required=True, help="output directory (new): keys, branch data, logs, adapter, metrics, ledger")
    dlocal.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any run-config key, e.g. --set model.max-length=64")
    dlocal.add_argument("--timeout", type=float, default=3600.0, help="seconds the run may take (default 3600)")
    dlocal.add_argument("-v", "--verbose", action="store_true", help="echo Flower's full log")
    dlocal.set_defaults(func=cmd_deploy_local)
