#!/usr/bin/env bash
# The demo: set up on a fresh machine if needed, then simulate 3 bank branches x 3 rounds of DP LoRA
# fine-tuning (epsilon 8 per branch over the whole run) on synthetic, PII-laden branch messages, verify the
# signed ledger and write the compliance report.
#
# The base is the pretrained sentence encoder all-MiniLM-L6-v2 (installed with fedbank; every node checks its
# files against upstream's SHA-256 before loading it) with a random head, so round 0 is at chance (8 intents:
# 12.5 %).  It reads English only, so the branches write English messages; 400 per branch at batch 64 give
# DP-SGD 21 noisy steps per branch; LoRA adapts only the top layer, at a small scale, so the noise has few
# parameters to land on.  The tiny random base (fedbank simulate's default) stays at chance in this setting.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
# shellcheck disable=SC1091
. "${FEDBANK_VENV:-$root/.venv}/bin/activate"
out="${1:-$root/runs/demo-$(date +%Y%m%d-%H%M%S)}"
fedbank simulate --branches 3 --rounds 3 --epsilon 8 --out "$out" \
    --set model.name=all-MiniLM-L6-v2 --set model.max-length=64 \
    --set model.lora.layers=5 --set model.lora.alpha=2 \
    --set train.optimizer=sgd --set train.learning-rate=0.2 --set train.batch-size=64 \
    --set data.records-per-branch=400 --set data.zh-fraction=0
# The reviewer states the trust anchor: here the server key the simulation generated (deployment: the
# fingerprint `fedbank keys init` printed). A keys/ folder beside the ledger is never trusted on its own.
fedbank ledger verify "$out/ledger.jsonl" --server-key "$out/keys/server/ed25519.pub"
fedbank report "$out" --out "$out/report.html" --server-key "$out/keys/server/ed25519.pub"
echo "compliance report: $out/report.html"
