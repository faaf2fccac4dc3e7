"""Base model, tokenizer, LoRA adapter, and adapter arrays in and out.

Every node builds the *identical* frozen base model: either a Hugging Face
sequence-classification model by hub id or local path, or (offline default,
``model.name = "tiny-bert"``) a small BERT built from a config under a fixed
seed, paired with ByT5's byte-level tokenizer, which needs no vocabulary file.
Only the LoRA adapter and the task head train and travel; their wire form is
PEFT's adapter-only state dict (adapter-name-free keys) as numpy arrays.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from common.config import ModelConfig
from common.errors import ModelError

TINY_MODEL = "tiny-bert"
SPEC_FILE = "fedbank_model.json"


def is_tiny(mcfg: ModelConfig) -> bool:
    """True when the offline tiny model is requested."""
    return mcfg.name == TINY_MODEL


def load_tokenizer(mcfg: ModelConfig):
    """The tokenizer of the base model (byte-level ByT5 for the tiny model)."""
    from transformers import AutoTokenizer, ByT5Tokenizer

    if is_tiny(mcfg):
        return ByT5Tokenizer()
    _check_model_source(mcfg.name)
    try:
        tok = AutoTokenizer.from_pretrained(mcfg.name)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load the tokenizer of model.name '{mcfg.name}': {str(err).splitlines()[0]}") from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def build_base_model(mcfg: ModelConfig, num_labels: int, vocab_size: int | None = None):
    """Build the frozen base model; identical on every node for the same config."""
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

    if is_tiny(mcfg):
        config = BertConfig(
            vocab_size=vocab_size or 384,
            hidden_size=mcfg.hidden_size,
            num_hidden_layers=mcfg.layers,
            num_attention_heads=mcfg.heads,
            intermediate_size=4 * mcfg.hidden_size,
            max_position_embeddings=max(512, mcfg.max_length),
            num_labels=num_labels,
            pad_token_id=0,
        )
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(mcfg.seed)
        try:
            model = BertForSequenceClassification(config)
        finally:
            torch.random.set_rng_state(generator_state)
    else:
        _check_model_source(mcfg.name)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(mcfg.seed)  # the fresh task head is seeded too
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                mcfg.name, num_labels=num_labels, ignore_mismatched_sizes=True
            )
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot load model.name '{mcfg.name}': {str(err).splitlines()[0]}") from err
        finally:
            torch.random.set_rng_state(generator_state)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = model.config.eos_token_id or 0
    for param in model.parameters():
        param.requires_grad_(False)
    model.eval()
    return model


def build_peft_model(mcfg: ModelConfig, num_labels: int, vocab_size: int | None = None, device: str = "cpu"):
    """Base model moved to ``device`` first, then wrapped with a fresh LoRA adapter."""
    base = build_base_model(mcfg, num_labels, vocab_size).to(device)
    return _with_lora(mcfg, base)


def _with_lora(mcfg: ModelConfig, base):
    """``base`` wrapped with a fresh LoRA adapter (seeded: identical on every node)."""
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=mcfg.lora_rank,
        lora_alpha=mcfg.lora_alpha,
        lora_dropout=mcfg.lora_dropout,
        target_modules=mcfg.target_modules,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(mcfg.seed + 1)  # identical initial adapter on every node
    try:
        model = get_peft_model(base, lora)
    except ValueError as err:
        first = str(err).strip().split(". ")[0].rstrip(".") or type(err).__name__
        raise ModelError(
            f"cannot apply LoRA to '{mcfg.name}' with model.lora.target-modules '{mcfg.lora_target_modules}' ({first}): "
            "set model.lora.target-modules to module names of the model (e.g. 'query,value' for BERT), or empty for PEFT's default"
        ) from err
    finally:
        torch.random.set_rng_state(generator_state)
    return model


def unwrap(model):
    """The PEFT model inside an Opacus ``GradSampleModule`` (or the model itself)."""
    return getattr(model, "_module", model)


def adapter_arrays(model) -> dict[str, np.ndarray]:
    """The trainable adapter (LoRA + task head) as float32 numpy arrays."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(unwrap(model))
    return {k: v.detach().cpu().to(torch.float32).numpy().copy() for k, v in state.items()}


def load_adapter_arrays(model, arrays: Mapping[str, np.ndarray]) -> None:
    """Load adapter arrays into ``model``; the key set must match exactly."""
    from peft import set_peft_model_state_dict

    inner = unwrap(model)
    expected = adapter_arrays(inner)
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ModelError(f"adapter keys do not match the model (missing {missing[:3]}, unexpected {extra[:3]}): is every node using the same model config?")
    for key, value in arrays.items():
        if tuple(value.shape) != expected[key].shape:
            raise ModelError(f"adapter array '{key}' has shape {tuple(value.shape)}, the model expects {expected[key].shape}")
    device = next(inner.parameters()).device
    state = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)).to(device) for k, v in arrays.items()}
    set_peft_model_state_dict(inner, state)


def save_adapter(model, out_dir: Path, mcfg: ModelConfig, labels: list[str]) -> Path:
    """Save the adapter with PEFT ``save_pretrained`` plus the recipe of its base."""
    out_dir = Path(out_dir)
    unwrap(model).save_pretrained(str(out_dir))
    spec = {
        "model": {k: getattr(mcfg, k) for k in mcfg.__dataclass_fields__},
        "labels": labels,
    }
    (out_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2, ensure_ascii=False), encoding="utf-8")
    return out_dir


def load_saved_adapter(adapter_dir: Path, device: str = "cpu"):
    """Rebuild the base model from the saved recipe and load the adapter with PEFT.

    Returns ``(model, tokenizer, model_config, labels)``.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    spec_path = adapter_dir / SPEC_FILE
    if not spec_path.is_file():
        raise ModelError(f"'{adapter_dir}' is not a fedbank adapter directory ({SPEC_FILE} missing)")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    mcfg = ModelConfig(**spec["model"])
    labels = list(spec["labels"])
    tokenizer = load_tokenizer(mcfg)
    base = build_base_model(mcfg, len(labels), vocab_size=len(tokenizer)).to(device)
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    return model, tokenizer, mcfg, labels


_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
_MODEL_FIX = "give a directory saved with save_pretrained, a hub id, or 'tiny-bert'"


def check_base_model(mcfg: ModelConfig) -> None:
    """Check, without loading weights, that ``model.name`` can be built.

    'tiny-bert' always can.  A local path must be a directory holding a
    readable ``config.json`` of an architecture with a sequence-classification
    head, weight files, and a loadable tokenizer.  A hub id is not checked here
    (that needs the network); loading it later raises :class:`ModelError`.

    Raises:
        ModelError: one line naming the path and the fix.
    """
    if is_tiny(mcfg):
        with warnings.catch_warnings():  # a check: keep library deprecation notes off the user's terminal
            warnings.simplefilter("ignore", FutureWarning)
            build_peft_model(mcfg, 2)  # small and offline; checks model.lora.target-modules
        return
    _check_model_source(mcfg.name)
    path = Path(mcfg.name).expanduser()
    if not path.exists():
        return  # a hub id
    if not path.is_dir():
        raise ModelError(f"model.name path '{mcfg.name}' is a file, not a model directory: {_MODEL_FIX}")
    if not (path / "config.json").is_file():
        raise ModelError(f"model.name path '{mcfg.name}' has no config.json, so it is not a saved model: {_MODEL_FIX}")
    from transformers import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING, AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"cannot read the config.json of model.name '{mcfg.name}' ({first}): {_MODEL_FIX}") from err
    if type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
        raise ModelError(
            f"model.name '{mcfg.name}' is a '{config.model_type}' model without a sequence-classification head in "
            f"transformers: give a sequence-classification model (e.g. BERT, RoBERTa) or 'tiny-bert'"
        )
    if not any(next(path.glob(pattern), None) for pattern in _WEIGHT_PATTERNS):
        raise ModelError(f"model.name path '{mcfg.name}' has no weight files (*.safetensors or *.bin): {_MODEL_FIX}")
    load_tokenizer(mcfg)
    from transformers import AutoModelForSequenceClassification

    with torch.device("meta"), warnings.catch_warnings():  # the architecture only: no weights read
        warnings.simplefilter("ignore", FutureWarning)
        skeleton = AutoModelForSequenceClassification.from_config(config)
        _with_lora(mcfg, skeleton)


def _check_model_source(name: str) -> None:
    """Fail early, with a clear message, on a local path that does not exist."""
    looks_local = name.startswith((".", "/", "~")) or Path(name).expanduser().exists()
    if looks_local and not Path(name).expanduser().exists():
        raise ModelError(f"model.name path '{name}' does not exist: give an existing directory saved with save_pretrained, a hub id, or 'tiny-bert'")
