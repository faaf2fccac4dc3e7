"""server.flower_patches: the simulation engine's poll of an idle node is cheap, and returns and deletes what Flower's would."""

from __future__ import annotations

import copy
import random
import sys
import time
from types import SimpleNamespace as NS

import pytest

pytest.importorskip("flwr.server.superlink.linkstate.in_memory_linkstate")

from flwr.server.superlink.linkstate import LinkStateFactory  # noqa: E402
from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState  # noqa: E402
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME  # noqa: E402
from flwr.supercore.object_store import ObjectStoreFactory  # noqa: E402
from flwr.superlink.federation.noop_federation_manager import NOOP_FEDERATION_ID, NoOpFederationManager  # noqa: E402

from server import flower_patches as sim_engine  # noqa: E402


@pytest.fixture()
def patched(monkeypatch):
    """The fast path installed for this test only (the original restored after it)."""
    original = InMemoryLinkState.get_message_ins
    monkeypatch.setattr(InMemoryLinkState, "get_message_ins", original)
    assert sim_engine.install() and sim_engine.install()  # idempotent
    assert InMemoryLinkState.get_message_ins is not original
    return original


def _state(messages: dict, federation_manager=None) -> InMemoryLinkState:
    state = LinkStateFactory(FLWR_IN_MEMORY_DB_NAME, federation_manager or NoOpFederationManager(), ObjectStoreFactory()).state()
    state.run_ids[1] = NS(run=NS(federation_id=NOOP_FEDERATION_ID))
    state.message_ins_store.update(copy.deepcopy(messages))
    return state


def _message(dst: int, delivered: bool, expired: bool, now: float):
    return NS(metadata=NS(created_at=now - (100 if expired else 0), ttl=50 if expired else 3600, run_id=1,
                          src_node_id=0, dst_node_id=dst, delivered_at="then" if delivered else ""))


def test_every_poll_returns_and_deletes_what_flowers_does(patched):
    rng = random.Random(5)
    for trial in range(300):
        now = time.time()
        messages = {f"m{i}": _message(rng.randrange(6), rng.random() < 0.5, rng.random() < 0.1, now)
                    for i in range(rng.randrange(0, 6))}
        node = rng.randrange(8)
        ours, theirs = _state(messages), _state(messages)
        got = InMemoryLinkState.get_message_ins(ours, node_id=node, limit=1)
        want = patched(theirs, node_id=node, limit=1)
        assert [m.metadata.dst_node_id for m in got] == [m.metadata.dst_node_id for m in want], trial
        assert sorted(ours.message_ins_store) == sorted(theirs.message_ins_store), trial  # the same expired ones deleted
        assert ({k: m.metadata.delivered_at == "" for k, m in ours.message_ins_store.items()}
                == {k: m.metadata.delivered_at == "" for k, m in theirs.message_ins_store.items()}), trial


def test_a_sweep_over_1000_idle_nodes_is_cheap(patched):
    now = time.time()
    state = _state({f"m{i}": _message(10_000 + i, True, False, now) for i in range(10)})  # a round's 10 messages, delivered

    def sweep(method) -> float:
        t0 = time.perf_counter()
        for node in range(1000):
            assert method(state, node_id=node, limit=1) == []
        return time.perf_counter() - t0

    flower, fast = min(sweep(patched) for _ in range(3)), min(sweep(InMemoryLinkState.get_message_ins) for _ in range(3))
    print(f"\nsweep of 1000 idle nodes, 10 messages pending: Flower {flower * 1e3:.1f} ms, fast path {fast * 1e3:.1f} ms")
    assert fast < flower / 3


def test_other_federation_managers_take_flowers_own_path(patched):
    seen = []
    nobody = NS(filter_nodes=lambda nodes, federation: seen.append(nodes) or set())  # no node is a member
    state = _state({"m0": _message(3, True, False, time.time())}, federation_manager=nobody)
    assert InMemoryLinkState.get_message_ins(state, node_id=1, limit=1) == []
    assert seen and "m0" not in state.message_ins_store  # Flower's federation check ran and removed the message


def test_nothing_is_patched_where_flowers_in_memory_state_is_not_loaded(monkeypatch):
    monkeypatch.delitem(sys.modules, sim_engine._MODULE)
    assert sim_engine.install() is False
