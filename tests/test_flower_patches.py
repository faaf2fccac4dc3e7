"""server.flower_patches: each patch of Flower is pinned to the Flower code it was written against, and does what it says.

If a ``test_flower_*`` test fails after a Flower upgrade, re-read the Flower
code it names against the patch's docstring in ``server/flower_patches.py``,
adapt the patch (or drop it), then update the pinned hash here.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import random
import time
from types import SimpleNamespace as NS

import flwr
from flwr.server.superlink.fleet.vce import vce_api
from flwr.server.superlink.linkstate import LinkStateFactory
from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME
from flwr.supercore.fab import Fab
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.superlink.federation.noop_federation_manager import NOOP_FEDERATION_ID, NoOpFederationManager
from flwr.superlink.grid import InMemoryGrid

from server.flower_patches import ClaimKeepingSecAggPlusWorkflow, install_fast_idle_poll

WRITTEN_AGAINST = "1.39.0"


def _pinned(fn, sha256: str, signature: str) -> None:
    """``fn`` has the signature and the exact source (SHA-256) the patch was written against."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    assert str(inspect.signature(fn)) == signature, f"Flower {flwr.__version__} changed the signature of {name}"
    assert hashlib.sha256(inspect.getsource(fn).encode()).hexdigest() == sha256, (
        f"Flower {flwr.__version__} changed {name}; server/flower_patches.py was written against Flower "
        f"{WRITTEN_AGAINST}: re-read the patch")


# -- the simulation engine's idle poll ---------------------------------------------------------------


def test_flower_linkstate_poll_is_the_one_patched():
    """The method replaced, the check it skips, the engine's poll loop, the no-op federation check, the grid."""
    _pinned(InMemoryLinkState.get_message_ins, "6547c8dcbc62e12f5b2aa5c69f4de8c7c7072c10d6c0876512cf37197d941056",
            "(self, node_id: int, limit: int | None, *, run_id: int | None = None) -> list[flwr.app.message.message.Message]")
    _pinned(InMemoryLinkState._check_stored_messages, "2be47567d2478a58b766c116f1f0cd0ae3aa791d4e7e3ee85cb20d31f15a8082",
            "(self, message_ids: set[str], run_id: int | None = None) -> None")
    _pinned(vce_api.add_messages_to_queue, "953f4bd41a931a7779a4a670ab17b633f6e20b08a0128535328674466419777a",
            "(state: flwr.server.superlink.linkstate.linkstate.LinkState, queue: queue.Queue[flwr.app.message.message.Message], "
            "nodes_mapping: dict[int, int], f_stop: threading.Event) -> None")
    _pinned(NoOpFederationManager.filter_nodes, "1ed88a10fdb297d8eb96c74eada6a81e5ff644220b6ade7eef6beb64202cc061",
            "(self, node_ids: set[int], federation_id: str) -> set[int]")
    _pinned(InMemoryGrid.__init__, "028fa3ed6b4181bb6685e4d7f940fcfcc218b9eaeed379d6b4cceb7b300bb410",
            "(self, state_factory: flwr.server.superlink.linkstate.linkstate_factory.LinkStateFactory, "
            "pull_interval: float = 0.1) -> None")


def test_flower_simulation_hands_the_serverapp_the_engines_state():
    """How the ServerApp knows it runs in a simulation: flwr-simulation gives it an InMemoryGrid over the polled state."""
    main_loop = inspect.getsource(importlib.import_module("flwr.simulation.run_simulation")._main_loop)
    assert "FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager(), ObjectStoreFactory()" in main_loop
    assert "grid = InMemoryGrid(state_factory=state_factory)" in main_loop
    assert "vce.start_vce(" in main_loop and main_loop.count("state_factory=state_factory") == 2
    factory = _factory()
    assert InMemoryGrid(state_factory=factory).state is factory.state()  # the one state the engine polls


def _factory(federation_manager=None) -> LinkStateFactory:
    return LinkStateFactory(FLWR_IN_MEMORY_DB_NAME, federation_manager or NoOpFederationManager(), ObjectStoreFactory())


def _state(messages: dict, federation_manager=None, *, fast: bool = False) -> InMemoryLinkState:
    """An in-memory LinkState holding ``messages``; with ``fast``, behind a simulation grid with the patch installed."""
    factory = _factory(federation_manager)
    state = factory.state()
    if fast:
        grid = InMemoryGrid(state_factory=factory)
        assert install_fast_idle_poll(grid) and install_fast_idle_poll(grid)  # idempotent
        assert state.get_message_ins.__wrapped__.__func__ is InMemoryLinkState.get_message_ins
    state.run_ids[1] = NS(run=NS(federation_id=NOOP_FEDERATION_ID))
    state.message_ins_store.update(copy.deepcopy(messages))
    return state


def _message(dst: int, delivered: bool, expired: bool, now: float):
    return NS(metadata=NS(created_at=now - (100 if expired else 0), ttl=50 if expired else 3600, run_id=1,
                          src_node_id=0, dst_node_id=dst, delivered_at="then" if delivered else ""))


def test_every_poll_returns_and_deletes_what_flowers_does():
    rng = random.Random(5)
    for trial in range(300):
        now = time.time()
        messages = {f"m{i}": _message(rng.randrange(6), rng.random() < 0.5, rng.random() < 0.1, now)
                    for i in range(rng.randrange(0, 6))}
        node = rng.randrange(8)
        ours, theirs = _state(messages, fast=True), _state(messages)
        got = ours.get_message_ins(node_id=node, limit=1)
        want = theirs.get_message_ins(node_id=node, limit=1)
        assert [m.metadata.dst_node_id for m in got] == [m.metadata.dst_node_id for m in want], trial
        assert sorted(ours.message_ins_store) == sorted(theirs.message_ins_store), trial  # the same expired ones deleted
        assert ({k: m.metadata.delivered_at == "" for k, m in ours.message_ins_store.items()}
                == {k: m.metadata.delivered_at == "" for k, m in theirs.message_ins_store.items()}), trial


def test_a_sweep_over_1000_idle_nodes_is_cheap():
    now = time.time()
    pending = {f"m{i}": _message(10_000 + i, True, False, now) for i in range(10)}  # a round's 10 messages, delivered

    def sweep(state) -> float:
        t0 = time.perf_counter()
        for node in range(1000):
            assert state.get_message_ins(node_id=node, limit=1) == []
        return time.perf_counter() - t0

    flower, fast = min(sweep(_state(pending)) for _ in range(3)), min(sweep(_state(pending, fast=True)) for _ in range(3))
    print(f"\nsweep of 1000 idle nodes, 10 messages pending: Flower {flower * 1e3:.1f} ms, fast path {fast * 1e3:.1f} ms")
    assert fast < flower / 3


def test_only_the_simulations_grid_is_patched():
    nobody = NS(filter_nodes=lambda nodes, federation: set())  # another federation manager: no node is a member
    assert install_fast_idle_poll(InMemoryGrid(state_factory=_factory(nobody))) is False
    assert install_fast_idle_poll(NS(state=_factory().state())) is False  # a grid that is not the simulation's
    state = _state({})
    assert "get_message_ins" not in vars(state)  # Flower's own method: the class is never patched


# -- SecAgg+: keeping the masked-vector stage's replies ---------------------------------------------


def test_flower_secaggplus_stage_is_the_one_overridden():
    """The stage overridden, and the state field it reads (filled by that stage, read only after unmasking)."""
    _pinned(SecAggPlusWorkflow.collect_masked_vectors_stage, "e2e2900e524ba35a03b0937c99c76a22e99ff655dbe890fbd6b2366dfdfd6959",
            "(self, grid: flwr.serverapp.grid.grid.Grid, context: flwr.server.compat.legacy_context.LegacyContext, "
            "state: flwr.server.workflow.secure_aggregation.secaggplus_workflow.WorkflowState) -> bool")
    _pinned(SecAggPlusWorkflow.__call__, "204402b446244e5ec483089c16b212469adb8d6fcc2835a2704b94f91c358722",
            "(self, grid: flwr.serverapp.grid.grid.Grid, context: flwr.app.message.context.Context) -> None")
    assert "legacy_results" in WorkflowState.__dataclass_fields__
    assert "self.collect_masked_vectors_stage," in inspect.getsource(SecAggPlusWorkflow.__call__)


def test_the_override_keeps_every_reply_of_the_stage(monkeypatch):
    fitres = [object(), object()]
    state = WorkflowState(legacy_results=[(NS(node_id=11), fitres[0]), (NS(node_id=22), fitres[1])])
    calls = []
    monkeypatch.setattr(SecAggPlusWorkflow, "collect_masked_vectors_stage",
                        lambda self, grid, context, st: calls.append((grid, context, st)) or False)
    workflow = ClaimKeepingSecAggPlusWorkflow(num_shares=1.0, reconstruction_threshold=0.5)
    assert workflow.replies == []
    assert workflow.collect_masked_vectors_stage("grid", "context", state) is False  # Flower's verdict, unchanged
    assert calls == [("grid", "context", state)]
    assert workflow.replies == [(11, fitres[0]), (22, fitres[1])]


# -- the SuperLink's StartRun: an uploaded app keeps its signatures ------------------------------------


def test_flower_start_run_and_supernode_check_are_the_ones_relied_on():
    """The Control API's ``start_run`` (wrapped) and the SuperNode's check that reads what it stores."""
    from flwr.superlink.servicer.control import control_handlers
    from flwr.supernode import start_client_internal

    _pinned(control_handlers.start_run, "7f9355f11d8a76fcd07fe75c6666b19e88d6ab42248e69520a6a54c574e2c3db",
            "(request: flwr.proto.control_pb2.StartRunRequest, account: flwr.supercore.auth.typing.AccountInfo, "
            "state: flwr.server.superlink.linkstate.linkstate.LinkState, fleet_api_type: str | None, *, "
            "source: Literal['cli', 'web_ui', 'automation', 'unknown'] = 'unknown') -> flwr.proto.control_pb2.StartRunResponse")
    _pinned(start_client_internal._verify_fab, "dc3eb78d803b8fe9a65bc704e17da8b58e9f43020b43bf2ba0ba4812483634aa",
            "(fab: flwr.supercore.fab.Fab, trusted_entities: dict[str, str]) -> bool")
    _pinned(start_client_internal._pull_and_store_message,
            "eaf5d0e36dc34e4cf46a490511d077ac55cc8edbbcdbe938c1f6dbcb758628be",
            "(state: flwr.supernode.nodestate.nodestate.NodeState, object_store: "
            "flwr.supercore.object_store.object_store.ObjectStore, node_config: dict[str, bool | float | int | str], "
            "receive: collections.abc.Callable[[], tuple[flwr.app.message.message.Message, "
            "flwr.proto.message_pb2.ObjectTree] | None], get_run: collections.abc.Callable[[int], flwr.supercore.run.Run], "
            "get_fab: collections.abc.Callable[[str, int], flwr.supercore.fab.Fab], pull_object: "
            "collections.abc.Callable[[int, str], bytes], confirm_message_received: collections.abc.Callable[[int, str], None], "
            "trusted_entities: dict[str, str] | None) -> int | None")


def test_start_run_wrapper_stores_the_submitted_signatures():
    """The wrapped ``start_run`` hands Flower a state whose ``store_app`` keeps the request's verifications."""
    from flwr.superlink.servicer.control import control_handlers

    from server.flower_patches import install_fab_signature_forwarding

    original = control_handlers.start_run
    seen = {}

    def fake_start_run(request, account, state, fleet_api_type, **kwargs):
        state.store_app(Fab(hashlib.sha256(request.fab.content).hexdigest(), request.fab.content, {}), "fed", "@a/b",
                        "serverapp", "me")
        return "started"

    class State:
        def store_app(self, fab, *args):
            seen["verifications"] = fab.verifications

    control_handlers.start_run = fake_start_run
    try:
        assert install_fab_signature_forwarding()
        from flwr.common.serde import fab_to_proto
        from flwr.proto.control_pb2 import StartRunRequest

        request = StartRunRequest(fab=fab_to_proto(Fab("", b"bundle", {"fpk_1": '{"signature": "x", "signed_at": 1}'})))
        assert control_handlers.start_run(request, None, State(), None) == "started"
    finally:
        control_handlers.start_run = original
    assert seen["verifications"] == {"fpk_1": '{"signature": "x", "signed_at": 1}', "valid_license": "Valid"}
