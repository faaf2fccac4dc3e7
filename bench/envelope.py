"""Benchmark: cost of the sealed-update envelope, and bytes on the wire per branch per round.

For each model configuration (``default``: the tiny model and LoRA of
pyproject.toml; ``large``: a BERT-base-shaped tiny model, 12 layers x 768,
LoRA rank 16 on query/key/value, a few MB of adapter):

* **time** of ``common.wire.envelope.seal_update`` (safetensors + X25519/HKDF +
  AES-256-GCM + Ed25519 signature) and ``open_update`` (signature check,
  decryption, safetensors), median of ``--repeats`` calls on the real adapter
  arrays, plus the same steps one by one (serialize, encrypt, sign, verify,
  decrypt, deserialize) so the expensive one is visible; throughput in MB/s
  (10^6 bytes of raw adapter per second);
* **bytes on the wire**: one real training reply of the real ClientApp
  (``client.app``: one local round on a small synthetic partition), deflated
  into exactly the objects Flower pushes to the SuperLink
  (``get_all_nested_objects(reply)``, ``.deflate()``), with the envelope on
  (the default) and off (plain ``ArrayRecord``); also the server's train
  message (signed global adapter).  Divided by the raw adapter bytes (sum of
  the arrays' ``nbytes``) and by the full model bytes (every parameter of base
  model + adapter: what a branch would send per round without LoRA).

gRPC/HTTP framing and TLS record overhead are not counted (a few dozen bytes
per message plus ~0.1 % per TLS record).

    python bench/envelope.py [--configs default,large] [--repeats 50]

Writes bench/results/envelope.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import RESULTS, human_bytes, machine, median, say, table, write_result  # noqa: E402

CONFIGS = {
    "default": {},
    "large": {"model.tiny.hidden-size": 768, "model.tiny.layers": 12, "model.tiny.heads": 12,
              "model.lora.rank": 16, "model.lora.target-modules": "query,key,value"},
}
# A small local round: the reply's size does not depend on how much the branch trained.
ROUND = {"num-server-rounds": 1, "num-branches": 2, "data.records-per-branch": 24, "model.max-length": 48,
         "train.batch-size": 8}
RUN_ID, ROUND_NO = 9, 1


def _cfg(name: str, out: Path, envelope: bool):
    from common.config.run import RunConfig

    return RunConfig.from_flower({**RunConfig().to_flower(), **ROUND, **CONFIGS[name], "output-dir": str(out),
                                  "security.envelope": envelope})


def _set_server_identity() -> None:
    """Messages are created as the ServerApp would (Flower checks the creating task's identity)."""
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 7, 0


def wire_bytes(msg) -> int:
    """Bytes of every object Flower pushes for ``msg`` (message, records, arrays), deflated."""
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

    return sum(len(obj.deflate()) for obj in get_all_nested_objects(msg).values())


def real_exchange(cfg, num_labels: int, envelope: bool) -> dict:
    """One train message from the server and the real ClientApp's reply to it (branch 0 of ``cfg``); their sizes.

    ``cfg`` is the run config (its ``output-dir`` a scratch folder), ``num_labels`` its classifier's labels.
    """
    from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

    from client.app import app as client_app
    from common.config.policy import BranchPolicy
    from common.wire.protocol import STATUS_TRAINED
    from common.wire.global_envelope import sign_global
    from common.keys.provision import init_keys
    from common.model.build import build_peft_model, load_tokenizer
    from common.model.adapter import adapter_arrays
    from common.wire.protocol import arrays_to_record
    from server.records.keyring import ServerKeys

    tok = load_tokenizer(cfg.model)
    model = build_peft_model(cfg.model, num_labels, vocab_size=len(tok))
    arrays = adapter_arrays(model)
    config = ConfigRecord({"server-round": ROUND_NO, "run-id": RUN_ID})
    if envelope:
        init_keys(cfg.keys_dir, [f"branch-{i}" for i in range(cfg.federation.num_branches)])
        blob = sign_global(arrays, run_id=RUN_ID, server_round=ROUND_NO, server_signing_key=ServerKeys.load(cfg.keys_dir).signing_key)
        content = RecordDict({"config": config, "envelope": ConfigRecord({"global": blob})})
    else:
        content = RecordDict({"config": config, "arrays": arrays_to_record(arrays)})
    _set_server_identity()
    train_msg = Message(content=content, dst_node_id=1, message_type=MessageType.TRAIN)
    down = wire_bytes(train_msg)
    node_config = {"partition-id": 0, "num-partitions": cfg.federation.num_branches}
    if not envelope:  # the branch's default policy refuses unsealed updates: this branch's owner allows them
        policy = Path(cfg.output_dir) / "branch-policy-plain.toml"
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(BranchPolicy(envelope_required=False).to_toml(), encoding="utf-8")
        node_config["policy-file"] = str(policy)
    ctx = Context(run_id=7, node_id=1, node_config=node_config, state=RecordDict(), run_config=cfg.to_flower())
    reply = client_app(train_msg, ctx)
    if reply.has_error():
        raise RuntimeError(f"the ClientApp failed: {reply.error.reason}")
    status = reply.content["branch"]["status"]
    if status != STATUS_TRAINED:  # a refusal is a few hundred bytes: not the size of an update
        raise RuntimeError(f"the ClientApp answered {status!r}, not a trained update: see its claim")
    envelope_bytes = len(reply.content["envelope"]["update"]) if envelope else None
    return {"reply_wire_bytes": wire_bytes(reply), "train_message_wire_bytes": down, "envelope_bytes": envelope_bytes}


def time_envelope(arrays: dict, repeats: int) -> dict:
    """Medians (seconds) of seal/open and of their steps, interleaved so load hits all alike."""
    import time

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from common.wire import envelope as env

    signing = Ed25519PrivateKey.generate()
    server = X25519PrivateKey.generate()
    verify_keys = {"branch-0": signing.public_key()}
    raw = env._RAW
    kw = dict(run_id=RUN_ID, server_round=ROUND_NO, branch_id="branch-0", branch_signing_key=signing,
              server_public_key=server.public_key())
    blob = env.seal_update(arrays, **kw)
    plaintext = env.serialize_arrays(arrays)
    header = b"\0" * 62  # stands in for the envelope header (associated data)

    def encrypt():
        eph = X25519PrivateKey.generate()
        eph_pub = eph.public_key().public_bytes(*raw)
        key = env._derive_key(eph.exchange(server.public_key()), eph_pub, server.public_key().public_bytes(*raw))
        return eph_pub, AESGCM(key).encrypt(b"\1" * 12, plaintext, header)

    eph_pub, ciphertext = encrypt()
    signed = header + ciphertext
    signature = signing.sign(signed)

    def decrypt():
        shared = server.exchange(env.X25519PublicKey.from_public_bytes(eph_pub))
        key = env._derive_key(shared, eph_pub, server.public_key().public_bytes(*raw))
        return AESGCM(key).decrypt(b"\1" * 12, ciphertext, header)

    steps = {
        "seal_update": lambda: env.seal_update(arrays, **kw),
        "open_update": lambda: env.open_update(blob, expected_run_id=RUN_ID, expected_round=ROUND_NO,
                                               server_private_key=server, branch_verify_keys=verify_keys),
        "serialize": lambda: env.serialize_arrays(arrays),
        "encrypt": encrypt,
        "sign": lambda: signing.sign(signed),
        "verify": lambda: signing.public_key().verify(signature, signed),
        "decrypt": decrypt,
        "deserialize": lambda: env.deserialize_arrays(plaintext),
    }
    for fn in steps.values():  # warm-up
        fn(), fn()
    samples: dict[str, list[float]] = {k: [] for k in steps}
    for i in range(repeats):
        for key, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t0)
        if (i + 1) % max(1, repeats // 4) == 0:
            say(f"  timing {i + 1}/{repeats}")
    return {k: median(v) for k, v in samples.items()}


def measure(name: str, workdir: Path, repeats: int) -> dict:
    from common.model.build import build_peft_model, load_tokenizer
    from common.model.adapter import adapter_arrays

    cfg = _cfg(name, workdir / name, True)
    say(f"{name}: building the model (hidden {cfg.model.hidden_size}, {cfg.model.layers} layers, LoRA rank "
        f"{cfg.model.lora_rank} on {cfg.model.lora_target_modules})")
    tok = load_tokenizer(cfg.model)
    model = build_peft_model(cfg.model, 8, vocab_size=len(tok))
    arrays = adapter_arrays(model)
    adapter_bytes = sum(a.nbytes for a in arrays.values())
    full_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    lora_bytes = sum(a.nbytes for k, a in arrays.items() if "lora_" in k)
    del model
    say(f"{name}: adapter {human_bytes(adapter_bytes)} in {len(arrays)} arrays (LoRA {human_bytes(lora_bytes)}), "
        f"full model {human_bytes(full_bytes)}; timing seal/open x{repeats}")
    t = time_envelope(arrays, repeats)
    say(f"{name}: seal {1e3 * t['seal_update']:.2f} ms, open {1e3 * t['open_update']:.2f} ms; one real ClientApp round, envelope on and off")
    sealed = real_exchange(_cfg(name, workdir / f"{name}-sealed", True), 8, envelope=True)
    plain = real_exchange(_cfg(name, workdir / f"{name}-plain", False), 8, envelope=False)
    mb = adapter_bytes / 1e6
    return {
        "config": name,
        "model": {k: v for k, v in CONFIGS[name].items()} or "pyproject.toml defaults",
        "adapter_arrays": len(arrays),
        "adapter_bytes": adapter_bytes,
        "lora_bytes": lora_bytes,
        "full_model_bytes": full_bytes,
        "repeats": repeats,
        "median_s": t,
        "seal_mb_per_s": mb / t["seal_update"],
        "open_mb_per_s": mb / t["open_update"],
        "round_trip_ms": 1e3 * (t["seal_update"] + t["open_update"]),
        "envelope_bytes": sealed["envelope_bytes"],
        "reply_wire_bytes": sealed["reply_wire_bytes"],
        "reply_wire_bytes_plain": plain["reply_wire_bytes"],
        "train_message_wire_bytes": sealed["train_message_wire_bytes"],
        "train_message_wire_bytes_plain": plain["train_message_wire_bytes"],
        "reply_over_adapter": sealed["reply_wire_bytes"] / adapter_bytes,
        "reply_plain_over_adapter": plain["reply_wire_bytes"] / adapter_bytes,
        "reply_over_full_model": sealed["reply_wire_bytes"] / full_bytes,
        "envelope_overhead_bytes": sealed["reply_wire_bytes"] - plain["reply_wire_bytes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="default,large", help=f"comma-separated, of {', '.join(CONFIGS)} (default: both)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per step (default 50; median reported)")
    parser.add_argument("--out", default=str(RESULTS / "envelope.json"), help="JSON result file")
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    for n in names:
        if n not in CONFIGS:
            parser.error(f"unknown config {n!r}: choose from {', '.join(CONFIGS)}")
    warnings.filterwarnings("ignore")
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    info = machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="fedbank-bench-envelope-") as tmp:
        for name in names:
            results.append(measure(name, Path(tmp), args.repeats))
    write_result(args.out, {"benchmark": "envelope", **info, "results": results})

    rows = []
    for r in results:
        t = r["median_s"]
        rows.append([
            r["config"], human_bytes(r["adapter_bytes"]),
            f"{1e3 * t['seal_update']:.2f} ms ({r['seal_mb_per_s']:.0f} MB/s)",
            f"{1e3 * t['open_update']:.2f} ms ({r['open_mb_per_s']:.0f} MB/s)",
            " / ".join(f"{1e3 * t[k]:.2f}" for k in ("serialize", "encrypt", "sign", "verify", "decrypt", "deserialize")),
            f"{r['reply_wire_bytes']:,} B = **{r['reply_over_adapter']:.3f}x** adapter",
            f"{r['reply_plain_over_adapter']:.3f}x",
            f"**{r['reply_over_full_model']:.4f}x** ({human_bytes(r['full_model_bytes'])})",
        ])
    print(table(["config", "adapter (raw)", "seal_update", "open_update",
                 "serialize / encrypt / sign / verify / decrypt / deserialize (ms)",
                 "reply on the wire (sealed)", "plain reply / adapter", "sealed reply / full model"], rows))


if __name__ == "__main__":
    main()
