"""Base model, tokenizer and the trained part (``model.peft``): built identically on every node.

The adapter as arrays and on disk is :mod:`common.model.adapter`.

Every node builds the *identical* frozen base model: either a Hugging Face
model by hub id or local path -- a sequence classifier for the classification
tasks, a causal LM (``causal=True``) for ``task = chat`` -- or, offline, a small
model built from a config under a fixed seed (``model.name`` = ``tiny-bert``,
``tiny-llama`` or ``tiny-gpt2``), paired with ByT5's byte-level tokenizer, which
needs no vocabulary file.  Only the method's trainable tensors (the adapter of
:mod:`common.model.methods`, and a classifier's task head) train and travel
(:mod:`common.model.adapter`).  LoRA targets default to PEFT's
per-architecture choice (BERT ``query,value``, Llama ``q_proj,v_proj``, GPT-2
``c_attn``).

A classifier reads a text either through its architecture's own head
(``model.pooling = head``: BERT's first token and pooler) or, for sentence
encoders, through :class:`MeanPoolClassifier` (``mean``): a linear head on the
mean of the last hidden states over real tokens, the representation such
models are trained to produce.  ``auto`` picks ``mean`` for a
sentence-transformers directory whose pooling config says it mean-pools.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from common.config.sections import ModelConfig
from common.errors import ModelError
from common.model.methods import apply_method, check_method
from common.model.pretrained import is_known, model_source

TINY_MODELS = ("tiny-bert", "tiny-llama", "tiny-gpt2")
#: Tiny models that are causal LMs (``task = chat``); tiny-bert is an encoder only.
TINY_CAUSAL = ("tiny-llama", "tiny-gpt2")
_PAD, _EOS = 0, 1  # ByT5's pad and end-of-sequence ids


def is_tiny(mcfg: ModelConfig) -> bool:
    """True when one of the offline tiny models is requested."""
    return mcfg.name in TINY_MODELS


def load_tokenizer(mcfg: ModelConfig):
    """The tokenizer of the base model (byte-level ByT5 for the tiny model)."""
    from transformers import AutoTokenizer, ByT5Tokenizer

    if is_tiny(mcfg):
        return ByT5Tokenizer()
    _check_model_source(mcfg.name)
    try:
        tok = AutoTokenizer.from_pretrained(model_source(mcfg.name))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load the tokenizer of model.name '{mcfg.name}': {str(err).splitlines()[0]}") from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def tiny_config(mcfg: ModelConfig, vocab_size: int | None, num_labels: int):
    """The transformers config of tiny model ``mcfg.name``: random init, sized by ``model.tiny.*``."""
    from transformers import BertConfig, GPT2Config, LlamaConfig

    vocab = vocab_size or 384
    positions = max(512, mcfg.max_length)
    h, layers, heads = mcfg.hidden_size, mcfg.layers, mcfg.heads
    if mcfg.name == "tiny-llama":
        return LlamaConfig(vocab_size=vocab, hidden_size=h, intermediate_size=4 * h, num_hidden_layers=layers,
                           num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=positions,
                           num_labels=num_labels, pad_token_id=_PAD, bos_token_id=_EOS, eos_token_id=_EOS,
                           tie_word_embeddings=True)
    if mcfg.name == "tiny-gpt2":
        return GPT2Config(vocab_size=vocab, n_embd=h, n_layer=layers, n_head=heads, n_positions=positions,
                          num_labels=num_labels, pad_token_id=_PAD, bos_token_id=_EOS, eos_token_id=_EOS)
    return BertConfig(vocab_size=vocab, hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=4 * h, max_position_embeddings=positions, num_labels=num_labels, pad_token_id=_PAD)


class MeanPoolClassifier(torch.nn.Module):
    """A sequence classifier: mean of the encoder's last hidden states over real tokens, then a linear head.

    Sentence encoders (sentence-transformers) are trained so that this mean is
    the text's representation; their first-token output and BERT's pooler are
    not.  The head is named ``classifier`` so PEFT trains and saves it with the
    adapter, as it does the head of a transformers sequence classifier.
    """

    def __init__(self, encoder, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.config.num_labels = num_labels
        self.classifier = torch.nn.Linear(self.config.hidden_size, num_labels)
        std = getattr(self.config, "initializer_range", 0.02)
        torch.nn.init.normal_(self.classifier.weight, std=std)
        torch.nn.init.zeros_(self.classifier.bias)

    def embed(self, input_ids, attention_mask=None) -> torch.Tensor:
        """The mean of the last hidden states over real tokens: what the head reads."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids=None, attention_mask=None, labels=None, **_ignored):
        from transformers.modeling_outputs import SequenceClassifierOutput

        logits = self.classifier(self.embed(input_ids, attention_mask))
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def resolve_pooling(mcfg: ModelConfig, causal: bool = False) -> str:
    """``head`` or ``mean``: ``model.pooling``, with ``auto`` decided from the model directory.

    ``auto`` is ``mean`` for a local sentence-transformers directory whose
    ``1_Pooling/config.json`` sets ``pooling_mode_mean_tokens`` (all-MiniLM,
    all-mpnet, ...), else ``head`` (a hub id is not looked up: no network).
    A causal LM (``task = chat``) has no classifier: always ``head``.
    """
    if causal:
        return "head"
    if mcfg.pooling != "auto":
        return mcfg.pooling
    if is_tiny(mcfg):
        return "head"
    pooling_file = Path(model_source(mcfg.name)).expanduser() / "1_Pooling" / "config.json"
    try:
        settings = json.loads(pooling_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "head"
    return "mean" if isinstance(settings, dict) and settings.get("pooling_mode_mean_tokens") else "head"


def _auto_class(causal: bool):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return AutoModelForCausalLM if causal else AutoModelForSequenceClassification


def build_base_model(mcfg: ModelConfig, num_labels: int, vocab_size: int | None = None, causal: bool = False):
    """Build the frozen base model; identical on every node for the same config.

    ``causal``: a causal LM (``task = chat``; ``num_labels`` is ignored) instead
    of a sequence classifier.
    """
    from transformers import AutoModel

    check_architecture(mcfg, causal)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(mcfg.seed)  # tiny: the whole model; a loaded classifier: its fresh task head
    try:
        mean = resolve_pooling(mcfg, causal) == "mean"
        if is_tiny(mcfg):
            config = tiny_config(mcfg, vocab_size, num_labels)
            model = (MeanPoolClassifier(AutoModel.from_config(config), num_labels) if mean
                     else _auto_class(causal).from_config(config))
        else:
            _check_model_source(mcfg.name)
            source = model_source(mcfg.name)
            kwargs = {} if causal else {"num_labels": num_labels, "ignore_mismatched_sizes": True}
            try:
                model = (MeanPoolClassifier(AutoModel.from_pretrained(source), num_labels) if mean
                         else _auto_class(causal).from_pretrained(source, **kwargs))
            except (OSError, ValueError) as err:
                raise ModelError(f"cannot load model.name '{mcfg.name}': {str(err).splitlines()[0]}") from err
    finally:
        torch.random.set_rng_state(generator_state)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id if model.config.eos_token_id is not None else 0
    for param in model.parameters():
        param.requires_grad_(False)
    model.eval()
    return model


def check_architecture(mcfg: ModelConfig, causal: bool) -> None:
    """Refuse an offline tiny model that cannot do the task (tiny-bert is not a causal LM)."""
    if causal and is_tiny(mcfg) and mcfg.name not in TINY_CAUSAL:
        raise ModelError(f"task 'chat' needs a causal LM but model.name is '{mcfg.name}' (an encoder): "
                         f"set model.name to {' or '.join(TINY_CAUSAL)}, or to a causal LM's hub id or local path")


def build_peft_model(mcfg: ModelConfig, num_labels: int, vocab_size: int | None = None, device: str = "cpu",
                     causal: bool = False, label_names: list[str] | None = None):
    """Base model moved to ``device`` first, then made trainable by ``model.peft`` (:mod:`common.model.methods`).

    With ``model.head-init = label-names`` and ``label_names`` given, the head
    starts from the label names (:func:`init_head_from_label_names`) before
    PEFT copies it into the adapter; the server's initial adapter carries it to
    every branch.
    """
    check_head_init(mcfg, causal)
    base = build_base_model(mcfg, num_labels, vocab_size, causal=causal).to(device)
    if mcfg.head_init == "label-names" and label_names is not None:
        init_head_from_label_names(base, load_tokenizer(mcfg), label_names, mcfg.head_init_scale, mcfg.max_length)
    check_method(mcfg, causal, base.config.model_type, resolve_pooling(mcfg, causal), is_encoder(base.config))
    return apply_method(mcfg, base, causal)


def check_head_init(mcfg: ModelConfig, causal: bool = False) -> None:
    """``model.head-init = label-names`` needs a classifier (not ``task = chat``) that mean-pools; no model is loaded."""
    if mcfg.head_init != "label-names":
        return
    if causal:
        raise ModelError("model.head-init = label-names starts a classifier's head, and task 'chat' has none: "
                         "set model.head-init = random")
    pooling = resolve_pooling(mcfg)
    if pooling != "mean":
        raise ModelError(f"model.head-init = label-names needs model.pooling = mean ('{mcfg.name}' resolves to "
                         f"'{pooling}'): set model.pooling = mean, or model.head-init = random")


def label_text(name: str) -> str:
    """A label name as words: 'card_arrival' -> 'card arrival'."""
    return " ".join(name.replace("_", " ").replace("-", " ").split()) or name


@torch.no_grad()
def init_head_from_label_names(model: "MeanPoolClassifier", tokenizer, labels: list[str], scale: float,
                               max_length: int) -> None:
    """Row k of the head = ``scale`` x the unit embedding of label k's name / the names' mean embedding length.

    A text's logit for label k is then about ``scale`` x cos(text, name k): a
    zero-shot classifier before any training, built only from the label set
    (public, identical on every node), so it spends no privacy.  Bias = 0.
    """
    if len(labels) != model.classifier.out_features:
        raise ModelError(f"{len(labels)} label names for a head with {model.classifier.out_features} outputs")
    device = model.classifier.weight.device
    batch = tokenizer([label_text(name) for name in labels], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
    was_training = model.training
    model.eval()
    names = model.embed(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float()
    model.train(was_training)
    lengths = names.norm(dim=1, keepdim=True).clamp(min=1e-12)
    weight = scale * (names / lengths) / lengths.mean()
    model.classifier.weight.copy_(weight.to(model.classifier.weight.dtype))
    model.classifier.bias.zero_()


#: Encoder-only architectures: transformers gives them an LM head, but they attend to later tokens, so they cannot write replies.
ENCODER_TYPES = frozenset({"bert", "roberta", "xlm-roberta", "electra", "camembert", "deberta", "deberta-v2", "distilbert",
                           "albert", "mpnet", "ernie", "roformer", "megatron-bert", "modernbert"})


def is_encoder(config) -> bool:
    """True for an encoder-only architecture (no causal attention, no key-value cache)."""
    return config.model_type in ENCODER_TYPES and not getattr(config, "is_decoder", False)


_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
_MODEL_FIX = "give a directory saved with save_pretrained, a hub id, or one of 'tiny-bert', 'tiny-llama', 'tiny-gpt2'"


def check_base_model(mcfg: ModelConfig, causal: bool = False) -> None:
    """Check, without loading weights, that ``model.name`` can be built.

    A tiny model always can (tiny-bert only as a classifier).  A local path
    must be a directory holding a readable ``config.json`` of an architecture
    with a sequence-classification head (``causal``: a causal-LM head), weight
    files, and a loadable tokenizer.  A hub id is not checked here
    (that needs the network); loading it later raises :class:`ModelError`.

    Raises:
        ModelError: one line naming the path and the fix.
    """
    if is_tiny(mcfg):
        with warnings.catch_warnings():  # a check: keep library deprecation notes off the user's terminal
            warnings.simplefilter("ignore", FutureWarning)
            build_peft_model(mcfg, 2, causal=causal)  # small and offline; checks model.lora.target-modules
        return
    _check_model_source(mcfg.name)
    path = Path(model_source(mcfg.name)).expanduser()
    if not path.exists():
        return  # a hub id
    if not path.is_dir():
        raise ModelError(f"model.name path '{mcfg.name}' is a file, not a model directory: {_MODEL_FIX}")
    if not (path / "config.json").is_file():
        raise ModelError(f"model.name path '{mcfg.name}' has no config.json, so it is not a saved model: {_MODEL_FIX}")
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING, MODEL_MAPPING, AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"cannot read the config.json of model.name '{mcfg.name}' ({first}): {_MODEL_FIX}") from err
    if causal and (type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING or is_encoder(config)):
        raise ModelError(f"model.name '{mcfg.name}' is a '{config.model_type}' model, not a causal LM (decoder): "
                         f"task 'chat' needs a causal LM (e.g. Llama, GPT-2) or {' / '.join(TINY_CAUSAL)}")
    mean = resolve_pooling(mcfg, causal) == "mean"
    if mean and type(config) not in MODEL_MAPPING:
        raise ModelError(f"model.name '{mcfg.name}' is a '{config.model_type}' model transformers cannot load as an encoder "
                         "(AutoModel): give a transformer encoder for model.pooling 'mean'")
    if not causal and not mean and type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
        raise ModelError(
            f"model.name '{mcfg.name}' is a '{config.model_type}' model without a sequence-classification head in "
            f"transformers: give a sequence-classification model (e.g. BERT, RoBERTa) or 'tiny-bert'"
        )
    if not any(next(path.glob(pattern), None) for pattern in _WEIGHT_PATTERNS):
        raise ModelError(f"model.name path '{mcfg.name}' has no weight files (*.safetensors or *.bin): {_MODEL_FIX}")
    load_tokenizer(mcfg)
    with torch.device("meta"), warnings.catch_warnings():  # the architecture only: no weights read
        warnings.simplefilter("ignore", FutureWarning)
        skeleton = MeanPoolClassifier(AutoModel.from_config(config), 2) if mean else _auto_class(causal).from_config(config)
        check_method(mcfg, causal, config.model_type, resolve_pooling(mcfg, causal), is_encoder(config))
        apply_method(mcfg, skeleton, causal)


def _check_model_source(name: str) -> None:
    """Fail early, with a clear message, on a local path that does not exist."""
    if is_known(name):
        return  # resolved and verified by common.model.pretrained
    looks_local = name.startswith((".", "/", "~")) or Path(name).expanduser().exists()
    if looks_local and not Path(name).expanduser().exists():
        raise ModelError(f"model.name path '{name}' does not exist: {_MODEL_FIX.replace('give a', 'give an existing', 1)}")
