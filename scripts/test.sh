#!/usr/bin/env bash
# The test command: set up on a fresh machine if needed, then run the whole pytest suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
# shellcheck disable=SC1091
. "${FEDBANK_VENV:-$root/.venv}/bin/activate"
cd "$root"
export FLWR_TELEMETRY_ENABLED=0
python -m pytest "$@"
