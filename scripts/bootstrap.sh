#!/usr/bin/env bash
# Create (or reuse) .venv with the pinned CPU torch first, then fedbank and its test extras.
# Idempotent: a second call only re-checks the install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FEDBANK_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "fedbank: creating $venv" >&2
  "$python" -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
stamp="$venv/.fedbank-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  pip install -q --upgrade pip
  # The CPU wheel of torch must come first: a bare 'torch' requirement pulls a multi-GB CUDA build.
  torch="torch==${FEDBANK_TORCH_VERSION:-2.13.0}"
  pip install -q "$torch"
  # The rest through uv (flwr depends on it; the same versions as pip resolves, about 10 s instead of 85 s),
  # torch held where it is; pip if uv fails for any reason (not installable, its index unreachable, a conflict).
  # --compile-bytecode: pip writes .pyc files at install and uv does not; without them, and with
  # PYTHONDONTWRITEBYTECODE set (as on CI), every process that imports peft compiled transformers anew
  # (about 6 CPU-s more per process; the suite starts hundreds: CI took 2,318 s against 1,945 s before uv).
  if ! { pip install -q "uv==0.11.33" &&
         uv pip install -q --compile-bytecode --python "$venv/bin/python" "$torch" -e "$root[test]"; }; then
    echo "fedbank: uv could not install the project; installing it with pip" >&2
    pip install -q -e "$root[test]"
  fi
  touch "$stamp"
fi
