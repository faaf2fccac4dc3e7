"""One exception hierarchy for fedbank.

Every error a user can cause (bad config, bad data, bad key file, a rejected
update, an exhausted budget) is a :class:`FedbankError`.  Its message is one
line that names what is wrong and how to fix it; the command-line front end
prints exactly that line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class FedbankError(Exception):
    """Base class of every error fedbank raises on purpose."""


class ConfigError(FedbankError):
    """A run setting is unknown, mistyped or out of range."""


class DataError(FedbankError):
    """Input data cannot be read or does not have the expected shape."""


class ModelError(FedbankError):
    """The base model or adapter cannot be built or loaded."""


class KeyFileError(FedbankError):
    """A key or certificate file is missing, unreadable or of the wrong kind."""


class EnvelopeError(FedbankError):
    """An update envelope failed to open.

    ``reason`` is a short machine-readable code (``tampered``, ``forged``,
    ``unknown-branch``, ``replayed``, ``malformed``, ``oversized``) that the
    server logs; the message itself stays generic so that a sender learns
    nothing about which check failed.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"update rejected ({reason})" + (f": {detail}" if detail else ""))


class RejectedUpdate(FedbankError):
    """A decrypted update failed validation (keys, shapes, dtypes, finiteness, norm)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"update rejected ({reason})" + (f": {detail}" if detail else ""))


class BudgetExhausted(FedbankError):
    """Training one more round would take a branch past its privacy budget."""


class LedgerError(FedbankError):
    """The privacy ledger is missing, malformed or fails verification."""
