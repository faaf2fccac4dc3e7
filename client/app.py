"""The branch's Flower ClientApp: thin handlers that read config, call the
branch helpers and build the reply.

``train``: load the global adapter, desensitize + tokenize the branch's data,
check the privacy budget, run one DP-SGD round, persist the accountant, and
reply with the adapter arrays, ``num-examples`` and the round's privacy
figures.  A branch whose budget would be exceeded replies
``status = budget-exhausted`` and does not train.
"""

from __future__ import annotations

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp

from client.branch_data import prepare_branch
from client.budget import PrivacyState, planned_noise_multiplier
from client.dp_training import round_plan, train_round
from common.config import RunConfig, branch_settings
from common.model import build_peft_model, load_adapter_arrays, load_tokenizer
from common.protocol import (
    STATUS_EXHAUSTED,
    STATUS_TRAINED,
    arrays_to_record,
    branch_record,
    privacy_metrics,
    record_to_arrays,
)

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train one round at this branch."""
    cfg = RunConfig.from_flower(context.run_config)
    branch = branch_settings(context.node_config, cfg)
    server_round = int(msg.content["config"]["server-round"])
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_branch(cfg, branch, tokenizer)
    n = len(data.train)

    state = PrivacyState.load(branch.state_dir, cfg.dp.accountant, cfg.dp.delta)
    plan = round_plan(cfg, n, noise_multiplier=0.0)
    if cfg.dp.enabled:
        noise = cfg.dp.noise_multiplier or planned_noise_multiplier(
            cfg.dp.target_epsilon, cfg.dp.delta, plan.sample_rate, plan.steps * cfg.federation.num_rounds, cfg.dp.accountant
        )
        plan.noise_multiplier = noise
        if state.epsilon_after(noise, plan.sample_rate, plan.steps) > cfg.dp.budget * (1 + 1e-9):
            metrics = privacy_metrics(cfg, examples=0, steps=0, sample_rate=plan.sample_rate, noise=noise,
                                      epsilon=state.epsilon, loss=0.0, pii_counts=data.pii_counts)
            content = RecordDict({"metrics": metrics, "branch": branch_record(branch.branch_id, cfg, STATUS_EXHAUSTED)})
            return Message(content=content, reply_to=msg)

    model = build_peft_model(cfg.model, len(data.labels), vocab_size=len(tokenizer))
    load_adapter_arrays(model, record_to_arrays(msg.content["arrays"]))
    seed = cfg.federation.seed * 100_003 + server_round * 1009 + (branch.partition_id or 0)
    outcome = train_round(model, data.train, cfg, plan, state.history, seed=seed)

    epsilon = 0.0
    if cfg.dp.enabled:
        epsilon = state.record_round(context.run_id, server_round, outcome.accountant_history, outcome.steps)
        state.save(branch.state_dir)
    metrics = privacy_metrics(cfg, examples=n, steps=outcome.steps, sample_rate=outcome.sample_rate,
                              noise=outcome.noise_multiplier, epsilon=epsilon, loss=outcome.mean_loss,
                              pii_counts=data.pii_counts)
    content = RecordDict({
        "arrays": arrays_to_record(outcome.arrays),
        "metrics": metrics,
        "branch": branch_record(branch.branch_id, cfg, STATUS_TRAINED),
    })
    return Message(content=content, reply_to=msg)
