"""What a branch tells headquarters when a round fails: a fixed vocabulary, never a cell value.

Flower carries the text of an exception raised in a ClientApp to the server,
which writes it to ``metrics.json``, the ledger and the report.  An error
message may quote a record (a label that is really a text column, a malformed
row), so nothing the branch did not vet may leave it.  :func:`guarded` turns
every exception of a round into a :class:`~common.errors.BranchFailure` whose
message is either the error's ``public`` account (built by whoever raised it
from column names, counts and types only) or just the error's class; the full
message goes to the branch's own log, ``<state-dir>/branch-errors.log``, which
never leaves the branch.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from common.errors import BranchFailure, FedbankError

ERROR_LOG = "branch-errors.log"


def public_message(exc: BaseException) -> str:
    """The account of ``exc`` a branch may send: its ``public`` text, else only what kind of error it was."""
    public = getattr(exc, "public", None) if isinstance(exc, FedbankError) else None
    if public:
        return public
    return f"{type(exc).__name__} at the branch (details in the branch's own {ERROR_LOG}; no data value is sent)"


def record_locally(state_dir: Path, exc: BaseException) -> None:
    """Append the full error, with its traceback, to the branch's own error log."""
    path = Path(state_dir) / ERROR_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"--- {stamp}\n{''.join(traceback.format_exception(exc))}")


@contextlib.contextmanager
def guarded(state_dir: Path) -> Iterator[None]:
    """Run a branch's round; any error leaves the branch only as its public account."""
    try:
        yield
    except BranchFailure:
        raise
    except Exception as exc:  # noqa: BLE001 -- every error, whatever its kind, is vetted here
        record_locally(state_dir, exc)
        raise BranchFailure(public_message(exc)) from None
