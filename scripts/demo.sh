#!/usr/bin/env bash
# The demo: set up on a fresh machine if needed, then simulate 3 bank branches x 3 rounds
# of DP LoRA fine-tuning on synthetic, PII-laden branch data, verify the signed ledger and
# write the compliance report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
# shellcheck disable=SC1091
. "${FEDBANK_VENV:-$root/.venv}/bin/activate"
out="${1:-$root/runs/demo-$(date +%Y%m%d-%H%M%S)}"
fedbank simulate --branches 3 --rounds 3 --epsilon 8 --out "$out"
# The reviewer states the trust anchor: here the server key the simulation generated (deployment: the
# fingerprint `fedbank keys init` printed). A keys/ folder beside the ledger is never trusted on its own.
fedbank ledger verify "$out/ledger.jsonl" --server-key "$out/keys/server/ed25519.pub"
fedbank report "$out" --out "$out/report.html" --server-key "$out/keys/server/ed25519.pub"
echo "compliance report: $out/report.html"
