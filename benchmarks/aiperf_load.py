"""AIPerf (genai-perf's successor, HTTP only) as the load tool of the HTTP gateways.

Installed into its own venv (``.cache/aiperf-venv``). One run = one ``aiperf profile`` against
an OpenAI-compatible chat endpoint, streamed or not, with the benchmark's prompt file; its
figures are read from ``profile_export_aiperf.json`` into ``benchmarks.genai.LoadResult``, so
the gateways' rows sit beside genai-perf's direct-gRPC rows.

Time to first token, both tools: AIPerf takes ``perf_counter_ns`` just before aiohttp sends the
request and the receive time of the first SSE message whose parsed data is non-empty
(``ParsedResponseRecord.content_responses``: a role-only chunk, a usage chunk and ``[DONE]``
do not count); perf_analyzer (behind genai-perf's kserve mode) takes the time before it
writes the gRPC request on its stream and the time of the first response, and genai-perf
0.0.16 counts from the first response carrying output text. Both therefore measure request
sent -> first text received on the client, which is what the comparison needs. Neither counts
a connection set-up: both keep their connections across requests.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.genai import LoadResult
from launcher.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

AIPERF_VENV = PROJECT_ROOT / ".cache" / "aiperf-venv"
AIPERF_REQUIREMENT = "aiperf==0.13.0"
SUMMARY_FILE = "profile_export_aiperf.json"
RECORDS_FILE = "profile_export.jsonl"


@dataclass(frozen=True)
class HttpTarget:
    """A chat endpoint AIPerf drives: ours or LiteLLM's."""

    path: str  # row name: "api", "litellm"
    url: str  # base URL, http://host:port
    model: str
    headers: Mapping[str, str]
    prompts: Path  # JSONL, one {"text": ...} per line
    streaming: bool


def ensure_aiperf(venv: Path = AIPERF_VENV) -> Path:
    """Install AIPerf into its own venv (fast when it is there); its ``aiperf`` script."""
    marker = venv / ".bench-requirements"
    script = venv / "bin" / "aiperf"
    if marker.exists() and marker.read_text() == AIPERF_REQUIREMENT and script.exists():
        return script
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    logger.info("installing %s into %s", AIPERF_REQUIREMENT, venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", AIPERF_REQUIREMENT]
    subprocess.run(pip, check=True)
    marker.write_text(AIPERF_REQUIREMENT)
    return script


def command(
    aiperf: Path,
    target: HttpTarget,
    concurrency: int,
    requests: int,
    output_tokens: int,
    tokenizer: Path,
    artifacts: Path,
    seed: int = 7,
) -> list[str]:
    """The ``aiperf profile`` argv of one load test."""
    argv = [
        str(aiperf),
        "profile",
        "--model",
        target.model,
        "--url",
        target.url,
        "--endpoint-type",
        "chat",
        "--tokenizer",
        # A relative path is taken for a hub name.
        str(tokenizer.resolve()),
        "--input-file",
        str(target.prompts),
        "--custom-dataset-type",
        "single_turn",
        "--output-tokens-mean",
        str(output_tokens),
        "--extra-inputs",
        f"min_tokens:{output_tokens}",
        "--extra-inputs",
        "temperature:0.0",
        "--concurrency",
        str(concurrency),
        "--request-count",
        str(max(requests, concurrency)),
        "--warmup-request-count",
        str(concurrency),
        "--random-seed",
        str(seed),
        "--artifact-dir",
        str(artifacts),
        # max_tokens, not max_completion_tokens: LiteLLM's triton provider reads only max_tokens
        # (it sends its default of 2,000 otherwise).
        "--use-legacy-max-tokens",
        "--ui-type",
        "none",
        "--no-server-metrics",
        "--no-gpu-telemetry",
    ]
    if target.streaming:
        argv.append("--streaming")
    for name, value in target.headers.items():
        argv += ["--header", f"{name}:{value}"]
    return argv


def run(
    aiperf: Path,
    target: HttpTarget,
    concurrency: int,
    requests: int,
    output_tokens: int,
    tokenizer: Path,
    artifacts: Path,
    timeout_s: float,
) -> AiperfRun:
    """One AIPerf run; raises RuntimeError when it fails or overruns ``timeout_s``."""
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = command(aiperf, target, concurrency, requests, output_tokens, tokenizer, artifacts)
    log = artifacts / "aiperf.log"
    # Not HF_HUB_OFFLINE: AIPerf's offline mode looks tokenizers up in the hub's cache only,
    # and the benchmark's tokenizer is a local folder.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise RuntimeError(f"aiperf ran past {timeout_s:.0f} s; see {log}") from None
    wall = time.monotonic() - started
    summary_path = artifacts / SUMMARY_FILE
    if code != 0 or not summary_path.exists():
        raise RuntimeError(f"aiperf failed ({code}); see {log}")
    result = parse_summary(
        target.path, concurrency, orjson.loads(summary_path.read_bytes()), wall, target.streaming
    )
    # The warm-up's requests went through the gateway inside the CPU window too.
    warmup_path = artifacts / "phases" / "warmup" / SUMMARY_FILE
    warmup = orjson.loads(warmup_path.read_bytes()) if warmup_path.exists() else {}
    records = artifacts / RECORDS_FILE
    return AiperfRun(
        result,
        served_requests=result.requests + _count(warmup, "request_count"),
        served_tokens=result.responses + _count(warmup, "total_output_tokens"),
        profiling=profiling_records(records.read_bytes()) if records.exists() else [],
    )


def profiling_records(jsonl: bytes) -> list[tuple[int, int]]:
    """(start, end) wall-clock ns of each request of the profiling phase (not the warm-up)."""
    found = []
    for line in jsonl.splitlines():
        if not line.strip():
            continue
        meta = orjson.loads(line).get("metadata", {})
        if meta.get("benchmark_phase") != "profiling":
            continue
        start, end = meta.get("request_start_ns"), meta.get("request_end_ns")
        if start is not None and end is not None:
            found.append((int(start), int(end)))
    return found


@dataclass(frozen=True)
class AiperfRun:
    """One run's figures (the profiling phase) and everything the gateway served during the
    run, warm-up included: the denominators of its CPU time."""

    result: LoadResult
    served_requests: int
    served_tokens: int
    profiling: list[tuple[int, int]] = field(default_factory=list)  # (start, end) ns


def _count(summary: Mapping[str, Any], tag: str) -> int:
    value = metric(summary, tag, "avg")
    return int(value) if value == value else 0


def metric(summary: Mapping[str, Any], tag: str, stat: str) -> float:
    """One statistic of one metric of AIPerf's JSON export (NaN when absent)."""
    value = _metrics(summary).get(tag, {}).get(stat)
    return float(value) if value is not None else float("nan")


def _metrics(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    # Older exports keep the metrics at the top level, newer ones under "records".
    records = summary.get("records")
    return records if isinstance(records, Mapping) else summary


def parse_summary(
    path: str, concurrency: int, summary: Mapping[str, Any], wall_s: float, streaming: bool
) -> LoadResult:
    """AIPerf's summary as a LoadResult. ``responses`` is the output tokens delivered (the
    denominator of CPU per streamed token); errors are AIPerf's failed requests."""
    requests = metric(summary, "request_count", "avg")
    errors = metric(summary, "error_request_count", "avg")
    tokens = metric(summary, "total_output_tokens", "avg")
    nan = float("nan")
    return LoadResult(
        path=path,
        concurrency=concurrency,
        requests=int(requests) if requests == requests else 0,
        errors=int(errors) if errors == errors else 0,
        ttft_p50_ms=metric(summary, "time_to_first_token", "p50") if streaming else nan,
        ttft_p99_ms=metric(summary, "time_to_first_token", "p99") if streaming else nan,
        itl_p50_ms=metric(summary, "inter_token_latency", "p50") if streaming else nan,
        itl_p99_ms=metric(summary, "inter_token_latency", "p99") if streaming else nan,
        output_tokens_per_s=metric(summary, "output_token_throughput", "avg"),
        requests_per_s=metric(summary, "request_throughput", "avg"),
        responses_per_s=nan,
        wall_s=round(wall_s, 2),
        responses=int(tokens) if tokens == tokens else 0,
    )
