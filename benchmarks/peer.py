"""``python -m benchmarks.peer``: our API against LiteLLM's proxy and direct Triton, one run.

One Triton (tiny-chat on the CPU engine) serves three paths:
- **direct**: genai-perf's kserve mode (perf_analyzer) on the ``ensemble``'s gRPC stream;
- **api**: ``python -m api serve`` with every gateway feature on (API key, key and IP rate
  limits, usage records, access log, admission control, and the content filter on prompts
  and streamed replies), driven by AIPerf on ``/v1/chat/completions``;
- **litellm**: LiteLLM's proxy with its ``triton/`` provider on Triton's HTTP generate
  endpoints (``benchmarks.litellm_peer`` says what it checks per request), driven by AIPerf.

At each concurrency level: direct streamed, then both gateways streamed and non-streamed, in
an order that flips every level. Each gateway's CPU time (its whole process tree, from
/proc/<pid>/stat) is sampled during each run and read over the profiling phase alone (first
request sent to last reply, from AIPerf's per-request records: not AIPerf's start-up, not its
warm-up), less the gateway's idle CPU rate over the same span (measured before the levels):
CPU per streamed token, per non-streamed request, and requests per CPU second. Then bursts
(``benchmarks.burst``). Results: ``benchmarks/results/peer.json`` and a time-stamped copy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import aiperf_load, burst, cpu_window, genai, machine
from benchmarks.litellm_peer import Peer, litellm_process
from benchmarks.procs import cpu_seconds, descendants
from benchmarks.prompts import PromptFiles, write_prompt_files
from benchmarks.run_all import RESULTS_DIR, TOKENIZER, _load_test, targets
from benchmarks.stack import Engine, Stack, api_process, stack
from benchmarks.tools import BenchTools, ensure_tools

logger = logging.getLogger("benchmarks.peer")

# The content filter on, as a deployment would have it: prompts and streamed replies checked.
CONTENT_FILTER = [
    {"category": "violence", "pattern": r"\bbuild\s+a\s+bomb\b"},
    {"category": "self-harm", "pattern": r"\b(kill|hurt)\s+myself\b"},
]


@dataclass(frozen=True)
class PeerPlan:
    levels: tuple[int, ...] = (1, 32, 128)
    input_tokens: int = 100
    output_tokens: int = 64
    min_requests: int = 32
    requests_per_client: int = 1
    burst_sizes: tuple[int, ...] = (8, 32)
    burst_rounds: int = 5
    burst_tokens: int = 16
    timeout_s: float = 600.0

    def requests_at(self, level: int) -> int:
        return max(self.min_requests, self.requests_per_client * level)


SMOKE = PeerPlan(
    levels=(1, 4),
    input_tokens=32,
    output_tokens=16,
    min_requests=4,
    requests_per_client=1,
    burst_sizes=(4,),
    burst_rounds=1,
    burst_tokens=4,
)


def cpu_figures(
    cpu_s: float, served_requests: int, served_tokens: int, streaming: bool
) -> dict[str, float]:
    """A gateway's CPU over one run, per unit of what it served."""
    per_request = cpu_s / served_requests * 1e6 if served_requests else math.nan
    per_token = cpu_s / served_tokens * 1e6 if served_tokens else math.nan
    figures = {
        "gateway_cpu_s": round(cpu_s, 3),
        "cpu_us_per_request": round(per_request, 1),
        "requests_per_cpu_s": round(served_requests / cpu_s, 1) if cpu_s > 0 else math.nan,
    }
    if streaming:
        figures["cpu_us_per_token"] = round(per_token, 2)
    return figures


def idle_rate(pid: int, seconds: float = 5.0) -> float:
    """CPU seconds per second the gateway spends with no traffic (probes, flushes)."""
    processes = descendants(pid)
    with cpu_window.sampling(lambda: cpu_seconds(processes), interval_s=0.5) as samples:
        time.sleep(seconds)
    return round(samples.rate(), 4)


def gateway_cpu(
    samples: cpu_window.CpuSamples,
    run: aiperf_load.AiperfRun,
    idle_cpu_per_s: float,
    streaming: bool,
) -> dict[str, float]:
    """CPU inside the profiling phase (first request sent to last reply), per request and per
    token of that phase; ``net`` figures take the idle rate off over the same window."""
    if not run.profiling:
        return {}
    start, end = cpu_window.window(run.profiling)
    cpu = samples.between(start, end)
    span_s = (end - start) / 1e9
    figures = {"window_s": round(span_s, 3)}
    figures.update(cpu_figures(cpu, run.result.requests, run.result.responses, streaming))
    net = cpu_figures(
        max(0.0, cpu - idle_cpu_per_s * span_s),
        run.result.requests,
        run.result.responses,
        streaming,
    )
    figures.update({f"net_{key}": value for key, value in net.items()})
    return figures


def ratio(numerator: float, denominator: float) -> float:
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    return round(numerator / denominator, 3)


def targets_at_level(level_index: int, names: Sequence[str]) -> list[str]:
    """Run order at one level: as given, reversed every other level."""
    return list(names) if level_index % 2 == 0 else list(reversed(names))


def http_targets(
    running: Stack,
    peer: Peer,
    prompts: PromptFiles,
    unfiltered: tuple[str, str, int] | None = None,
) -> dict[str, aiperf_load.HttpTarget]:
    """Our API gets the plain prompts (it renders the chat template in Triton's preprocessing,
    as the direct path's client did beforehand); LiteLLM gets the rendered prompts, since its
    triton provider sends the message text as ``text_input`` unchanged (see litellm_peer)."""
    found: dict[str, aiperf_load.HttpTarget] = {}
    for streaming in (True, False):
        suffix = "stream" if streaming else "json"
        found[f"api-{suffix}"] = aiperf_load.HttpTarget(
            "api", running.api_url, "tiny-chat", running.auth_header, prompts.plain, streaming
        )
        found[f"litellm-{suffix}"] = aiperf_load.HttpTarget(
            "litellm", peer.url, "tiny-chat", peer.auth_header, prompts.templated, streaming
        )
    if unfiltered is not None:
        url, key, _ = unfiltered
        found["api_nofilter-stream"] = aiperf_load.HttpTarget(
            "api_nofilter",
            url,
            "tiny-chat",
            {"Authorization": f"Bearer {key}"},
            prompts.plain,
            True,
        )
    return found


def measure_levels(
    tools: BenchTools,
    aiperf: Path,
    running: Stack,
    peer: Peer,
    prompts: PromptFiles,
    plan: PeerPlan,
    workdir: Path,
    unfiltered: tuple[str, str, int],
) -> list[dict[str, Any]]:
    direct, _ = targets(running, prompts)
    http = http_targets(running, peer, prompts, unfiltered)
    pids = {"api": running.api_pid, "litellm": peer.pid, "api_nofilter": unfiltered[2]}
    idle = {path: idle_rate(pid) for path, pid in pids.items()}
    logger.info("idle gateway CPU, s/s: %s", idle)
    rows: list[dict[str, Any]] = [{"path": "idle", "cpu_s_per_s": idle}]
    names = [
        "direct",
        "api-stream",
        "litellm-stream",
        "api_nofilter-stream",
        "api-json",
        "litellm-json",
    ]
    for index, level in enumerate(plan.levels):
        requests = plan.requests_at(level)
        for name in targets_at_level(index, names):
            artifacts = workdir / f"{name}-c{level}"
            row: dict[str, Any] = {
                "path": name,
                "concurrency": level,
                "load": machine.load_average(),
            }
            if name == "direct":  # no gateway: genai-perf's kserve mode on the gRPC stream
                sized = genai.Workload(
                    plan.input_tokens, plan.output_tokens, requests, max(4, level)
                )
                result = _load_test(tools, direct, level, sized, artifacts, plan.timeout_s)
                row.update(result.to_json())
            else:
                target = http[name]
                processes = descendants(pids[target.path])
                reader = functools.partial(cpu_seconds, processes)
                try:
                    with cpu_window.sampling(reader) as samples:
                        run = aiperf_load.run(
                            aiperf,
                            target,
                            level,
                            requests,
                            plan.output_tokens,
                            TOKENIZER,
                            artifacts,
                            plan.timeout_s,
                        )
                except RuntimeError as exc:
                    logger.error("%s at concurrency %d failed: %s", name, level, exc)
                    row["failed"] = str(exc)
                    rows.append(row)
                    continue
                row.update(run.result.to_json())
                row.update(gateway_cpu(samples, run, idle.get(target.path, 0.0), target.streaming))
            row["path"] = name
            logger.info("%s", {k: v for k, v in row.items() if k != "runs"})
            rows.append(row)
    return rows


def bursts(
    running: Stack,
    peer: Peer,
    prompts: PromptFiles,
    plan: PeerPlan,
    unfiltered: tuple[str, str, int],
) -> list[dict[str, Any]]:
    texts = {
        "plain": _texts(prompts.plain),
        "templated": _texts(prompts.templated),
    }
    http = {
        "api": (f"{running.api_url}/v1/chat/completions", running.auth_header, "tiny-chat"),
        "litellm": (f"{peer.url}/v1/chat/completions", peer.auth_header, "tiny-chat"),
        "api_nofilter": (
            f"{unfiltered[0]}/v1/chat/completions",
            {"Authorization": f"Bearer {unfiltered[1]}"},
            "tiny-chat",
        ),
    }
    results = asyncio.run(
        burst.run_bursts(
            plan.burst_sizes, plan.burst_rounds, texts, http, running.triton_grpc, plan.burst_tokens
        )
    )
    return [result.to_json() for result in results]


def _texts(path: Path) -> list[str]:
    return [orjson.loads(line)["text"] for line in path.read_bytes().splitlines() if line.strip()]


def summary(
    rows: Sequence[Mapping[str, Any]], burst_rows: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The ratios the targets are stated in, from one run."""
    by = {
        (row["path"], row["concurrency"]): row
        for row in rows
        if "failed" not in row and "concurrency" in row
    }
    out: dict[str, Any] = {}
    levels = sorted({level for _, level in by})
    for level in levels:
        direct = by.get(("direct", level), {})
        api, lite = by.get(("api-stream", level), {}), by.get(("litellm-stream", level), {})
        bare = by.get(("api_nofilter-stream", level), {})
        api_json, lite_json = by.get(("api-json", level), {}), by.get(("litellm-json", level), {})
        d_ttft = direct.get("ttft_p50_ms", math.nan)
        d_tokens = direct.get("output_tokens_per_s", math.nan)
        api_added = api.get("ttft_p50_ms", math.nan) - d_ttft
        bare_added = bare.get("ttft_p50_ms", math.nan) - d_ttft
        lite_added = lite.get("ttft_p50_ms", math.nan) - d_ttft
        out[f"c{level}"] = {
            "api_added_ttft_ms": round(api_added, 2),
            "api_nofilter_added_ttft_ms": round(bare_added, 2),
            "litellm_added_ttft_ms": round(lite_added, 2),
            "api_over_litellm_added_ttft": ratio(api_added, lite_added),
            "api_nofilter_over_litellm_added_ttft": ratio(bare_added, lite_added),
            "api_tokens_per_s_over_direct": ratio(
                api.get("output_tokens_per_s", math.nan), d_tokens
            ),
            "api_nofilter_tokens_per_s_over_direct": ratio(
                bare.get("output_tokens_per_s", math.nan), d_tokens
            ),
            "litellm_tokens_per_s_over_direct": ratio(
                lite.get("output_tokens_per_s", math.nan), d_tokens
            ),
            "api_cpu_us_per_token": api.get("net_cpu_us_per_token", math.nan),
            "api_nofilter_cpu_us_per_token": bare.get("net_cpu_us_per_token", math.nan),
            "litellm_cpu_us_per_token": lite.get("net_cpu_us_per_token", math.nan),
            "api_over_litellm_cpu_per_token": ratio(
                api.get("net_cpu_us_per_token", math.nan),
                lite.get("net_cpu_us_per_token", math.nan),
            ),
            "api_cpu_us_per_json_request": api_json.get("net_cpu_us_per_request", math.nan),
            "litellm_cpu_us_per_json_request": lite_json.get("net_cpu_us_per_request", math.nan),
            "api_over_litellm_requests_per_cpu_s": ratio(
                api_json.get("net_requests_per_cpu_s", math.nan),
                lite_json.get("net_requests_per_cpu_s", math.nan),
            ),
        }
    bursts_by = {(row["path"], row["size"]): row for row in burst_rows}
    for size in sorted({row["size"] for row in burst_rows}):
        direct_last = bursts_by.get(("direct", size), {}).get("last_ttft_p50_ms", math.nan)
        out[f"burst{size}"] = {
            f"{path}_added_last_ttft_ms": round(
                bursts_by.get((path, size), {}).get("last_ttft_p50_ms", math.nan) - direct_last, 2
            )
            for path in ("api", "api_nofilter", "litellm")
        }
    return out


@contextlib.contextmanager
def filtered_environment() -> Iterator[None]:
    """The API that ``stack`` starts gets the content filter (from the environment)."""
    os.environ["API_MODERATION__PATTERNS"] = orjson.dumps(CONTENT_FILTER).decode()
    try:
        yield
    finally:
        os.environ.pop("API_MODERATION__PATTERNS", None)


@contextlib.contextmanager
def unfiltered_api(triton_grpc: str, workdir: Path) -> Iterator[tuple[str, str, int]]:
    """A second API, everything on but the content filter, whose stream window holds the first
    64 characters of each reply back (so TTFT there includes generating them)."""
    saved = os.environ.pop("API_MODERATION__PATTERNS", None)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with api_process(triton_grpc, workdir) as found:
            yield found
    finally:
        if saved is not None:
            os.environ["API_MODERATION__PATTERNS"] = saved


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run: proves the wiring")
    parser.add_argument("--levels", help="comma-separated concurrency levels")
    parser.add_argument("--no-bursts", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-peer"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # SIGTERM unwinds the with-blocks, which stop Triton, both APIs and LiteLLM.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = SMOKE if args.smoke else PeerPlan()
    if args.levels:
        plan = PeerPlan(
            **{**plan.__dict__, "levels": tuple(int(v) for v in args.levels.split(","))}
        )
    started = time.monotonic()
    tools, aiperf = ensure_tools(), aiperf_load.ensure_aiperf()
    prompts = write_prompt_files(
        TOKENIZER, genai.DATASET_ENTRIES, plan.input_tokens, 7, args.workdir / "prompts"
    )
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "plan": plan.__dict__,
        "tools": {
            "aiperf": aiperf_load.AIPERF_REQUIREMENT,
            "direct": "genai-perf 0.0.16 (perf_analyzer 2.51)",
        },
    }
    with (
        filtered_environment(),
        stack(Engine.CPU, args.workdir / "stack") as running,
        unfiltered_api(running.triton_grpc, args.workdir / "api-nofilter") as unfiltered,
        litellm_process(running.triton_http, args.workdir / "litellm") as peer,
    ):
        results["litellm"] = {"version": peer.version, "keys_in_database": peer.keys_in_database}
        rows = measure_levels(
            tools, aiperf, running, peer, prompts, plan, args.workdir / "runs", unfiltered
        )
        burst_rows = [] if args.no_bursts else bursts(running, peer, prompts, plan, unfiltered)
    results.update(
        rows=rows,
        bursts=burst_rows,
        summary=summary(rows, burst_rows),
        load_after=machine.load_average(),
        wall_s=round(time.monotonic() - started, 1),
    )
    write(results, smoke=args.smoke)
    print(orjson.dumps(results["summary"], option=orjson.OPT_INDENT_2).decode())
    return 0


def write(results: Mapping[str, Any], smoke: bool) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = "peer-smoke" if smoke else "peer"
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    (RESULTS_DIR / f"{name}.json").write_bytes(data)
    if not smoke:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S+0000")
        (RESULTS_DIR / f"peer-{stamp}.json").write_bytes(data)


if __name__ == "__main__":
    sys.exit(main())
