"""Where fedbank changes Flower's own code: every such change, in one place.

Written against **Flower 1.39.0** (``flwr.__version__``); ``tests/test_flower_patches.py``
pins the source of every Flower function replaced or overridden here and fails
when an upgrade changes one of them, so each patch is re-read before it is kept.

* :func:`install_fast_idle_poll` -- replaces, on the simulation's own LinkState
  only, ``InMemoryLinkState.get_message_ins`` with a fast path for a poll of an
  idle node (the simulation engine polls every virtual SuperNode every 0.1 s);
* :class:`ClaimKeepingSecAggPlusWorkflow` -- overrides the third stage of
  ``SecAggPlusWorkflow`` (``collect_masked_vectors_stage``) to keep that stage's
  replies, whose privacy claims the server must ledger;
* :func:`install_fab_signature_forwarding` -- wraps, in the deployment's
  SuperLink process (:mod:`server.signed_superlink`), the Control API's
  ``control_handlers.start_run`` so that an uploaded app bundle keeps the
  signatures it was submitted with, which the branches' SuperNodes verify.
"""

from __future__ import annotations

import hashlib
import time

from flwr.common import FitRes
from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.serverapp import Grid
from flwr.superlink.federation.noop_federation_manager import NoOpFederationManager
from flwr.superlink.grid import InMemoryGrid
from flwr.superlink.servicer.control import control_handlers
from flwr.supercore.fab import Fab

from common.keys.app_signing import LICENSE_FIELD

_MARK = "_fedbank_fast_idle_poll"
_MARK_SIGNATURES = "_fedbank_fab_signatures"


def install_fast_idle_poll(grid: Grid) -> bool:
    """Make the simulation engine's poll of an idle virtual SuperNode cheap (Flower 1.39.0).

    **What it replaces.**  In simulation, Flower's engine
    (``flwr.server.superlink.fleet.vce.vce_api.add_messages_to_queue``) asks the
    in-memory LinkState every 0.1 s, for *each* of the ``num-branches`` virtual
    SuperNodes, for that node's next message.  Each call
    (``InMemoryLinkState.get_message_ins``) first re-validates *every* stored
    instruction message (``_check_stored_messages``: a lock, the clock, a
    federation check per message) and only then filters by node.

    **Why.**  With 1,000 branches and a round's 10 messages pending that is
    10,000 checks per 0.1 s (38 ms a sweep, a quarter of a core) in the process
    that also runs the ServerApp: rounds about 20 % slower than with 10 branches
    for the same work (``bench/scale.py``).

    **How.**  The state's ``get_message_ins`` is wrapped with a fast path: if no
    stored message is addressed to the node and still undelivered, and none has
    expired, the original would return no message and delete none, so the
    wrapper returns ``[]`` without the per-message checks; in every other case
    the original runs unchanged.  Only a state whose federation manager is
    Flower's no-op one (the simulation's: its federation check never removes a
    message) is patched, so what every call returns and deletes is what
    Flower's would.

    **Where.**  Only the simulation: ``flwr-simulation`` (``flwr.simulation.run_simulation``)
    hands the ServerApp an ``InMemoryGrid`` over the very LinkState its engine
    polls (one ``LinkStateFactory``, whose state is created once); a deployed
    ServerApp gets a gRPC grid and the SuperLink's state lives in another
    process, so nothing is patched there.  The instance is patched, not the class.

    Returns:
        True when the fast path is in place (now or already), False when
        ``grid`` is not the simulation's (nothing is changed).
    """
    state = getattr(grid, "state", None) if isinstance(grid, InMemoryGrid) else None
    if not isinstance(state, InMemoryLinkState) or not isinstance(state.federation_manager, NoOpFederationManager):
        return False
    original = state.get_message_ins
    if getattr(original, _MARK, False):
        return True

    def get_message_ins(node_id: int, limit: int | None, *, run_id: int | None = None):
        if limit is not None and limit < 1:
            return original(node_id, limit, run_id=run_id)
        current = time.time()  # Flower's now().timestamp(): the same clock
        with state.lock:
            for message in state.message_ins_store.values():
                meta = message.metadata
                if meta.created_at + meta.ttl <= current:
                    break  # an expired message: the original deletes it
                if meta.dst_node_id == node_id and meta.delivered_at == "" and (run_id is None or meta.run_id == run_id):
                    break  # a message for this node
            else:
                return []
        return original(node_id, limit, run_id=run_id)

    setattr(get_message_ins, _MARK, True)
    get_message_ins.__wrapped__ = original  # type: ignore[attr-defined]
    get_message_ins.__doc__ = original.__doc__
    state.get_message_ins = get_message_ins
    return True


class ClaimKeepingSecAggPlusWorkflow(SecAggPlusWorkflow):
    """Flower 1.39.0's SecAgg+ workflow, keeping the third stage's replies (the branches' claims).

    **What it overrides.**  ``SecAggPlusWorkflow.collect_masked_vectors_stage``
    (the "collect masked vectors" stage): the override runs Flower's stage
    unchanged, then copies ``state.legacy_results`` -- the ``(proxy, FitRes)``
    of every branch that sent its masked vector -- into :attr:`replies`.

    **Why.**  Each ``FitRes`` carries the branch's privacy claim in the clear
    (``fitres.metrics``), which the server must verify and ledger.  Flower
    hands those results to the strategy only in the last stage, and only when
    unmasking succeeds; capturing them when the masked vectors arrive lets a
    round whose unmasking fails still ledger the privacy its branches spent.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.replies: list[tuple[int, FitRes]] = []

    def collect_masked_vectors_stage(self, grid, context, state) -> bool:  # noqa: ANN001 (Flower's signature)
        """Flower's stage, then keep ``(node id, FitRes)`` of every reply in :attr:`replies`."""
        ok = super().collect_masked_vectors_stage(grid, context, state)
        self.replies = [(int(proxy.node_id), fitres) for proxy, fitres in state.legacy_results]
        return ok


class _SignatureKeepingState:
    """A LinkState that stores one uploaded FAB with the verifications it was submitted with."""

    def __init__(self, state, fab_hash: str, verifications: dict[str, str]) -> None:  # noqa: ANN001 (Flower's LinkState)
        self._state = state
        self._fab_hash = fab_hash
        self._verifications = verifications

    def __getattr__(self, name: str):  # noqa: ANN204 - every other attribute is the state's own
        return getattr(self._state, name)

    def store_app(self, fab: Fab, *args, **kwargs) -> str:
        """Flower's ``store_app``, with the submitted verifications on the uploaded FAB."""
        if fab.hash_str == self._fab_hash:
            fab = Fab(fab.hash_str, fab.content, dict(self._verifications))
        return self._state.store_app(fab, *args, **kwargs)


def install_fab_signature_forwarding() -> bool:
    """Keep the signatures of an app bundle uploaded with ``StartRun`` (Flower 1.39.0's SuperLink).

    **What it replaces.**  ``flwr.superlink.servicer.control.control_handlers.start_run``
    (called by the Control API's ``/start-run`` route) is wrapped.

    **Why.**  A SuperNode started with ``--trusted-entities`` runs a run's app
    only if the FAB's ``verifications`` hold a signature by a trusted key
    (``flwr.supernode.start_client_internal._pull_and_store_message``), and a
    ``valid_license`` entry, without which it answers that the SuperLink does
    not support verification.  Flower's SuperLink fills ``verifications`` only
    for apps it fetches from Flower Hub; for an uploaded FAB it stores ``{}``
    (``start_run``: ``verification_dict = {}``, then ``fab_file =
    request.fab.content``), so every uploaded app would be refused.

    **How.**  For a request that uploads a FAB (content, no Hub app spec), the
    wrapper hands ``start_run`` a LinkState whose ``store_app`` stores that FAB
    with the request's own ``fab.verifications`` and ``valid_license``; the
    rest of ``start_run`` runs unchanged.  Nothing here checks a signature:
    the SuperLink is headquarters' and is not trusted to; each SuperNode
    verifies against its own trusted keys, so an unsigned FAB or one signed
    with another key is refused at the branch.

    Returns:
        True when the wrapper is in place (now or already).
    """
    original = control_handlers.start_run
    if getattr(original, _MARK_SIGNATURES, False):
        return True

    def start_run(request, account, state, fleet_api_type, **kwargs):  # noqa: ANN001, ANN202 (Flower's signature)
        if request.fab.content and not request.app_spec:
            fab_hash = hashlib.sha256(request.fab.content).hexdigest()
            verifications = {k: v for k, v in request.fab.verifications.items() if k != LICENSE_FIELD}
            state = _SignatureKeepingState(state, fab_hash, {**verifications, LICENSE_FIELD: "Valid"})
        return original(request, account, state, fleet_api_type, **kwargs)

    setattr(start_run, _MARK_SIGNATURES, True)
    start_run.__wrapped__ = original  # type: ignore[attr-defined]
    control_handlers.start_run = start_run
    return True
