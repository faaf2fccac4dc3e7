"""Signals while this process owns Flower processes: SIGTERM (and SIGINT) become KeyboardInterrupt.

:func:`signals_deferred` holds them back while a clean-up runs.

Python's default SIGTERM ends the interpreter at once: no ``finally``, no
``__exit__``, so a SuperLink or SuperNode started in its own session would be
left running.  Inside :func:`sigterm_as_interrupt` the owners' ``with`` blocks
stop what they started, and the CLI reports the interruption in one line.
"""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM and SIGINT raise KeyboardInterrupt (main thread only), so clean-up code runs.

    SIGINT is set explicitly too: a process started in the background by a
    non-interactive shell (``fedbank deploy superlink &`` in a script) inherits
    SIGINT *ignored*, and Python then never turns Ctrl-C / ``kill -INT`` into
    KeyboardInterrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _term(_signo, _frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, _term) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred():
    """Within the block, SIGTERM and SIGINT wait (main thread only): clean-up is not cut short by a second one.

    A signal that arrived meanwhile is re-raised through the previous handlers
    when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.signal(sig, lambda signo, _frame: pending.append(signo)) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signo in pending[:1]:
            handler = previous[signo]
            if callable(handler):
                handler(signo, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signo)
