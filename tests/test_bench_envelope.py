"""bench/envelope.py measures real updates: both arms of its size comparison are trained replies.

The plain (unsealed) arm once measured the branch's signed *refusal* (its default policy requires
sealed updates), so the README's "plain reply / adapter" read 0.07x. Both arms must now carry the
adapter, and the plain arm runs only because this branch's own policy allows it.
"""

from __future__ import annotations

from bench import envelope


def test_sealed_and_plain_replies_both_carry_the_adapter(tmp_path):
    from common.model.adapter import adapter_arrays
    from common.model.build import build_peft_model, load_tokenizer

    cfg = envelope._cfg("default", tmp_path / "sealed", True)
    model = build_peft_model(cfg.model, 8, vocab_size=len(load_tokenizer(cfg.model)))
    adapter = sum(a.nbytes for a in adapter_arrays(model).values())
    sealed = envelope.real_exchange(cfg, 8, envelope=True)
    plain = envelope.real_exchange(envelope._cfg("default", tmp_path / "plain", False), 8, envelope=False)
    assert sealed["envelope_bytes"] > adapter and sealed["reply_wire_bytes"] > adapter
    assert plain["envelope_bytes"] is None and adapter < plain["reply_wire_bytes"] < 2 * adapter
    assert (tmp_path / "plain" / "branch-policy-plain.toml").read_text(encoding="utf-8").count("envelope-required = false") == 1
