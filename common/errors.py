"""One exception hierarchy for fedbank.

Every error a user can cause (bad config, bad data, bad key file, a rejected
update) is a :class:`FedbankError`.  Its message is one
line that names what is wrong and how to fix it; the command-line front end
prints exactly that line and exits non-zero, without a traceback.
"""

from __future__ import annotations

import re

_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def one_line(text: str) -> str:
    """``text`` with every line break (and the blanks around it) folded into one space."""
    return _BREAKS.sub(" ", str(text)).strip()


_LOGGED = re.compile(r"common\.errors\.([A-Za-z]+): (.+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fedbank_message(text: str) -> str | None:
    """The message of the first FedbankError in a logged traceback or error reason.

    Flower reports an exception raised in a ServerApp or ClientApp as text (a
    traceback in its log; ``"<class ...>:<'...traceback...'>"`` as the reason
    of a failed reply).  Its line ``common.errors.DataError: <message>`` holds
    the one line the user needs; this returns ``<message>``, or None.
    """
    for line in _ANSI.sub("", str(text)).splitlines():
        match = _LOGGED.search(line)
        if match:
            return one_line(match.group(2))
    return None


class FedbankError(Exception):
    """Base class of every error fedbank raises on purpose.

    ``str(err)`` is always one line, even when a message quotes text that holds
    line breaks (a CSV cell, a library's error), so the front end can print it
    as a single ``fedbank: error: ...`` line.

    ``public`` (optional) is the same error told without any data value: only
    column names, counts and types.  A branch sends that, and nothing else, to
    headquarters (:mod:`client.outbound`); the full message stays in the
    branch's own log.
    """

    def __init__(self, *args: object, public: str | None = None) -> None:
        super().__init__(*args)
        self.public = one_line(public) if public else None

    def __str__(self) -> str:
        return one_line(super().__str__())


class ConfigError(FedbankError):
    """A run setting is unknown, mistyped or out of range."""


class DataError(FedbankError):
    """Input data cannot be read or does not have the expected shape."""


class ModelError(FedbankError):
    """The base model or adapter cannot be built or loaded."""


class KeyFileError(FedbankError):
    """A key or certificate file is missing, unreadable or of the wrong kind."""


class Rejection(FedbankError):
    """A reply, an envelope or an update was refused.

    ``reason`` is a short machine-readable code that the server logs and
    records: ``tampered``, ``forged``, ``unknown-branch``, ``replayed``,
    ``malformed`` or ``oversized`` when an envelope or a claim fails to open,
    ``keys``, ``shape``, ``dtype``, ``non-finite`` or ``norm`` when a decrypted
    update fails validation.  The message itself stays generic so that a
    sender learns nothing about which check failed; ``detail`` says more.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"update rejected ({reason})" + (f": {detail}" if detail else ""))


class BranchFailure(FedbankError):
    """A branch could not answer a round; the message is its public account (no data value)."""


class LedgerError(FedbankError):
    """The privacy ledger is missing, malformed or fails verification."""


class RunFailed(FedbankError):
    """A Flower run, or a process it needs (SuperLink, SuperNode, ``flwr run``), did not finish successfully."""
