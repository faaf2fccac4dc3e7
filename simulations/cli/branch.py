"""``fedbank branch``: what a branch operator runs on the branch's own host.

``fedbank branch policy --state DIR [--policy FILE]`` prints the policy the
branch enforces (its ``branch-policy.toml``, written with safe defaults at the
first call and never overwritten) and what it has spent so far, so an operator
can see exactly what HQ's run config may not loosen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common.config.policy import POLICY_FILE, BranchPolicy
from common.errors import ConfigError


def spent(state_dir: Path) -> tuple[float, int] | None:
    """(epsilon spent, rounds trained) from the branch's privacy state, or None when it has none."""
    from common.privacy.accounting import epsilon_of  # Opacus: only when there is a spend to compute

    path = Path(state_dir) / "privacy_state.json"
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        history = [tuple(h) for h in state["history"]]
        return epsilon_of(history, state["accountant"], state["delta"]), len(state["rounds"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"branch state {path} cannot be read ({type(exc).__name__}): restore it from a backup") from None


def cmd_policy(args: argparse.Namespace) -> int:
    """Print the branch's effective policy (and its spend so far)."""
    state = Path(args.state).expanduser().resolve()
    policy_file = Path(args.policy).expanduser().resolve() if args.policy else None
    policy = BranchPolicy.ensure(state, policy_file)
    where = policy_file or state / POLICY_FILE
    so_far = spent(state)
    if so_far is not None:
        policy.check_spent(so_far[0], source=f"branch policy {where}")
    print(f"# effective policy of the branch at {state} (from {where})")
    if so_far is not None:
        print(f"# spent so far: epsilon {so_far[0]:.4g} of {policy.lifetime_budget_epsilon:g} over {so_far[1]} round(s)")
    else:
        print(f"# spent so far: nothing (no privacy_state.json yet); lifetime budget {policy.lifetime_budget_epsilon:g}")
    print(policy.to_toml(), end="")
    return 0


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``fedbank branch policy``."""
    branch = sub.add_parser("branch", help="a branch operator's commands (its own policy)")
    bsub = branch.add_subparsers(dest="branch_command", required=True)
    show = bsub.add_parser("policy", help="print the policy this branch enforces and what it has spent")
    show.add_argument("--state", required=True, help="the branch's state directory (as given to 'fedbank deploy branch --state')")
    show.add_argument("--policy", help=f"the policy file (default: <state>/{POLICY_FILE}, written with safe defaults if absent)")
    show.set_defaults(func=cmd_policy)
