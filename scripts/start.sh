#!/usr/bin/env bash
# One command for a fresh machine: install, make the demo model if missing, start Triton and
# the API on localhost (API on :9000, Triton gRPC on :8001). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
python scripts/make_tiny_model.py --output models/tiny-chat
exec python -m launcher.stack "$@"
