#!/usr/bin/env bash
# One command for a fresh machine: install, make the demo model if missing, start Triton and
# the API on localhost (API on :9000, its gRPC API on :9001, Triton gRPC on :8001). Ctrl-C stops
# both. API_GRPC__PORT=off runs the API without its gRPC server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
python scripts/make_tiny_model.py --output models/tiny-chat
if [ "${API_GRPC__PORT-}" = off ]; then
  unset API_GRPC__PORT
else
  export API_GRPC__PORT="${API_GRPC__PORT:-9001}"
fi
exec python -m launcher.stack "$@"
