"""The branch's Flower ClientApp: a thin ``train`` handler over the branch helpers.

One round at a branch:

1. a round it already answered (the server resumed after a crash) is answered
   again from the reply cache, never trained twice;
2. fault injection (``faults.*``, off by default) may fail it on purpose;
3. the global adapter is opened -- verified against the server's signature
   when the envelope is on -- and the branch's data desensitized and tokenized;
4. the budget gate: if the round would take the branch past its own budget it
   answers ``budget-exhausted`` and does not train;
5. one DP-SGD round (Opacus), then the reply: the update sealed for the
   server, the privacy claim signed by the branch, cached, and the accountant
   history persisted before anything is sent.
"""

from __future__ import annotations

import zlib

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from client import reply_cache
from client.branch_data import prepare_branch
from client.budget import PrivacyState, branch_lock
from client.training import round_plan, train_round
from client.testing.faults import maybe_fail, maybe_poison
from client.secagg import secagg_mod
from client.channel import BranchChannel
from common.config.run import BranchSettings, RunConfig, branch_settings
from common.wire.envelope import deserialize_arrays, serialize_arrays
from common.model.build import build_peft_model, load_tokenizer
from common.model.adapter import load_adapter_arrays
from common.wire.protocol import (
    STATUS_EXHAUSTED,
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
    # One ClientApp at a time per branch: an orphan of a crashed run and the resumed run's
    # ClientApp must not both train a round (the second finds the first's cached reply).
    with branch_lock(branch.state_dir):
        return _train(msg, cfg, branch)


def _train(msg: Message, cfg: RunConfig, branch: BranchSettings) -> Message:
    config = msg.content["config"]
    server_round, run_id = int(config["server-round"]), int(config["run-id"])
    channel = BranchChannel.load(branch.keys_dir, branch.branch_id, _max_bytes(cfg)) if cfg.security.envelope else None
    state = PrivacyState.load(branch.state_dir, cfg.dp.accountant, cfg.dp.delta)

    cached = reply_cache.load(branch.state_dir, run_id, server_round)
    if cached is not None:
        if cfg.dp.enabled and cached.history and not state.has_round(run_id, server_round):
            state.record_round(run_id, server_round, cached.history, cached.steps)
            state.save(branch.state_dir)
        return _reply(msg, cached)

    maybe_fail(cfg, server_round, branch.branch_id, "before-train")
    if channel is not None:
        global_arrays = channel.open_global(msg.content["envelope"]["global"], run_id, server_round)
    else:
        global_arrays = record_to_arrays(msg.content["arrays"])
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch, tokenizer)
    n = len(data.train)

    def claim(status: str, **figures) -> dict:
        return privacy_claim(cfg, run_id=run_id, server_round=server_round, branch_id=branch.branch_id, status=status,
                             budget_epsilon=branch.budget_epsilon, pii_counts=data.pii_counts, **figures)

    plan = round_plan(cfg, n, noise_multiplier=0.0)
    if cfg.dp.enabled:
        plan.noise_multiplier = cfg.dp.noise_multiplier or planned_noise_multiplier(
            cfg.dp.target_epsilon, cfg.dp.delta, plan.sample_rate, plan.steps * cfg.federation.num_rounds, cfg.dp.accountant
        )
        if state.epsilon_after(plan.noise_multiplier, plan.sample_rate, plan.steps) > branch.budget_epsilon * (1 + 1e-9):
            refusal = claim(STATUS_EXHAUSTED, examples=0, steps=0, sample_rate=plan.sample_rate,
                            noise=plan.noise_multiplier, epsilon=state.epsilon)
            return _refusal(msg, refusal, channel)

    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tokenizer), device=resolve_device(cfg),
                             causal=data.task.generative)
    load_adapter_arrays(model, global_arrays)
    seed = cfg.federation.seed * 100_003 + server_round * 1009 + zlib.crc32(branch.branch_id.encode("utf-8"))
    outcome = train_round(model, data.train, cfg, plan, state.history, seed=seed, class_weights=data.class_weights)
    update = maybe_poison(cfg, branch.branch_id, outcome.arrays, global_arrays)

    epsilon = epsilon_of(outcome.accountant_history, cfg.dp.accountant, cfg.dp.delta) if cfg.dp.enabled else None
    trained = claim(STATUS_TRAINED, examples=n, steps=outcome.steps, sample_rate=outcome.sample_rate,
                    noise=outcome.noise_multiplier, epsilon=epsilon)
    reply = reply_cache.CachedReply(
        run_id=run_id, round=server_round, claim=trained,
        signature=channel.sign(claim_bytes(trained)) if channel else None,
        examples=n, loss=outcome.mean_loss,
        update=channel.seal(update, run_id, server_round) if channel else serialize_arrays(update),
        sealed=channel is not None,
        history=[list(h) for h in outcome.accountant_history], steps=outcome.steps,
    )
    _persist(branch, cfg, state, reply)
    maybe_fail(cfg, server_round, branch.branch_id, "after-train")
    return _reply(msg, reply)


def _persist(branch: BranchSettings, cfg: RunConfig, state: PrivacyState, reply: reply_cache.CachedReply) -> None:
    """Cache the reply, then record the spend: a crash in between still leaves the spend adoptable."""
    reply_cache.save(branch.state_dir, reply)
    if cfg.dp.enabled:
        state.record_round(reply.run_id, reply.round, reply.history, reply.steps)
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


def _max_bytes(cfg: RunConfig) -> int:
    return int(cfg.security.max_update_mb * 1024 * 1024)
