"""The fine-tuning methods (``model.peft``): what trains on the frozen base, set up identically on every node.

:func:`apply_method` turns a frozen base model (already on its device, so
Opacus's hooks land on the right tensors) into the model a branch trains:

* ``lora`` -- PEFT LoRA (``model.lora.*``);
* ``ffa-lora`` -- LoRA whose A matrices stay frozen at their seeded start
  (identical on every node), so only B (and the head) train and travel
  (Sun et al., ICLR 2024);
* ``prefix`` -- PEFT prefix tuning: trained key-value prefixes at every layer
  (P-Tuning v2), optionally through an MLP reparametrization; causal LMs
  (``task = chat``) only: PEFT 0.21 cannot hand prefixes to transformers 5's
  sequence classifiers;
* ``p-tuning`` -- PEFT P-Tuning: virtual input tokens from an MLP prompt
  encoder; encoder classifiers only;
* ``ia3`` -- PEFT IA3: learned scaling vectors on keys, values and feed-forward;
* ``freeze`` -- no adapter: the top ``model.freeze.top-layers`` transformer
  layers and the classifier head train in full.

:func:`check_method` refuses the combinations that cannot work, one line
naming the method, the task and what to use instead.  :data:`PER_EXAMPLE`
names the methods whose trainable tensors Opacus's per-layer hooks cannot
reach (IA3's vectors sit in a ``ParameterDict`` no forward hook sees;
P-Tuning's prompt encoder runs once per batch): their per-example gradients
are taken one example at a time (``client/per_example.py``).
"""

from __future__ import annotations

import contextlib

import torch

from common.config.sections import ModelConfig
from common.errors import ModelError

#: Methods trained with per-example backward passes instead of Opacus's per-layer hooks.
PER_EXAMPLE = ("ia3", "p-tuning")
#: Heads of a sequence classifier: trained (and travelling) with every method.
HEAD_NAMES = ("classifier", "score")


def check_method(mcfg: ModelConfig, causal: bool, model_type: str, pooling: str, encoder_only: bool) -> None:
    """Refuse a method the task or base model cannot take (one line: method, task, what to use)."""
    if mcfg.peft == "prefix" and not causal:
        raise ModelError("model.peft = prefix trains key-value prefixes, which PEFT passes only to a causal LM: for a "
                         "classification task use model.peft = p-tuning (with an encoder such as tiny-bert), lora, "
                         "ffa-lora, ia3 or freeze; prefix is for task 'chat'")
    if mcfg.peft == "p-tuning" and causal:
        raise ModelError("model.peft = p-tuning prepends virtual tokens that shift a causal LM's reply positions, so "
                         "task 'chat' cannot use it: use model.peft = prefix (P-Tuning v2), lora, ffa-lora, ia3 or freeze")
    if mcfg.peft == "p-tuning" and not encoder_only:
        raise ModelError(f"model.peft = p-tuning needs an encoder classifier, and '{mcfg.name}' is a {model_type} "
                         "decoder, whose head reads the last token, where virtual tokens and padding misplace it: use "
                         "an encoder (e.g. tiny-bert), or model.peft = lora, ffa-lora, ia3 or freeze")
    if mcfg.peft == "p-tuning" and pooling == "mean":
        raise ModelError("model.peft = p-tuning feeds the encoder virtual tokens that model.pooling = mean would "
                         "average over: set model.pooling = head, or model.peft = lora, ffa-lora, ia3 or freeze")


def apply_method(mcfg: ModelConfig, base, causal: bool = False):
    """``base`` (frozen, on its device) made trainable by ``model.peft``; seeded: identical on every node."""
    if mcfg.peft == "freeze":
        return _freeze(mcfg, base, causal)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(mcfg.seed + 1)  # identical initial adapter on every node
    try:
        model = _peft_model(mcfg, base, causal)
    except ValueError as err:
        first = str(err).strip().split(". ")[0].rstrip(".") or type(err).__name__
        if mcfg.peft in ("lora", "ffa-lora"):
            raise ModelError(
                f"cannot apply LoRA to '{mcfg.name}' with model.lora.target-modules '{mcfg.lora_target_modules}' "
                f"and model.lora.layers '{mcfg.lora_layers}' ({first}): set model.lora.target-modules to module names "
                "of the model (e.g. 'query,value' for BERT), or empty for PEFT's default, and model.lora.layers to "
                "indices it has") from err
        raise ModelError(f"cannot apply model.peft = {mcfg.peft} to '{mcfg.name}' ({first}): check the "
                         f"model.{mcfg.peft}.* settings, or choose another model.peft") from err
    finally:
        torch.random.set_rng_state(generator_state)
    if mcfg.peft == "ffa-lora":
        for name, param in model.named_parameters():
            if ".lora_A." in name:
                param.requires_grad_(False)  # FFA-LoRA: A stays at its seeded start on every node
    return model


def _peft_model(mcfg: ModelConfig, base, causal: bool):
    """PEFT's model for the adapter methods (all but freeze)."""
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptEncoderConfig, TaskType, get_peft_model

    task_type = TaskType.CAUSAL_LM if causal else TaskType.SEQ_CLS
    if mcfg.peft == "prefix":
        config = PrefixTuningConfig(task_type=task_type, num_virtual_tokens=mcfg.prefix_tokens,
                                    prefix_projection=mcfg.prefix_projection, encoder_hidden_size=mcfg.prefix_hidden)
    elif mcfg.peft == "p-tuning":
        config = PromptEncoderConfig(task_type=task_type, num_virtual_tokens=mcfg.ptuning_tokens,
                                     encoder_reparameterization_type="MLP", encoder_hidden_size=mcfg.ptuning_hidden)
    elif mcfg.peft == "ia3":
        targets = [m.strip() for m in mcfg.ia3_target_modules.split(",") if m.strip()] or None
        config = IA3Config(task_type=task_type, target_modules=targets, feedforward_modules=None if targets is None else [],
                           fan_in_fan_out=getattr(base.config, "model_type", "") == "gpt2")
    else:
        config = LoraConfig(
            task_type=task_type, r=mcfg.lora_rank, lora_alpha=mcfg.lora_alpha, lora_dropout=mcfg.lora_dropout,
            target_modules=mcfg.target_modules, layers_to_transform=mcfg.layers_to_transform,
            # GPT-2's Conv1D stores its weight transposed; PEFT needs to be told (it warns and fixes it otherwise).
            fan_in_fan_out=getattr(base.config, "model_type", "") == "gpt2",
        )
    return get_peft_model(base, config)


def transformer_layers(model) -> torch.nn.ModuleList:
    """The stack of transformer layers: the first ModuleList as long as ``config.num_hidden_layers``."""
    count = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise ModelError(f"model.peft = freeze finds no stack of {count} transformer layers in this model: "
                     "use model.peft = lora")


def _freeze(mcfg: ModelConfig, base, causal: bool):
    """Freeze: the top ``model.freeze.top-layers`` layers (and a classifier's head) trainable, the rest frozen."""
    layers = transformer_layers(base)
    if mcfg.freeze_top_layers > len(layers):
        raise ModelError(f"model.freeze.top-layers is {mcfg.freeze_top_layers} but the model has {len(layers)} "
                         f"transformer layers: set it to at most {len(layers)}")
    base.train()  # as PEFT leaves its models: Opacus wraps only a model in training mode
    for layer in layers[len(layers) - mcfg.freeze_top_layers:]:
        layer.requires_grad_(True)
    if not causal:  # a causal LM's head is its (tied, vocabulary-sized) embedding: it stays frozen
        for name in HEAD_NAMES:
            head = getattr(base, name, None)
            if isinstance(head, torch.nn.Module):
                head.requires_grad_(True)
    return base


@contextlib.contextmanager
def only_head_trains(model, head_only: bool):
    """While active (``head_only``), only the task head's parameters train: LP-FT's linear-probe phase.

    Every other trainable parameter is frozen for the duration and made
    trainable again on exit, so the whole adapter still travels.  A model with
    no head (a causal LM) cannot probe: refused with a one-line error.
    """
    if not head_only:
        yield
        return
    frozen = [p for name, p in model.named_parameters()
              if p.requires_grad and not set(name.split(".")) & set(HEAD_NAMES)]
    if len(frozen) == sum(1 for p in model.parameters() if p.requires_grad):
        raise ModelError("train.linear-probe-rounds needs a task head (a classifier's 'classifier' or 'score'), "
                         "and this model has none: set train.linear-probe-rounds = 0")
    for param in frozen:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in frozen:
            param.requires_grad_(True)
