"""``fedbank chat``: answer customer messages with the federation's chat adapter.

Loads the base model the run recorded in the adapter directory (or
``--base``, the same model stored elsewhere) with PEFT, desensitizes each
prompt with the branches' own :class:`~common.privacy.desensitize.Desensitizer`
before the model sees it, and prints the greedy reply.  Prompts come from
``--prompt`` (repeatable) or, one per line, from standard input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common.errors import ModelError


def load_chat_adapter(adapter_dir: Path, base: str | None = None, device: str = "cpu"):
    """``(model, tokenizer, model_config)`` of a chat adapter directory.

    Raises:
        ModelError: not a fedbank adapter directory, or an adapter of a classification task.
    """
    from common.model.adapter import SPEC_FILE, load_saved_adapter

    spec = Path(adapter_dir) / SPEC_FILE
    if not spec.is_file():
        raise ModelError(f"'{adapter_dir}' is not a fedbank adapter directory ({SPEC_FILE} missing): give RUN_DIR/adapter of a chat run")
    task = json.loads(spec.read_text(encoding="utf-8")).get("task", "intent")
    if task != "chat":
        raise ModelError(f"the adapter in '{adapter_dir}' was trained for task '{task}', not 'chat': "
                         "fedbank chat needs the adapter of a run with task=chat")
    model, tokenizer, mcfg, _ = load_saved_adapter(Path(adapter_dir), device=device, base=base)
    return model, tokenizer, mcfg


def chat_session(adapter_dir: Path, base: str | None, prompts: list[str] | None, max_new_tokens: int,
                 device: str = "auto") -> int:
    """Answer ``prompts`` (or stdin's lines); print each desensitized prompt and its reply."""
    import torch

    from common.tasks.chat import generate_replies
    from common.privacy.desensitize import Desensitizer

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer, mcfg = load_chat_adapter(adapter_dir, base, device)
    desensitizer = Desensitizer()
    source = prompts if prompts else (line.strip() for line in sys.stdin)
    for prompt in source:
        if not prompt:
            continue
        masked = desensitizer.apply(prompt)
        reply = generate_replies(model, tokenizer, [masked.text], mcfg.max_length, max_new_tokens)[0]
        if masked.text != prompt:
            print(f"(desensitized) {masked.text}", file=sys.stderr)
        print(f"> {masked.text}\n{reply}", flush=True)
    return 0
