"""Flower 1.39's simulation engine polls every virtual SuperNode; make a poll of an idle one cheap.

In simulation, Flower's engine (``vce_api.add_messages_to_queue``) asks the
in-memory LinkState every 0.1 s, for *each* of the ``num-branches`` virtual
SuperNodes, for that node's next message.  Each call
(``InMemoryLinkState.get_message_ins``) first re-validates *every* stored
instruction message -- a lock, the clock, a federation check per message --
and only then filters by node.  With 1,000 branches and a round's 10 messages
pending that is 10,000 checks per 0.1 s (38 ms a sweep, a quarter of a core)
in the process that also runs the ServerApp: rounds about 20 % slower than
with 10 branches for the same work (``bench/scale.py``).

:func:`install` wraps that method with a fast path: if no stored message is
addressed to the node and still undelivered, and none has expired, the
original would return no message and delete none, so the wrapper returns
``[]`` without the per-message checks; in every other case the original runs
unchanged.  It applies only to a LinkState whose federation manager is
Flower's no-op one (the simulation's: its federation check never removes a
message), so what every call returns and deletes is what Flower's would.
Importing this module does nothing; :func:`install` patches only a process
that has already loaded Flower's in-memory LinkState (the simulation process,
which loads the ServerApp after creating its state) and is a no-op elsewhere
(a deployed ServerApp, tests, tools).
"""

from __future__ import annotations

import sys
import time

_MODULE = "flwr.server.superlink.linkstate.in_memory_linkstate"
_MARK = "_fedbank_fast_idle_poll"


def install() -> bool:
    """Patch ``InMemoryLinkState.get_message_ins`` in this process if Flower's simulation state is loaded.

    Returns:
        True when the fast path is in place (now or already), False when this
        process has no in-memory LinkState or Flower's internals are not the
        ones this was written for (then nothing is changed).
    """
    module = sys.modules.get(_MODULE)
    if module is None:
        return False
    cls = getattr(module, "InMemoryLinkState", None)
    original = getattr(cls, "get_message_ins", None)
    if original is None:
        return False
    if getattr(original, _MARK, False):
        return True
    try:
        from flwr.superlink.federation.noop_federation_manager import NoOpFederationManager
    except ImportError:
        return False

    def get_message_ins(self, node_id: int, limit: int | None, *, run_id: int | None = None):
        if not isinstance(getattr(self, "federation_manager", None), NoOpFederationManager) or (limit is not None and limit < 1):
            return original(self, node_id, limit, run_id=run_id)
        current = time.time()  # Flower's now().timestamp(): the same clock
        with self.lock:
            for message in self.message_ins_store.values():
                meta = message.metadata
                if meta.created_at + meta.ttl <= current:
                    break  # an expired message: the original deletes it
                if meta.dst_node_id == node_id and meta.delivered_at == "" and (run_id is None or meta.run_id == run_id):
                    break  # a message for this node
            else:
                return []
        return original(self, node_id, limit, run_id=run_id)

    setattr(get_message_ins, _MARK, True)
    get_message_ins.__wrapped__ = original  # type: ignore[attr-defined]
    get_message_ins.__doc__ = original.__doc__
    cls.get_message_ins = get_message_ins
    return True
