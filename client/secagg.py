"""SecAgg+ at the branch: Flower's ``secaggplus_mod`` around the ``train`` handler.

``secagg_mod`` is the ClientApp's one mod (``ClientApp(mods=[secagg_mod])``):

* a message that is not a SecAgg+ message (no ``secaggplus_configs`` record:
  every message of a normal run) goes to the handler unchanged -- unless the
  run config says ``security.secagg = true``, in which case a plain training
  request is refused (a server cannot downgrade a SecAgg run to plain updates);
* a SecAgg+ message goes through Flower's ``secaggplus_mod``, which runs the
  four stages (setup, share keys, collect masked vectors, unmask) and calls the
  handler once, in the third stage, to get the update it masks.

Flower 1.39's ``secaggplus_mod`` speaks only the *legacy* record layout: it
reads the handler's reply as a ``FitRes`` (``fitres.parameters``,
``fitres.num_examples``, ``fitres.metrics``, ``fitres.status``) and is sent a
``FitIns`` (``fitins.parameters``, ``fitins.config``).  The message-API handler
of :mod:`client.app` reads ``config`` + ``arrays`` and answers ``branch`` +
``metrics`` + ``arrays``, so :func:`_legacy_bridge` translates both ways:

* in: the global adapter, verified against the server's signature when the
  envelope is on (``global-envelope`` in the FitIns config), in plain form for
  the handler, which is run with the envelope's *sealing* off (masking replaces
  the encryption; the branch still verifies the global and signs its claim);
* out: the **update delta** (trained adapter minus global, in the server's
  ``array-names`` order) as ``fitres.parameters`` for the mod to quantize and
  mask, ``num-examples`` as its weight, and the branch's privacy claim (and
  signature) as ``fitres.metrics``.  A budget refusal sends a zero delta with
  weight 0, so it changes nothing in the sum.

What the server receives in the third stage: the masked integer vector (in
the ``secaggplus_configs`` record), the claim and the weight in the clear
(both are written to the ledger anyway), and *empty* array records: the mod
clears every ArrayRecord of the reply before it leaves the branch.
"""

from __future__ import annotations

import json

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.client.mod import secaggplus_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.logger import log
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, RECORD_KEY_STATE
from flwr.compat.common import recorddict_compat as compat

from client.channel import BranchChannel
from common.wire.protocol import SECAGG_KEY_ARRAY_NAMES as KEY_NAMES
from common.wire.protocol import SECAGG_KEY_GLOBAL as KEY_GLOBAL
from common.wire.protocol import SECAGG_KEY_ROUND as KEY_ROUND
from common.wire.protocol import SECAGG_KEY_RUN_ID as KEY_RUN_ID
from common.config.run import RunConfig, branch_settings
from common.errors import FedbankError
from common.wire.protocol import STATUS_TRAINED, arrays_to_record, branch_record, claim_bytes, read_claim, record_to_arrays

WARNING = 30


def secagg_mod(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """Run SecAgg+ for SecAgg+ messages; pass every other message through untouched."""
    if msg.metadata.message_type != MessageType.TRAIN:
        return call_next(msg, ctxt)
    if not msg.has_content() or RECORD_KEY_CONFIGS not in msg.content.config_records:
        if ctxt.run_config.get("security.secagg") is True:
            raise FedbankError("security.secagg is on: this branch sends its update only masked by SecAgg+, "
                               "and refuses a plain training request")
        return call_next(msg, ctxt)
    return secaggplus_mod(msg, ctxt, _legacy_bridge(call_next))


def _legacy_bridge(handler: ClientAppCallable) -> ClientAppCallable:
    """The handler as ``secaggplus_mod`` needs it: FitIns in, FitRes (a delta) out."""

    def bridged(msg: Message, ctxt: Context) -> Message:
        cfg = RunConfig.from_flower(ctxt.run_config)
        branch = branch_settings(ctxt.node_config, cfg)
        fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
        config = fitins.config
        server_round, run_id = int(config[KEY_ROUND]), int(config[KEY_RUN_ID])
        names = json.loads(str(config[KEY_NAMES]))
        channel = None
        if cfg.security.envelope:
            channel = BranchChannel.load(branch.keys_dir, branch.branch_id, int(cfg.security.max_update_mb * 1024 * 1024))
            blob = config.get(KEY_GLOBAL)
            if not isinstance(blob, bytes):
                raise FedbankError("security.envelope is on but the SecAgg+ request carries no signed global adapter")
            global_arrays = channel.open_global(blob, run_id, server_round)
        else:
            global_arrays = dict(zip(names, parameters_to_ndarrays(fitins.parameters), strict=True))
        if sorted(global_arrays) != sorted(names):
            raise FedbankError("the global adapter's tensors do not match the server's array-names")

        # The handler sees a plain message-API request; its envelope sealing is off
        # (SecAgg+ masking replaces it), everything else in the run config is unchanged.
        received = msg.content
        msg.content = RecordDict({
            "config": ConfigRecord({"server-round": server_round, "run-id": run_id}),
            "arrays": arrays_to_record(global_arrays),
        })
        plain_ctxt = Context(run_id=ctxt.run_id, node_id=ctxt.node_id, node_config=ctxt.node_config, state=ctxt.state,
                             run_config={**ctxt.run_config, "security.envelope": False}, series_id=ctxt.series_id)
        try:
            reply = handler(msg, plain_ctxt)
        finally:
            msg.content = received
        if reply.has_error():
            return reply
        content = _fitres_content(reply.content, names, global_arrays, channel, ctxt)
        return Message(content, reply_to=msg)

    return bridged


def _fitres_content(content: RecordDict, names: list[str], global_arrays: dict[str, np.ndarray],
                    channel: BranchChannel | None, ctxt: Context) -> RecordDict:
    """The handler's reply as the FitRes records ``secaggplus_mod`` reads."""
    claim, signature = read_claim(content["branch"])
    if "envelope" in content:
        raise FedbankError("the train handler sealed its update; under SecAgg+ it must hand it over plain for masking")
    if claim["status"] == STATUS_TRAINED:
        if "arrays" not in content:
            raise FedbankError("the train handler reported 'trained' without an update")
        update = record_to_arrays(content["arrays"])
        delta = [np.asarray(update[k], dtype=global_arrays[k].dtype) - global_arrays[k] for k in names]
        weight = int(content["metrics"]["num-examples"])
    else:  # did not train: a zero delta with weight 0 leaves the weighted sum unchanged
        delta = [np.zeros_like(global_arrays[k]) for k in names]
        weight = 0
    _warn_if_clipped(delta, weight, ctxt)
    if signature is None and channel is not None:
        signature = channel.sign(claim_bytes(claim))
    metrics = dict(branch_record(claim, signature))
    metrics["train-loss"] = float(content["metrics"]["train-loss"])
    fitres = FitRes(status=Status(code=Code.OK, message="Success"), parameters=ndarrays_to_parameters(delta),
                    num_examples=weight, metrics=metrics)
    return compat.fitres_to_recorddict(fitres, keep_input=False)


def _warn_if_clipped(delta: list[np.ndarray], weight: int, ctxt: Context) -> None:
    """Log (at the branch only) when SecAgg+'s per-coordinate clipping will change this update."""
    state = ctxt.state.config_records.get(RECORD_KEY_STATE)
    if state is None or not weight:
        return
    clip, max_weight = float(state.get("clipping_range", 0.0)), float(state.get("max_weight", 0.0))
    if clip <= 0 or max_weight <= 0:
        return
    ratio = weight / max_weight
    clipped = sum(int(np.count_nonzero(np.abs(d) * ratio > clip)) for d in delta)
    if clipped:
        log(WARNING, "SecAgg+: %d coordinate(s) of this update exceed the clipping range %.3g (weight %d of max %.0f) "
            "and will be clipped before masking", clipped, clip, weight, max_weight)
