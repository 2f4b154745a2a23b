"""genai-perf runs for both paths, and the figures read back from its artifacts.

The direct path is Triton's gRPC stream on the ``ensemble`` (``--endpoint-type kserve``); the
API path is the chat completions endpoint with SSE (``--endpoint-type chat``). Both get the same
prompts (the direct path's rendered through the chat template, see ``benchmarks.prompts``), the
same ``max_tokens``/``min_tokens`` so that every reply has the same length, greedy decoding, and
their output is counted with the same tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)

# Prompts per prompt file; genai-perf draws each request's prompt from them with the seed.
DATASET_ENTRIES = 100


@dataclass(frozen=True)
class Workload:
    """What every request of a load test looks like, and how many are sent."""

    input_tokens: int = 100
    output_tokens: int = 64
    request_count: int = 64
    warmup_requests: int = 4
    seed: int = 7


@dataclass(frozen=True)
class Target:
    """One path under test: how genai-perf reaches it."""

    path: str  # "direct", "api", or "floor" (benchmarks.floor_proxy)
    endpoint_type: str  # "kserve" or "chat"
    model: str
    url: str
    headers: Mapping[str, str]
    prompts: Path  # genai-perf --input-file: JSONL, one {"text": ...} per prompt


@dataclass(frozen=True)
class LoadResult:
    """The figures of one load test (times in ms, rates per second)."""

    path: str
    concurrency: int
    requests: int
    errors: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    itl_p50_ms: float
    itl_p99_ms: float
    output_tokens_per_s: float
    requests_per_s: float
    responses_per_s: float
    wall_s: float
    # CPU seconds during the test: the load generator (genai-perf + perf_analyzer) and the API
    # process (idle on the direct path). On 2 cores both come out of the model's share.
    client_cpu_s: float = 0.0
    api_cpu_s: float = 0.0
    responses: int = 0  # streamed responses that carried text

    @property
    def api_cpu_us_per_response(self) -> float:
        return self.api_cpu_s / self.responses * 1e6 if self.responses else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "api_cpu_us_per_response": self.api_cpu_us_per_response}


_SUMMED = ("requests", "wall_s", "client_cpu_s", "api_cpu_s", "responses")


def combine(results: Sequence[LoadResult]) -> LoadResult:
    """Several runs of one path at one level as one row: counts and CPU summed, the
    percentiles and rates averaged. A failed run (``errors`` -1) makes the row failed."""
    if not results:
        raise ValueError("nothing to combine")
    if len(results) == 1:
        return results[0]
    first = results[0]
    if any(result.errors < 0 for result in results):
        return failed(first.path, first.concurrency, sum(r.wall_s for r in results))
    values: dict[str, Any] = {}
    for name in (f.name for f in dataclasses.fields(LoadResult)):
        column = [getattr(result, name) for result in results]
        if name in ("path", "concurrency"):
            values[name] = column[0]
        elif name == "errors" or name in _SUMMED:
            values[name] = sum(column)
        else:
            values[name] = sum(column) / len(column)
    return LoadResult(**values)


def run_summary(result: LoadResult) -> dict[str, float]:
    """The figures of one run that its combined row averages, to show the spread."""
    return {
        "ttft_p50_ms": result.ttft_p50_ms,
        "output_tokens_per_s": result.output_tokens_per_s,
        "requests_per_s": result.requests_per_s,
        "responses_per_s": result.responses_per_s,
    }


def failed(path: str, concurrency: int, wall_s: float) -> LoadResult:
    """The row of a load test that did not complete: no figures, ``errors`` -1."""
    nan = float("nan")
    return LoadResult(path, concurrency, 0, -1, nan, nan, nan, nan, nan, nan, nan, wall_s)


def command(
    target: Target, concurrency: int, workload: Workload, tokenizer: Path, artifacts: Path
) -> list[str]:
    """The genai-perf argv for one load test."""
    argv = [
        "genai-perf",
        "profile",
        "-m",
        target.model,
        "--endpoint-type",
        target.endpoint_type,
        "-u",
        target.url,
        "--streaming",
        "--tokenizer",
        str(tokenizer),
        "--input-file",
        str(target.prompts),
        "--output-tokens-mean",
        str(workload.output_tokens),
        "--extra-inputs",
        f"min_tokens:{workload.output_tokens}",
        # Greedy: both paths generate the same text, and sampled rare tokens (partial UTF-8 in
        # the per-token output strings) make perf_analyzer 2.51 abort mid-way through its export.
        "--extra-inputs",
        "temperature:0.0",
        "--concurrency",
        str(concurrency),
        "--request-count",
        str(max(workload.request_count, concurrency)),
        "--warmup-request-count",
        # perf_analyzer 2.51 never finishes a warm-up of fewer requests than clients.
        str(max(workload.warmup_requests, concurrency)),
        "--random-seed",
        str(workload.seed),
        "--num-dataset-entries",
        str(DATASET_ENTRIES),
        "--artifact-dir",
        str(artifacts),
        "--profile-export-file",
        f"{target.path}.json",
    ]
    if target.endpoint_type == "kserve":
        argv += ["--backend", "tensorrtllm"]
    for name, value in target.headers.items():
        argv += ["--header", f"{name}:{value}"]
    return argv


def run(
    target: Target,
    concurrency: int,
    workload: Workload,
    tokenizer: Path,
    artifacts: Path,
    env: Mapping[str, str],
    timeout_s: float,
) -> LoadResult:
    """Run genai-perf once and read its figures (the raw export gives errors and responses)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = command(target, concurrency, workload, tokenizer, artifacts)
    log = artifacts / f"{target.path}-genai-perf.log"
    started, client_cpu = time.monotonic(), _children_cpu()
    with log.open("wb") as out:
        # Own process group: a timeout must stop perf_analyzer too, not only genai-perf.
        process = subprocess.Popen(
            argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise RuntimeError(f"genai-perf ran past {timeout_s:.0f} s; see {log}") from None
    wall, client_cpu = time.monotonic() - started, _children_cpu() - client_cpu
    if code != 0:
        raise RuntimeError(f"genai-perf failed ({code}); see {log}")
    summary = _only(artifacts.glob(f"*/{target.path}_genai_perf.json"))
    raw = _only(artifacts.glob(f"*/{target.path}.json"))
    figures = orjson.loads(summary.read_bytes())
    # perf_analyzer writes partial UTF-8 of streamed text as lone surrogate escapes, which
    # orjson refuses; the standard library accepts them.
    export = json.loads(raw.read_text(encoding="utf-8", errors="replace"))
    result = parse_result(target.path, concurrency, figures, export, wall)
    return dataclasses.replace(result, client_cpu_s=round(client_cpu, 2))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _only(paths: Any) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise RuntimeError(f"expected one genai-perf artifact, found {found}")
    return Path(found[0])


def parse_result(
    path: str, concurrency: int, summary: Mapping[str, Any], raw: Mapping[str, Any], wall_s: float
) -> LoadResult:
    """Figures from genai-perf's summary plus error and response counts from the raw export."""
    requests = raw_requests(raw)
    responses, errors, span_s = count_responses(requests)
    return LoadResult(
        path=path,
        concurrency=concurrency,
        requests=len(requests),
        errors=errors,
        ttft_p50_ms=_stat(summary, "time_to_first_token", "p50"),
        ttft_p99_ms=_stat(summary, "time_to_first_token", "p99"),
        itl_p50_ms=_stat(summary, "inter_token_latency", "p50"),
        itl_p99_ms=_stat(summary, "inter_token_latency", "p99"),
        output_tokens_per_s=_stat(summary, "output_token_throughput", "avg"),
        requests_per_s=_stat(summary, "request_throughput", "avg"),
        responses_per_s=responses / span_s if span_s > 0 else 0.0,
        wall_s=round(wall_s, 2),
        responses=responses,
    )


def _stat(summary: Mapping[str, Any], metric: str, key: str) -> float:
    value = summary.get(metric, {}).get(key)
    return float(value) if value is not None else float("nan")


def raw_requests(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    requests: list[Mapping[str, Any]] = []
    for experiment in raw.get("experiments", []):
        requests.extend(experiment.get("requests", []))
    return requests


def count_responses(requests: Sequence[Mapping[str, Any]]) -> tuple[int, int, float]:
    """(responses with generated text, failed requests, seconds from first send to last reply).

    A response counts when it carries text: a kserve ``text_output`` or an SSE chunk whose
    ``delta.content`` is non-empty (the role chunk, the finish chunk and ``[DONE]`` do not).
    A request fails when it got no text at all or an error object.
    """
    responses = errors = 0
    first, last = None, None
    for request in requests:
        texts = [_text_of(output) for output in request.get("response_outputs", [])]
        produced = sum(1 for text in texts if text)
        failed = any(text is None for text in texts) or produced == 0
        errors += failed
        responses += produced
        stamps = request.get("response_timestamps", [])
        start = request.get("timestamp")
        if start is not None:
            first = start if first is None else min(first, start)
        if stamps:
            last = stamps[-1] if last is None else max(last, stamps[-1])
    span = (last - first) / 1e9 if first is not None and last is not None else 0.0
    return responses, errors, span


def _text_of(output: Mapping[str, Any]) -> str | None:
    """The generated text of one response; ``None`` for an error response."""
    if "text_output" in output:
        return str(output["text_output"] or "")
    body = str(output.get("response", ""))
    text = ""
    for line in body.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            continue
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if "error" in chunk:
            return None
        for choice in chunk.get("choices") or []:
            text += (choice.get("delta") or {}).get("content") or ""
    return text
