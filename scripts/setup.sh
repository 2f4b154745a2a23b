#!/usr/bin/env bash
# Creates .venv and installs everything the stack and the tests need (idempotent, fast when
# nothing changed). torch goes in first and pinned: otherwise a dependency pulls the newest
# torch with gigabytes of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
stamp=.venv/.installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: installing into .venv (first run takes a few minutes)" >&2
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==${TORCH_VERSION}"
python -m pip install --quiet -e ".[models,triton-cpu,dev]"
python - <<'PY'
import numpy, torch, transformers, tritonclient, pytriton  # noqa: F401
assert numpy.__version__.startswith("1."), "Triton's Python-backend stub needs numpy < 2"
PY
echo "$want" > "$stamp"
