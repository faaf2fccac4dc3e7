"""Checkpoint after every round, and the rewind that makes a resumed run exact.

After each completed round the server writes the global adapter
(``checkpoint/round-NNNN.safetensors``) and then, atomically,
``checkpoint/checkpoint.json``: the fedbank run id, the round, the adapter
file, the ledger position (entries and head hash), the client-level
accountant and the strategy's state (with server momentum, its velocity in
``checkpoint/momentum-NNNN.safetensors``).  The JSON is written last, so it only
ever names a complete adapter.

Resuming (:func:`rewind_ledger`): ledger lines written after the checkpoint
belong to a round that did not finish.  They are moved to
``ledger.unfinished.jsonl`` (kept for review) and the ledger is cut back to
the checkpointed head, so when that round runs again -- branches resend their
cached replies, spending nothing twice -- the finished ledger holds exactly
the lines of an uninterrupted run and still verifies.  With the server's key
the ledger position is checked against the server-signed head line the
round's seal wrote just before the checkpoint.  A branch that spent in
the unfinished attempt but is not sampled when the round runs again (with
``fraction-train`` < 1 Flower samples anew) keeps its spend on record:
:func:`unfinished_claims` hands its signed claim back to the server, which
ledgers it as not aggregated (``reject_reason: interrupted``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.atomic import write_bytes_atomic
from common.wire.envelope import deserialize_arrays, serialize_arrays
from common.errors import FedbankError, LedgerError
from server.records.ledger import FAILURE, SERVER_BRANCH, verify_ledger

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "checkpoint.json"
UNFINISHED_FILE = "ledger.unfinished.jsonl"


@dataclass
class Checkpoint:
    """What a resumed run needs besides the adapter."""

    run_id: int
    round: int
    adapter_file: str
    ledger_entries: int
    ledger_head: str
    client_level: dict | None = None
    strategy: dict = field(default_factory=dict)
    momentum_file: str | None = None


def save_checkpoint(out_dir: Path, ckpt: Checkpoint, arrays: dict[str, np.ndarray],
                    velocity: dict[str, np.ndarray] | None = None) -> None:
    """Write the adapter (and the server's momentum velocity), then the checkpoint JSON naming them; drop older files."""
    folder = Path(out_dir) / CHECKPOINT_DIR
    ckpt.adapter_file = f"round-{ckpt.round:04d}.safetensors"
    write_bytes_atomic(folder / ckpt.adapter_file, serialize_arrays(arrays))
    ckpt.momentum_file = f"momentum-{ckpt.round:04d}.safetensors" if velocity else None
    if velocity:
        write_bytes_atomic(folder / ckpt.momentum_file, serialize_arrays(velocity))
    write_bytes_atomic(folder / CHECKPOINT_FILE, json.dumps(asdict(ckpt), indent=1).encode("utf-8"))
    for old in [*folder.glob("round-*.safetensors"), *folder.glob("momentum-*.safetensors")]:
        if old.name not in (ckpt.adapter_file, ckpt.momentum_file):
            old.unlink(missing_ok=True)


def load_checkpoint(out_dir: Path) -> tuple[Checkpoint, dict[str, np.ndarray]]:
    """Read the last checkpoint of a run directory."""
    path = Path(out_dir) / CHECKPOINT_DIR / CHECKPOINT_FILE
    if not path.exists():
        raise FedbankError(f"no checkpoint in {out_dir} ({path} is missing): nothing to resume; start a new run")
    try:
        ckpt = Checkpoint(**json.loads(path.read_text(encoding="utf-8")))
        arrays = deserialize_arrays((path.parent / ckpt.adapter_file).read_bytes(), max_bytes=1 << 34)
    except (OSError, ValueError, TypeError) as exc:
        raise FedbankError(f"checkpoint {path} is unreadable ({exc}): the run cannot be resumed") from exc
    return ckpt, arrays


def load_velocity(out_dir: Path, ckpt: Checkpoint) -> dict[str, np.ndarray] | None:
    """The server optimizer's state a checkpoint names (momentum velocity, or Adam/Yogi moments; None when none)."""
    if not ckpt.momentum_file:
        return None
    path = Path(out_dir) / CHECKPOINT_DIR / ckpt.momentum_file
    try:
        return deserialize_arrays(path.read_bytes(), max_bytes=1 << 34)
    except (OSError, ValueError) as exc:
        raise FedbankError(f"checkpoint momentum {path} is unreadable ({exc}): the run cannot be resumed") from exc


def rewind_ledger(ledger_path: Path, ckpt: Checkpoint, server_key: Ed25519PublicKey | None = None) -> int:
    """Cut the ledger back to the checkpoint; return how many lines were moved aside.

    With the server's public key, the kept ledger must also verify under it and
    end with the server-signed head of the checkpointed round, so the
    checkpoint's unsigned ``ledger_head`` names a head the server signed.
    """
    ledger_path = Path(ledger_path)
    if not ledger_path.exists():
        if ckpt.ledger_entries:
            raise LedgerError(f"{ledger_path} is missing but the checkpoint records {ckpt.ledger_entries} entries")
        return 0
    data = ledger_path.read_bytes()
    lines = data.splitlines(keepends=True)
    if len(lines) < ckpt.ledger_entries:
        raise LedgerError(f"{ledger_path} has {len(lines)} lines, fewer than the {ckpt.ledger_entries} the checkpoint records")
    keep, extra = lines[: ckpt.ledger_entries], lines[ckpt.ledger_entries:]
    if extra:
        with open(ledger_path.parent / UNFINISHED_FILE, "ab") as fh:
            fh.writelines(extra)
            fh.flush()
            os.fsync(fh.fileno())
        write_bytes_atomic(ledger_path, b"".join(keep))
    result = verify_ledger(ledger_path, server_key=server_key)
    if not result.ok or result.head_hash != ckpt.ledger_head:
        raise LedgerError(f"{ledger_path} does not match the checkpoint ({result.reason}): run 'fedbank ledger verify'")
    if server_key is not None and ckpt.ledger_entries and (
            result.sealed_line != ckpt.ledger_entries or result.sealed_round != ckpt.round):
        raise LedgerError(f"{ledger_path} does not end with the server-signed head of round {ckpt.round} the "
                          "checkpoint names: run 'fedbank ledger verify'")
    return len(extra)


def unfinished_claims(out_dir: Path, server_round: int) -> list[dict]:
    """The branches' claims for ``server_round`` in ``ledger.unfinished.jsonl``: one per branch, first kept.

    Server lines (failures, client-level releases) are left out: the round
    that runs again writes its own.  Missing file: none.
    """
    path = Path(out_dir) / UNFINISHED_FILE
    if not path.exists():
        return []
    claims: dict[str, dict] = {}
    for n, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            entry = json.loads(raw)
        except ValueError as exc:
            raise LedgerError(f"{path} line {n} is not JSON ({exc}): it holds the ledger lines set aside at the "
                              "last resume; restore it from a backup before resuming") from exc
        if (isinstance(entry, dict) and entry.get("round") == server_round and entry.get("branch") != SERVER_BRANCH
                and entry.get("kind") != FAILURE):
            signature = entry.get("signature")
            if signature is not None and not (isinstance(signature, str) and re.fullmatch(r"(?:[0-9a-f]{2})+", signature)):
                raise LedgerError(f"{path} line {n} has a malformed signature: it holds the ledger lines set aside at "
                                  "the last resume; restore it from a backup before resuming")
            claims.setdefault(str(entry.get("branch")), entry)
    return list(claims.values())
