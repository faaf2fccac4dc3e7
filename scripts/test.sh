#!/usr/bin/env bash
# The test command: set up on a fresh machine if needed, then run the whole pytest suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
# shellcheck disable=SC1091
. "${FEDBANK_VENV:-$root/.venv}/bin/activate"
cd "$root"
export FLWR_TELEMETRY_ENABLED=0
# Two workers (pytest-xdist), each test file whole in one worker: most of the suite's time is Flower
# runs, which leave a 2-core box partly idle when alone; a file's module fixtures (one federation each)
# run once, in its worker (a session fixture runs once per worker that uses it: conftest's e2e_run may
# run twice). FEDBANK_TEST_WORKERS=0 runs in one process; a later -n in "$@" wins.
python -m pytest -n "${FEDBANK_TEST_WORKERS:-2}" --dist loadfile "$@"
