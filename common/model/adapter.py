"""The trained part of the model in and out: as arrays (its wire form) and on disk.

:func:`adapter_arrays` / :func:`load_adapter_arrays` turn the trainable
tensors into float32 numpy arrays and back, refusing arrays that do not fit
the model.  Only what trains travels: for LoRA, FFA-LoRA and IA3 PEFT's
adapter-only state dict (adapter-name-free keys) less any frozen tensor
(FFA-LoRA's A matrices, rebuilt from the shared seed); for the prompt methods
and Freeze the trainable parameters by name.  :func:`save_adapter` writes
PEFT's ``save_pretrained`` (Freeze: the trained layers as
``fedbank_trained.safetensors``) plus the recipe of the base model
(``fedbank_model.json``: model config, labels, task), from which
:func:`load_saved_adapter` rebuilds the identical base and loads the adapter
with ``PeftModel.from_pretrained`` (Freeze: with :func:`load_adapter_arrays`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from common.config.sections import ModelConfig
from common.errors import ModelError
from common.model.build import build_base_model, load_tokenizer
from common.model.methods import apply_method

SPEC_FILE = "fedbank_model.json"
#: Freeze's trained layers (and head), by parameter name.
TRAINED_FILE = "fedbank_trained.safetensors"


def unwrap(model):
    """The PEFT model inside an Opacus ``GradSampleModule`` (or the model itself)."""
    return getattr(model, "_module", model)


def _by_parameter_name(model) -> bool:
    """True when the wire form names parameters (Freeze, prompt methods), not PEFT's adapter state dict."""
    from peft import PeftModel

    return not isinstance(model, PeftModel) or model.active_peft_config.is_prompt_learning


def trainable_state(model) -> dict[str, torch.Tensor]:
    """The tensors that train (and travel), by wire name."""
    from peft import get_peft_model_state_dict

    inner = unwrap(model)
    if _by_parameter_name(inner):
        return {name: p for name, p in inner.named_parameters() if p.requires_grad}
    adapter = f".{inner.active_adapter}"
    frozen = {name.replace(adapter, "") for name, p in inner.named_parameters() if not p.requires_grad}
    return {k: v for k, v in get_peft_model_state_dict(inner).items() if k not in frozen}


def adapter_arrays(model) -> dict[str, np.ndarray]:
    """The trainable tensors (adapter + task head) as float32 numpy arrays."""
    return {k: v.detach().cpu().to(torch.float32).numpy().copy() for k, v in trainable_state(model).items()}


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
    if not _by_parameter_name(inner):
        set_peft_model_state_dict(inner, state)
        return
    params = dict(inner.named_parameters())
    with torch.no_grad():
        for key, value in state.items():
            params[key].copy_(value.to(params[key].dtype))


def save_adapter(model, out_dir: Path, mcfg: ModelConfig, labels: list[str], task: str = "intent") -> Path:
    """Save the adapter with PEFT ``save_pretrained`` plus the recipe of its base (and the task)."""
    out_dir = Path(out_dir)
    if mcfg.peft == "freeze":
        from safetensors.numpy import save_file

        out_dir.mkdir(parents=True, exist_ok=True)
        save_file(adapter_arrays(model), str(out_dir / TRAINED_FILE))
    else:
        unwrap(model).save_pretrained(str(out_dir))
    spec = {
        "model": {k: getattr(mcfg, k) for k in mcfg.__dataclass_fields__},
        "labels": labels,
        "task": task,
    }
    (out_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2, ensure_ascii=False), encoding="utf-8")
    return out_dir


def load_saved_adapter(adapter_dir: Path, device: str = "cpu", base: str | None = None):
    """Rebuild the base model from the saved recipe and load the adapter with PEFT.

    ``base``: a hub id or local path to build the base from instead of the
    recorded ``model.name`` (the same model, stored elsewhere).
    Returns ``(model, tokenizer, model_config, labels)``; a chat adapter
    (causal LM) has no labels.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    spec_path = adapter_dir / SPEC_FILE
    if not spec_path.is_file():
        raise ModelError(f"'{adapter_dir}' is not a fedbank adapter directory ({SPEC_FILE} missing)")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    fields = {k: v for k, v in spec["model"].items() if k in ModelConfig.__dataclass_fields__}
    fields.setdefault("pooling", "head")  # saved before model.pooling existed: the architecture's own head
    if base:
        fields["name"] = base
    mcfg = ModelConfig(**fields)
    labels = list(spec["labels"])
    causal = spec.get("task") == "chat"
    tokenizer = load_tokenizer(mcfg)
    base_model = build_base_model(mcfg, len(labels), vocab_size=len(tokenizer), causal=causal).to(device)
    if mcfg.peft == "freeze":
        from safetensors.numpy import load_file

        model = apply_method(mcfg, base_model, causal)
        load_adapter_arrays(model, load_file(str(adapter_dir / TRAINED_FILE)))
    else:
        model = PeftModel.from_pretrained(base_model, str(adapter_dir))
    model.eval()
    return model, tokenizer, mcfg, labels
