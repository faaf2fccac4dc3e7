"""Fuzzing the admission step: random and mutated replies, signed and unsigned, never escape it.

Hypothesis builds replies from a real branch's honest one -- its claim mutated
field by field (and signed again with the branch's own key when keys exist, so
the mutation reaches the checks behind the signature), or replaced by random,
truncated, deeply nested or oversized text; its records dropped, added or
given random metrics; its update flipped, replaced or left out -- and throws
each at the normal path (:class:`server.admission.intake.Intake`) and at the
SecAgg+ path (:class:`server.admission.claims.ClaimChecks` on ``fitres.metrics``
with a random weight).  Every reply must end admitted or rejected with a known
reason, and no rejection may come from the intake's last-resort catch
(``unforeseen: ...``): the schema foresaw it.  At least 10,000 replies in all.
"""

from __future__ import annotations

import json

import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import LedgerError
from common.wire.canonical import canonical_json
from common.wire.protocol import arrays_to_record
from server.admission.claims import ClaimChecks, Rejected
from server.admission.intake import UNFORESEEN, Intake
from server.admission.reply_schema import secagg_metrics_problem
from server.admission.spend import SpendAudit
from tests.branch_calls import claim_of
from tests.test_intake import RUN_ID, signing_key, world  # noqa: F401  (world: the fixture)

pytestmark = pytest.mark.usefixtures("server_task_identity")
EXAMPLES = 2_500  # per test and path: 2 tests x 2 paths x 2,500 = 10,000 replies
REASONS = {"malformed", "unknown-branch", "forged", "replayed", "duplicate", "bad-claim", "bad-weight",
           "config-mismatch", "epsilon-decreased", "epsilon-mismatch", "tampered", "oversized", "keys", "shape",
           "dtype", "non-finite", "norm"}

scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=24)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
metric_values = st.integers(-2**63, 2**63 - 1) | st.floats() | st.lists(st.integers(-5, 5), max_size=3)
config_values = st.text(max_size=30) | st.binary(max_size=80) | st.integers(-2**63, 2**63 - 1) | st.floats() | st.booleans()


@st.composite
def claim_texts(draw, claim: dict) -> tuple[str, dict | None]:
    """A claim's text and, when it is a mutated claim, the mutated dict (to sign)."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "random", "deep", "huge", "truncated"]))
    if kind == "random":
        return draw(st.text(max_size=200)), None
    if kind == "deep":
        depth = draw(st.integers(3, 100_000))
        return draw(st.sampled_from(["[", '{"a":'])) * depth, None
    if kind == "huge":
        return json.dumps({**claim, "branch": "x" * 20_000}), None
    mutated = dict(claim)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "set", "drop", "add", "pii"]))
        key = draw(st.sampled_from(sorted(mutated) or ["x"]))
        if action == "set":
            mutated[key] = draw(json_values)
        elif action == "drop":
            mutated.pop(key, None)
        elif action == "add":
            mutated[draw(st.text(max_size=10))] = draw(json_values)
        else:
            mutated["pii_counts"] = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
    text = json.dumps(mutated)
    if kind == "truncated":
        return text[:draw(st.integers(0, len(text)))], None
    return text, mutated


class Base:
    """The honest reply the fuzzer starts from, and the key that signs its mutations (short repr for Hypothesis)."""

    def __init__(self, honest: Message, signer) -> None:
        self.honest, self.signer = honest, signer

    def __repr__(self) -> str:
        return "Base(honest reply)"


@st.composite
def replies(draw, base: Base, sealed: bool) -> tuple[Message, dict, int]:
    """A random reply made from ``base.honest``; its SecAgg+ ``fitres.metrics`` and weight."""
    honest, signer = base.honest, base.signer
    claim = claim_of(honest)
    text, mutated = draw(claim_texts(claim))
    said = mutated or claim
    branch = {"branch-id": str(said.get("branch", "?")), "status": str(said.get("status", "?")), "claim": text}
    if signer is not None and mutated is not None:
        try:
            branch["signature"] = signer(mutated).sign(canonical_json(mutated))
        except (LedgerError, KeyError, TypeError):
            branch["signature"] = draw(st.binary(max_size=80))
    if draw(st.booleans()):
        branch[draw(st.sampled_from(["branch-id", "status", "signature", "extra"]))] = draw(config_values)
    metrics = {"num-examples": claim["examples"], "unit-weight": 1, "train-loss": 0.5}
    for _ in range(draw(st.integers(0, 2))):
        metrics[draw(st.sampled_from(["num-examples", "unit-weight", "train-loss", "extra"]))] = draw(metric_values)
    content = RecordDict({"branch": ConfigRecord(branch), "metrics": MetricRecord(metrics)})
    update = draw(st.sampled_from(["honest", "honest", "flipped", "random", "none", "wrong-kind"]))
    name = "envelope" if sealed else "arrays"
    if update in ("honest", "flipped", "random"):
        content[name] = _update(honest.content[name], update, draw, sealed)
    elif update == "wrong-kind":
        content[name] = MetricRecord({"update": 1})
    for drop in draw(st.sets(st.sampled_from(["branch", "metrics", "extra"]), max_size=2)):
        if drop == "extra":
            content["extra"] = ConfigRecord({"x": 1})
        elif drop in content:
            del content[drop]
    fitres = {**branch, "train-loss": draw(st.floats() | st.integers(-5, 5))}
    msg = Message(content=content, reply_to=Message(content=RecordDict(), dst_node_id=1, message_type="train"))
    return msg, fitres, draw(st.integers(-2**63, 2**63 - 1))


def _update(record, how: str, draw, sealed: bool):
    if not sealed:
        return record if how == "honest" else ArrayRecord()
    blob = bytearray(record["update"])
    if how == "flipped":
        blob[draw(st.integers(0, len(blob) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif how == "random":
        blob = bytearray(draw(st.binary(max_size=300)))
    return ConfigRecord({"update": bytes(blob)})


def _fuzz(world, honest: Message, keys, signer) -> int:
    """Throw EXAMPLES random replies at both paths; return how many replies were thrown."""
    thrown = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=replies(Base(honest, signer), sealed=keys is not None))
    def run(case):
        msg, fitres, weight = case
        spend = SpendAudit(world["cfg"])
        intake = Intake(run_id=RUN_ID, keys=keys, max_update_norm=50.0, max_bytes=1 << 20, spend=spend)
        out = intake.admit_round(1, [msg], world["arrays"])
        assert len(out.admitted) + len(out.rejected) == 1 and not out.failures
        checks = ClaimChecks(run_id=RUN_ID, keys=keys, spend=SpendAudit(world["cfg"]))
        secagg = checks.check(fitres, 1, set(), weights={"SecAgg+ weight": weight}, problem=secagg_metrics_problem(fitres))
        for rejected in out.rejected + ([secagg] if isinstance(secagg, Rejected) else []):
            assert rejected.reason in REASONS and not rejected.detail.startswith(UNFORESEEN), rejected
        thrown.append(2)

    run()
    return sum(thrown)


def test_signed_replies_never_escape_admission(world):
    honest = world["replies"][1][0]
    thrown = _fuzz(world, honest, world["keys"], lambda claim: signing_key(world["cfg"], "branch-0"))
    assert thrown >= 2 * EXAMPLES


def test_unsigned_replies_never_escape_admission(world):
    honest = world["replies"][1][0]
    claim = claim_of(honest)
    plain = Message(content=RecordDict({
        "branch": ConfigRecord({"branch-id": claim["branch"], "status": claim["status"], "claim": honest.content["branch"]["claim"]}),
        "metrics": honest.content["metrics"], "arrays": arrays_to_record(world["arrays"])}),
        reply_to=Message(content=RecordDict(), dst_node_id=1, message_type="train"))
    thrown = _fuzz(world, plain, None, None)
    assert thrown >= 2 * EXAMPLES
