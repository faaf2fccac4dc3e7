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
fedbank ledger verify "$out/ledger.jsonl" --require-signatures
fedbank report "$out" --out "$out/report.html"
echo "compliance report: $out/report.html"
