#!/usr/bin/env bash
# One command for the whole test suite: unit tests, then end-to-end tests that start the real
# tritonserver and the API. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
python scripts/make_tiny_model.py --output models/tiny-chat
exec python -m pytest "$@"
