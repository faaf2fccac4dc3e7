"""The branch's Flower ClientApp: a thin ``train`` handler over the branch helpers.

One round at a branch, in this order:

1. the branch's own policy (``branch-policy.toml``, :mod:`common.config.policy`)
   is checked against the round's run config *before any data is read*: a
   round that asks for less privacy than the policy allows is refused with a
   signed ``refused`` claim naming the rule, and nothing is spent;
2. a round it already answered (the server resumed after a crash) is answered
   again from the reply cache; a round it already trained, or one older than
   its latest for this run (a replayed message), is refused: never trained twice;
3. fault injection, only where the branch's policy enables it (tests);
4. the global adapter is opened -- verified against the server's signature
   when the envelope is on -- and the branch's data desensitized and tokenized;
5. the budget gate, at the branch's own budget (its policy's lifetime budget,
   tightened but never loosened by HQ's): a round that would pass it answers
   ``budget-exhausted``; a DP plan below the policy's floor is refused;
6. one DP-SGD round (Opacus), then the reply: the update sealed for the
   server, the privacy claim signed by the branch, cached, and the spend
   persisted before anything is sent.

Any error leaves the branch only as its public account (:mod:`client.outbound`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from client import reply_cache
from client.branch_data import prepare_branch
from client.outbound import guarded
from client.budget import PrivacyState, branch_lock
from client.training import round_plan, train_round
from client.testing.faults import maybe_fail, maybe_poison
from client.secagg import secagg_mod
from client.channel import BranchChannel
from common.config.policy import BranchPolicy
from common.errors import FedbankError
from common.config.run import BranchSettings, RunConfig, branch_settings
from common.wire.envelope import deserialize_arrays, serialize_arrays
from common.model.build import build_peft_model, load_tokenizer
from common.model.adapter import load_adapter_arrays
from common.wire.protocol import (
    STATUS_EXHAUSTED,
    STATUS_REFUSED,
    STATUS_TRAINED,
    arrays_to_record,
    branch_record,
    claim_bytes,
    privacy_claim,
    record_to_arrays,
    reply_metrics,
)
from common.model.device import resolve_device
from common.privacy.accounting import epsilon_of, planned_noise_multiplier

app = ClientApp(mods=[secagg_mod])  # SecAgg+ only for SecAgg+ messages (client/secagg.py)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train one round at this branch (or resend the reply of a round already trained)."""
    cfg = RunConfig.from_flower(context.run_config)
    branch = branch_settings(context.node_config, cfg)
    policy_file = context.node_config.get("policy-file")
    # One ClientApp at a time per branch: an orphan of a crashed run and the resumed run's
    # ClientApp must not both train a round (the second finds the first's cached reply).
    with branch_lock(branch.state_dir), guarded(branch.state_dir):
        policy = BranchPolicy.ensure(branch.state_dir, policy_file and str(policy_file))
        return _train(msg, cfg, branch, policy)


def _train(msg: Message, cfg: RunConfig, branch: BranchSettings, policy: BranchPolicy) -> Message:
    config = msg.content["config"]
    server_round, run_id = int(config["server-round"]), int(config["run-id"])
    channel = _channel(cfg, branch)

    def refuse(reason: str) -> Message:
        refusal = privacy_claim(cfg, run_id=run_id, server_round=server_round, branch_id=branch.branch_id,
                                status=STATUS_REFUSED, budget_epsilon=policy.budget(branch.budget_epsilon),
                                pii_counts={}, examples=0, steps=0, sample_rate=0.0, noise=0.0, epsilon=None,
                                reason=reason)
        return _refusal(msg, refusal, channel)

    violations = policy.violations(cfg)  # the run config alone: no data has been read
    if violations:
        return refuse(violations[0])
    state = PrivacyState.load(branch.state_dir, cfg.dp.accountant, cfg.dp.delta)
    policy.check_spent(state.epsilon, source=f"branch policy of {branch.branch_id}")

    cached = reply_cache.load(branch.state_dir, run_id, server_round)
    if cached is not None:
        if cfg.dp.enabled and cached.history and not state.has_round(run_id, server_round):
            state.record_round(run_id, server_round, cached.history, cached.steps)
            state.save(branch.state_dir)
        return _reply(msg, cached)
    latest = state.latest_round(run_id)
    if server_round <= latest:
        return refuse(f"replay: round {server_round} of this run is not after the latest this branch trained ({latest})")

    maybe_fail(policy, cfg.federation.seed, server_round, branch.branch_id, "before-train")
    return _train_round(msg, cfg, branch, policy, state, channel, refuse, server_round=server_round, run_id=run_id)


def _train_round(msg: Message, cfg: RunConfig, branch: BranchSettings, policy: BranchPolicy, state: PrivacyState,
                 channel: BranchChannel | None, refuse: Callable[[str], Message], *, server_round: int,
                 run_id: int) -> Message:
    if channel is not None and cfg.security.envelope:
        global_arrays = channel.open_global(msg.content["envelope"]["global"], run_id, server_round)
    else:
        global_arrays = record_to_arrays(msg.content["arrays"])
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch, tokenizer)
    n = len(data.train)
    budget = policy.budget(branch.budget_epsilon)

    def claim(status: str, **figures) -> dict:
        return privacy_claim(cfg, run_id=run_id, server_round=server_round, branch_id=branch.branch_id, status=status,
                             budget_epsilon=budget, pii_counts=data.pii_counts, **figures)

    plan = round_plan(cfg, n, noise_multiplier=0.0, server_round=server_round)
    if cfg.dp.enabled:
        plan.noise_multiplier = cfg.dp.noise_multiplier or planned_noise_multiplier(
            cfg.dp.target_epsilon, cfg.dp.delta, plan.sample_rate, plan.steps * cfg.federation.num_rounds, cfg.dp.accountant
        )
        run_epsilon = state.run_epsilon_after(run_id, plan.noise_multiplier, plan.sample_rate, plan.steps)
        broken = policy.plan_violations(plan.noise_multiplier, plan.sample_rate, run_epsilon)
        if broken:
            return refuse(broken[0])
        if state.epsilon_after(plan.noise_multiplier, plan.sample_rate, plan.steps) > budget * (1 + 1e-9):
            refusal = claim(STATUS_EXHAUSTED, examples=0, steps=0, sample_rate=plan.sample_rate,
                            noise=plan.noise_multiplier, epsilon=state.epsilon)
            return _refusal(msg, refusal, channel)

    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tokenizer), device=resolve_device(cfg),
                             causal=data.task.generative)
    load_adapter_arrays(model, global_arrays)
    seed = cfg.federation.seed * 100_003 + server_round * 1009 + zlib.crc32(branch.branch_id.encode("utf-8"))
    outcome = train_round(model, data.train, cfg, plan, state.history, seed=seed, class_weights=data.class_weights)
    update = maybe_poison(policy, branch.branch_id, outcome.arrays, global_arrays)

    epsilon = epsilon_of(outcome.accountant_history, cfg.dp.accountant, cfg.dp.delta) if cfg.dp.enabled else None
    trained = claim(STATUS_TRAINED, examples=n, steps=outcome.steps, sample_rate=outcome.sample_rate,
                    noise=outcome.noise_multiplier, epsilon=epsilon)
    sealed = channel is not None and cfg.security.envelope
    reply = reply_cache.CachedReply(
        run_id=run_id, round=server_round, claim=trained,
        signature=channel.sign(claim_bytes(trained)) if channel else None,
        examples=n, loss=outcome.mean_loss,
        update=channel.seal(update, run_id, server_round) if sealed else serialize_arrays(update),
        sealed=sealed,
        history=[list(h) for h in outcome.accountant_history], steps=outcome.steps,
    )
    _persist(branch, cfg, state, reply, plan)
    maybe_fail(policy, cfg.federation.seed, server_round, branch.branch_id, "after-train")
    return _reply(msg, reply)


def _persist(branch: BranchSettings, cfg: RunConfig, state: PrivacyState, reply: reply_cache.CachedReply,
             plan) -> None:  # noqa: ANN001 (plan: client.training's RoundPlan)
    """Cache the reply, then record the round (its spend with DP): a crash in between still leaves it adoptable."""
    reply_cache.save(branch.state_dir, reply)
    if cfg.dp.enabled:
        state.record_round(reply.run_id, reply.round, reply.history, reply.steps,
                           noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate)
    else:
        state.record_without_dp(reply.run_id, reply.round, reply.steps)
    state.save(branch.state_dir)


def _reply(msg: Message, reply: reply_cache.CachedReply) -> Message:
    content = RecordDict({
        "branch": branch_record(reply.claim, reply.signature),
        "metrics": reply_metrics(reply.examples, reply.loss),
    })
    if reply.sealed:
        content["envelope"] = ConfigRecord({"update": reply.update})
    else:
        content["arrays"] = arrays_to_record(deserialize_arrays(reply.update))
    return Message(content=content, reply_to=msg)


def _refusal(msg: Message, claim: dict, channel: BranchChannel | None) -> Message:
    content = RecordDict({
        "branch": branch_record(claim, channel.sign(claim_bytes(claim)) if channel else None),
        "metrics": reply_metrics(0, 0.0),
    })
    return Message(content=content, reply_to=msg)


def _channel(cfg: RunConfig, branch: BranchSettings) -> BranchChannel | None:
    """The branch's envelope keys: always with the envelope on; otherwise where they exist (to sign refusals)."""
    if cfg.security.envelope:
        return BranchChannel.load(branch.keys_dir, branch.branch_id, _max_bytes(cfg))
    try:
        return BranchChannel.load(branch.keys_dir, branch.branch_id, _max_bytes(cfg))
    except FedbankError:
        return None


def _max_bytes(cfg: RunConfig) -> int:
    return int(cfg.security.max_update_mb * 1024 * 1024)
