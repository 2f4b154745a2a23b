#!/usr/bin/env bash
# GPU check: on a host with an NVIDIA GPU and NGC's Triton TensorRT-LLM image, prepare the tiny
# demo model for each TensorRT-LLM backend, serve the generated model repository exactly as the
# Helm chart does (plain tritonserver + the API) and run the smoke checks of
# scripts/gpu_smoke.py through the API: load, stream, stop, seed, json_schema, logprobs, usage
# and cancellation. Both backends on tiny-chat fit in ten minutes; the e2e suite and the
# benchmarks are optional (below).
#
# Where: inside the image of docker/triton.Dockerfile (tritonserver, tensorrt_llm, this
# project), with the checkout mounted, e.g.
#   docker run --rm --gpus 1 --shm-size 2g -v "$PWD:/work" -w /work IMAGE bash scripts/gpu_check.sh
# The legacy backend needs a container that still has it (LEGACY_TRITON_VERSION there) and the
# TensorRT-LLM examples: -e TRTLLM_EXAMPLES_DIR=/work/TensorRT-LLM/examples.
#
# Settings (environment):
#   GPU_CHECK_BACKENDS   backends to check, in order (default "llmapi trtllm"; "llmapi" alone on
#                        containers without the C++ tensorrtllm backend)
#   GPU_CHECK_SPEC       model spec (default engines/specs/tiny-chat.toml)
#   GPU_CHECK_OUT        work directory (default .cache/gpu-check); a rerun reuses what was built
#   GPU_CHECK_E2E=1      also run tests/e2e against each backend (tiny-chat only; much longer)
#   GPU_CHECK_BENCHMARK=1  also run the benchmarks (benchmarks/) against each backend
#   TRITON_SERVER_DIR    Triton installation (default /opt/tritonserver)
#   TRTLLM_EXAMPLES_DIR  examples/ of the TensorRT-LLM release matching tensorrt_llm (trtllm)
#   PYTHON               interpreter (default python3)
# Results (smoke JSON lines, logs, JUnit XML, benchmark artifacts) land in $GPU_CHECK_OUT/report.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SPEC=${GPU_CHECK_SPEC:-engines/specs/tiny-chat.toml}
BACKENDS=${GPU_CHECK_BACKENDS:-llmapi trtllm}
BUDGET_S=600
OUT=${GPU_CHECK_OUT:-.cache/gpu-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REPORT=$OUT/report
export TRITON_SERVER_DIR=${TRITON_SERVER_DIR:-/opt/tritonserver}
HTTP_PORT=18000 GRPC_PORT=18001 METRICS_PORT=18002 API_PORT=19000
API_KEY="sk-gpu-check-$(date +%s)"
started=$(date +%s)
pids=()

log() { printf '%s gpu_check: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

stop_started() {
  # Only the processes this script started, newest first.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    if kill -0 "${pids[i]}" 2>/dev/null; then
      kill -TERM "${pids[i]}" 2>/dev/null || true
      wait "${pids[i]}" 2>/dev/null || true
    fi
  done
  pids=()
}
trap stop_started EXIT

wait_for() {  # URL LOGFILE SECONDS
  local deadline=$(($(date +%s) + $3))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 40 "$2" >&2 || true
      die "$1 not ready after $3 s"
    fi
    sleep 2
  done
}

check_host() {
  log "[host] GPU, tritonserver, tensorrt_llm"
  command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this check needs an NVIDIA GPU"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 \
    || die "no GPU visible"
  [ -x "$TRITON_SERVER_DIR/bin/tritonserver" ] || die "no tritonserver in $TRITON_SERVER_DIR"
  [ -d "$TRITON_SERVER_DIR/backends/python" ] || die "no python backend in $TRITON_SERVER_DIR"
  "$PYTHON" -c "import tensorrt_llm; print('tensorrt_llm', tensorrt_llm.__version__)" >&2 \
    || die "tensorrt_llm is not importable by $PYTHON"
  command -v curl >/dev/null || die "curl not found"
  if ! "$PYTHON" -c "import pytest, openai, httpx, launcher, api" 2>/dev/null; then
    log "installing the project with its dev extra"
    "$PYTHON" -m pip install --quiet -e ".[dev]"
  fi
  mkdir -p "$REPORT"
}

check_backend_available() {  # BACKEND
  case "$1" in
    llmapi) "$PYTHON" -c "from tensorrt_llm import LLM, SamplingParams" \
      || die "this tensorrt_llm has no LLM API" ;;
    trtllm) [ -d "$TRITON_SERVER_DIR/backends/tensorrtllm" ] \
      || die "no tensorrtllm backend in $TRITON_SERVER_DIR/backends: build the image with \
LEGACY_TRITON_VERSION, or GPU_CHECK_BACKENDS=llmapi" ;;
    *) die "unknown backend $1 (llmapi or trtllm)" ;;
  esac
}

prepare() {  # BACKEND: build or prepare the model, write and check its repository
  log "[$1] prepare $SPEC"
  "$PYTHON" scripts/build_engines.py "$SPEC" --backend "$1" --output "$OUT/$1"
  MODEL=$("$PYTHON" -c 'import sys, pathlib; from launcher.engine_spec import load_spec
print(load_spec(pathlib.Path(sys.argv[1])).name)' "$SPEC")
  MODEL_DIR=$OUT/$1/$MODEL
  "$PYTHON" -m launcher.config_check "$MODEL_DIR/model_repository"
}

serve() {  # BACKEND: tritonserver on the generated repository (as the chart runs it), the API
  log "[$1] load: serving $MODEL_DIR/model_repository"
  "$TRITON_SERVER_DIR/bin/tritonserver" --model-repository="$MODEL_DIR/model_repository" \
    --http-port=$HTTP_PORT --grpc-port=$GRPC_PORT --metrics-port=$METRICS_PORT \
    --exit-timeout-secs=10 >"$REPORT/$1-triton.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$HTTP_PORT/v2/health/ready" "$REPORT/$1-triton.log" 600
  API_HOST=127.0.0.1 API_PORT=$API_PORT API_TRITON__URL=127.0.0.1:$GRPC_PORT \
    API_MODELS="$(cat "$MODEL_DIR/served_models.json")" \
    API_AUTH__BOOTSTRAP_KEY=$API_KEY \
    API_DATABASE__URL="sqlite+aiosqlite:///$OUT/$1-api.db" \
    API_USAGE__JOURNAL_DIR="$OUT/$1-usage-journal" \
    "$PYTHON" -m api serve >"$REPORT/$1-api.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$API_PORT/health/ready" "$REPORT/$1-api.log" 120
}

smoke() {  # BACKEND: stream, stop, seed, json_schema, logprobs, usage, cancellation
  log "[$1] smoke checks through the API"
  "$PYTHON" scripts/gpu_smoke.py "http://127.0.0.1:$API_PORT/v1" "$API_KEY" "$MODEL" \
    "http://127.0.0.1:$METRICS_PORT/metrics" | tee "$REPORT/$1-smoke.jsonl" >&2 \
    || die "[$1] smoke checks failed (see $REPORT/$1-smoke.jsonl)"
}

run_e2e() {  # BACKEND
  if [ "${GPU_CHECK_E2E:-0}" != 1 ] || [ "$MODEL" != "tiny-chat" ]; then
    return
  fi
  log "[$1] end-to-end tests"
  local model_dir=$MODEL_DIR/model
  [ "$1" = trtllm ] && model_dir=$MODEL_DIR/engine
  # The e2e fixture starts the launcher and the API with these settings.
  TRITON_LLM_BACKEND=$1 \
    TRITON_LLM_MODEL_DIR="$model_dir" \
    TRITON_TOKENIZER_DIR="$MODEL_DIR/tokenizer" \
    TRITON_READY_TIMEOUT_S=900 \
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/e2e --junitxml "$REPORT/$1-e2e.xml"
}

run_benchmark() {
  if [ "${GPU_CHECK_BENCHMARK:-0}" != 1 ] || [ ! -d benchmarks ]; then
    return
  fi
  mkdir -p "$REPORT/benchmark"
  if command -v genai-perf >/dev/null && [ -f benchmarks/genai.py ]; then
    log "benchmark: genai-perf (benchmarks/genai.py), Triton direct and through the API"
    "$PYTHON" - "$MODEL" "$MODEL_DIR/tokenizer" "$REPORT/benchmark" "$API_KEY" \
      "127.0.0.1:$GRPC_PORT" "127.0.0.1:$API_PORT" <<'PY'
import json, os, sys
from pathlib import Path
from benchmarks import genai

model, tokenizer, out, key, grpc, api = sys.argv[1:]
env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
targets = [
    genai.Target("direct", "kserve", "ensemble", grpc, {}),
    genai.Target("api", "chat", model, api, {"Authorization": f"Bearer {key}"}),
]
results = []
for concurrency in (1, 8, 32):
    for target in targets:
        workload = genai.Workload(input_tokens=256, output_tokens=128, request_count=96)
        artifacts = Path(out) / f"{target.path}-c{concurrency}"
        result = genai.run(target, concurrency, workload, Path(tokenizer), artifacts, env, 900)
        results.append(result.to_json())
        print(json.dumps(results[-1]), file=sys.stderr)
(Path(out) / "results.json").write_text(json.dumps(results, indent=2))
PY
  else
    log "benchmark: concurrent streams through the API (genai-perf not on PATH)"
    "$PYTHON" - "http://127.0.0.1:$API_PORT/v1" "$API_KEY" "$MODEL" "$REPORT/benchmark" <<'PY'
import asyncio, json, statistics, sys, time
from pathlib import Path
import openai

url, key, model, out = sys.argv[1:]
PROMPT = [{"role": "user", "content": "Count from 1 to 100, one number per line."}]

async def one(client: openai.AsyncOpenAI) -> tuple[float, int]:
    start, first, tokens = time.perf_counter(), None, 0
    stream = await client.chat.completions.create(
        model=model, messages=PROMPT, max_tokens=128, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return first or 0.0, tokens

async def worker(client: openai.AsyncOpenAI, rounds: int) -> list[tuple[float, int]]:
    return [await one(client) for _ in range(rounds)]

async def level(client: openai.AsyncOpenAI, concurrency: int) -> dict[str, float]:
    # Closed loop: `concurrency` clients, each sending its next request when one ends.
    start = time.perf_counter()
    per_client = await asyncio.gather(*(worker(client, 3) for _ in range(concurrency)))
    done = [result for results in per_client for result in results]
    wall = time.perf_counter() - start
    return {"concurrency": concurrency, "requests": len(done), "wall_s": round(wall, 3),
            "ttft_p50_ms": round(1000 * statistics.median(t for t, _ in done), 1),
            "output_tokens_per_s": round(sum(n for _, n in done) / wall, 1)}

async def main() -> list[dict[str, float]]:
    async with openai.AsyncOpenAI(base_url=url, api_key=key) as client:
        return [await level(client, c) for c in (1, 8, 32)]

results = asyncio.run(main())
for row in results:
    print(json.dumps(row), file=sys.stderr)
(Path(out) / "results.json").write_text(json.dumps(results, indent=2))
PY
  fi
}

check_host
for backend in $BACKENDS; do
  step_started=$(date +%s)
  check_backend_available "$backend"
  prepare "$backend"
  serve "$backend"
  smoke "$backend"
  run_benchmark
  stop_started
  run_e2e "$backend"
  log "[$backend] passed in $(($(date +%s) - step_started)) s"
done
elapsed=$(($(date +%s) - started))
if [ "$elapsed" -gt "$BUDGET_S" ]; then
  log "note: took ${elapsed} s, over the ${BUDGET_S} s budget"
fi
log "passed ($BACKENDS) in ${elapsed} s; report in $REPORT"
