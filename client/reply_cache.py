"""The branch's last training reply, kept so a resent round never spends privacy twice.

When the server crashes and resumes, it asks again for the round it did not
finish.  A branch that already trained that round must not train it again
(that would spend its budget twice): it resends the reply it cached, which
also carries the accountant history of that round so the branch can adopt it
if it crashed between caching and saving its privacy state.

One JSON file per branch (``last_reply.json`` in its state directory),
replaced atomically; bytes are base64.  Only the latest round is kept.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from common.atomic import write_bytes_atomic

CACHE_FILE = "last_reply.json"


@dataclass
class CachedReply:
    """Everything needed to send a round's reply again."""

    run_id: int
    round: int
    claim: dict
    signature: bytes | None
    examples: int
    loss: float
    update: bytes  # sealed envelope, or safetensors bytes when the envelope is off
    sealed: bool
    history: list
    steps: int


def save(state_dir: Path, reply: CachedReply) -> None:
    """Write the reply atomically."""
    data = asdict(reply)
    data["update"] = base64.b64encode(reply.update).decode("ascii")
    data["signature"] = base64.b64encode(reply.signature).decode("ascii") if reply.signature is not None else None
    write_bytes_atomic(Path(state_dir) / CACHE_FILE, json.dumps(data).encode("utf-8"))


def load(state_dir: Path, run_id: int, server_round: int) -> CachedReply | None:
    """The cached reply for exactly this run and round, or None."""
    path = Path(state_dir) / CACHE_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("run_id") != int(run_id) or data.get("round") != int(server_round):
        return None
    data["update"] = base64.b64decode(data["update"])
    data["signature"] = base64.b64decode(data["signature"]) if data.get("signature") else None
    return CachedReply(**data)
