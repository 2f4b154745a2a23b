"""``python -m benchmarks.run_all``: install the tools, run every benchmark, write the results.

1. Real model (tiny-chat on the CPU engine): genai-perf on Triton's gRPC stream (direct) and
   on the API's SSE chat endpoint, at each concurrency level, alternating paths per level. The
   same prompts on both paths: the direct path's rendered through the chat template as a
   direct client would (``benchmarks.prompts``).
2. Embeddings on the same stack: the cache's hit against miss latency, HTTP throughput.
3. Zero-cost engine in Triton: the same comparison, counting streamed responses per second.
4. API ceiling: the app over an in-process zero-cost backend, 1..N uvicorn workers, wrk.

Results go to ``benchmarks/results/results.json`` (plus a time-stamped copy), PNG plots and
``results.md``; the tables are printed. ``--smoke`` runs everything for a few seconds only.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import genai, machine, report, wire
from benchmarks.ceiling import CeilingPlan, run_ceiling
from benchmarks.embeddings import run_embeddings
from benchmarks.procs import cpu_seconds, descendants
from benchmarks.prompts import METHOD, PromptFiles, write_prompt_files
from benchmarks.stack import Engine, Stack, floor_process, stack
from benchmarks.tools import BenchTools, ensure_tools
from launcher.settings import PROJECT_ROOT

logger = logging.getLogger("benchmarks")

RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
TOKENIZER = PROJECT_ROOT / "models" / "tiny-chat"


@dataclass(frozen=True)
class Plan:
    concurrency: tuple[int, ...] = (1, 8, 32, 128)
    real: genai.Workload = field(
        default_factory=lambda: genai.Workload(input_tokens=100, output_tokens=64)
    )
    zero_concurrency: tuple[int, ...] = (8, 32, 128)
    zero: genai.Workload = field(
        default_factory=lambda: genai.Workload(input_tokens=100, output_tokens=64)
    )
    min_requests: int = 120
    requests_per_client: int = 3
    # 1: direct then API; 2: direct, API, API, direct (ABBA); 4: ABBA BAAB. Run to run, a
    # level's tokens/s moves by 5-10% on this VM: each path's row is the mean of its runs.
    rounds: int = 4
    ceiling: CeilingPlan = field(default_factory=lambda: CeilingPlan(workers=(1, 2, 4)))
    embedding_seconds: float = 5.0
    embedding_samples: int = 100
    genai_timeout_s: float = 300.0
    # One more run of each path at concurrency 1 with the loopback capture on (0: none).
    wire_requests: int = 60
    # The real model's and the zero-cost engine's levels also run benchmarks.floor_proxy, the
    # thinnest gateway of the same parts, so each level shows what the architecture costs and
    # what the API adds.
    floor: bool = True

    def requests_at(self, concurrency: int) -> int:
        return max(self.min_requests, self.requests_per_client * concurrency)


SMOKE = Plan(
    concurrency=(1, 4),
    real=genai.Workload(input_tokens=32, output_tokens=16, warmup_requests=1),
    zero_concurrency=(4,),
    zero=genai.Workload(input_tokens=32, output_tokens=32, warmup_requests=1),
    min_requests=8,
    requests_per_client=2,
    rounds=1,
    ceiling=CeilingPlan(workers=(1,), warmup_s=1.0, duration_s=2.0, repeats=1),
    embedding_seconds=1.0,
    embedding_samples=10,
    genai_timeout_s=300.0,
    wire_requests=8,
)


def targets(running: Stack, prompts: PromptFiles) -> tuple[genai.Target, genai.Target]:
    direct = genai.Target(
        "direct", "kserve", "ensemble", running.triton_grpc, {}, prompts.templated
    )
    api = genai.Target(
        "api",
        "chat",
        "tiny-chat",
        running.api_url.removeprefix("http://"),
        running.auth_header,
        prompts.plain,
    )
    return direct, api


def floor_target(api: genai.Target, floor_url: str) -> genai.Target:
    """The API's chat target sent to the floor proxy instead (no key: it checks none)."""
    return dataclasses.replace(api, path="floor", url=floor_url.removeprefix("http://"), headers={})


def prompt_files(workload: genai.Workload, workdir: Path) -> PromptFiles:
    return write_prompt_files(
        TOKENIZER, genai.DATASET_ENTRIES, workload.input_tokens, workload.seed, workdir / "prompts"
    )


def compare_paths(
    tools: BenchTools,
    running: Stack,
    engine: Engine,
    levels: Sequence[int],
    workload: genai.Workload,
    prompts: PromptFiles,
    plan: Plan,
    workdir: Path,
    floor: tuple[str, int] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """At each level: direct, API, API, direct, API, direct, direct, API (ABBA BAAB, cut to
    ``plan.rounds`` pairs), so load that drifts during the level hits both paths alike; each
    path's runs are combined into its row, which lists them too. With ``floor`` (the floor
    proxy's URL and pid) each round runs it too: direct, API, floor, then floor, API, direct."""
    direct, api = targets(running, prompts)
    pids = {"direct": running.api_pid, "api": running.api_pid}
    order: tuple[genai.Target, ...]
    if floor is None:
        order = (direct, api, api, direct, api, direct, direct, api)[: 2 * plan.rounds]
    else:
        url, pids["floor"] = floor
        proxy = floor_target(api, url)
        rounds = ((direct, api, proxy), (proxy, api, direct)) * plan.rounds
        order = tuple(target for triple in rounds[: plan.rounds] for target in triple)
    results: dict[str, list[dict[str, Any]]] = {path: [] for path in pids}
    for level in levels:
        sized = dataclasses.replace(workload, request_count=plan.requests_at(level))
        runs: dict[str, list[genai.LoadResult]] = {path: [] for path in pids}
        for index, target in enumerate(order):
            artifacts = workdir / engine.value / f"{target.path}-c{level}-run{index}"
            # The gateway's own CPU: the API's, or the floor proxy's on its runs.
            api_processes = descendants(pids[target.path])
            api_cpu = cpu_seconds(api_processes)
            result = _load_test(tools, target, level, sized, artifacts, plan.genai_timeout_s)
            api_cpu = round(cpu_seconds(api_processes) - api_cpu, 2)
            result = dataclasses.replace(result, api_cpu_s=api_cpu)
            logger.info("%s %s: %s", engine.value, target.path, result)
            runs[target.path].append(result)
        for path, path_runs in runs.items():
            row = genai.combine(path_runs).to_json()
            row["runs"] = [genai.run_summary(result) for result in path_runs]
            results[path].append(row)
    return results


def ttft_breakdown(
    tools: BenchTools,
    running: Stack,
    engine: Engine,
    workload: genai.Workload,
    prompts: PromptFiles,
    plan: Plan,
    workdir: Path,
    floor_url: str,
) -> dict[str, Any]:
    """Where the API path's time to first token goes, from the packets of one more run at
    concurrency 1 of: the direct path; the direct path with the bare prompts (no chat
    template, so less to prefill); the chat endpoint; the completions endpoint, which sends
    Triton the same ``text_input`` as the direct path (its chat template already rendered);
    and the chat prompts through ``benchmarks.floor_proxy``, the thinnest gateway of the same
    parts, which tells the architecture's cost from the API's own. Kept out of the table
    rows: the capture itself costs CPU.

    The five run in that order and then in reverse, half of ``plan.wire_requests`` each time:
    in one order only, Triton's own span grew along the sequence (direct 15.18 ms, then chat
    16.26, completions 16.89, floor 18.06 in one run), which charged the drift to the later
    paths."""
    sized = dataclasses.replace(workload, request_count=max(1, (plan.wire_requests + 1) // 2))
    direct, chat = targets(running, prompts)
    runs = {
        "direct": direct,
        "direct_plain": dataclasses.replace(direct, prompts=prompts.plain),
        "chat": chat,
        "completions": dataclasses.replace(
            chat, endpoint_type="completions", prompts=prompts.templated
        ),
        "floor": floor_target(chat, floor_url),
    }
    captured: dict[str, list[wire.Packet]] = {name: [] for name in runs}
    ttfts: dict[str, list[float]] = {name: [] for name in runs}
    order = [*runs.items(), *reversed(runs.items())]
    for index, (name, target) in enumerate(order):
        try:
            capture = wire.LoopbackCapture()
        except wire.CaptureUnavailable as exc:
            logger.warning("no time-to-first-token breakdown: %s", exc)
            return {"error": str(exc)}
        artifacts = workdir / engine.value / f"{name}-wire{index}"
        with capture.running() as packets:
            result = _load_test(tools, target, 1, sized, artifacts, plan.genai_timeout_s)
        captured[name] += packets
        ttfts[name].append(result.ttft_p50_ms)
    ttft = {name: statistics.fmean(values) for name, values in ttfts.items()}
    api_port, grpc_port = wire.port_of(running.api_url), wire.port_of(running.triton_grpc)
    return {
        "direct": wire.direct_summary(captured["direct"], grpc_port),
        "direct_plain": wire.direct_summary(captured["direct_plain"], grpc_port),
        "chat": wire.api_summary(captured["chat"], api_port, grpc_port),
        "completions": wire.api_summary(captured["completions"], api_port, grpc_port),
        "floor": wire.api_summary(captured["floor"], wire.port_of(floor_url), grpc_port),
        "genai_perf_ttft_p50_ms": ttft,
        "order": report.BOTH_ORDERS,
    }


def _load_test(
    tools: BenchTools,
    target: genai.Target,
    level: int,
    workload: genai.Workload,
    artifacts: Path,
    timeout_s: float,
    attempts: int = 3,
) -> genai.LoadResult:
    """One load test, tried up to ``attempts`` times; a test that keeps failing shows as
    failed, and the rest of the run goes on. perf_analyzer 2.51 now and then dies while it
    writes its export on the direct path (the file ends at a 1 MiB boundary or is empty), and
    genai-perf then fails to read it: 2 of 18 direct runs in one trial, none of the API's."""
    started, env = time.monotonic(), tools.env()
    for attempt in range(1, attempts + 1):
        folder = artifacts / f"try{attempt}"
        try:
            return genai.run(target, level, workload, TOKENIZER, folder, env, timeout_s)
        except RuntimeError:
            logger.exception("%s at concurrency %d failed (try %d)", target.path, level, attempt)
    return genai.failed(target.path, level, time.monotonic() - started)


def run(plan: Plan, phases: set[str], workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    tools = ensure_tools()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "plan": _plan_json(plan),
        "load": [],
    }

    def mark(phase: str) -> None:
        results["load"].append({"phase": phase, "load": machine.load_average()})

    def levels(
        running: Stack,
        engine: Engine,
        concurrency: Sequence[int],
        workload: genai.Workload,
        prompts: PromptFiles,
        floor: tuple[str, int],
    ) -> dict[str, list[dict[str, Any]]]:
        """One engine's levels, with the floor proxy in the rounds unless the plan leaves it out."""
        with_floor = floor if plan.floor else None
        return compare_paths(
            tools, running, engine, concurrency, workload, prompts, plan, workdir, with_floor
        )

    if {"real", "embeddings"} & phases:
        with stack(Engine.CPU, workdir / "cpu") as running:
            if "real" in phases:
                mark("real model")
                results["prompts"] = METHOD
                # Written once here; the level runs and the wire breakdown share them.
                prompts = prompt_files(plan.real, workdir)
                with floor_process(running.triton_grpc, workdir / "cpu") as floor:
                    results["real_model"] = levels(
                        running, Engine.CPU, plan.concurrency, plan.real, prompts, floor
                    )
                    if plan.wire_requests:
                        results["ttft_breakdown"] = ttft_breakdown(
                            tools, running, Engine.CPU, plan.real, prompts, plan, workdir, floor[0]
                        )
            if "embeddings" in phases:
                mark("embeddings")
                seconds, samples = plan.embedding_seconds, plan.embedding_samples
                results["embeddings"] = run_embeddings(
                    tools, running, seconds, samples, workdir / "embeddings"
                )
    if "zero" in phases:
        with stack(Engine.ZERO, workdir / "zero") as running:
            mark("zero-cost engine")
            prompts = prompt_files(plan.zero, workdir)
            with floor_process(running.triton_grpc, workdir / "zero") as floor:
                results["zero_cost"] = levels(
                    running, Engine.ZERO, plan.zero_concurrency, plan.zero, prompts, floor
                )
    if "ceiling" in phases:
        mark("ceiling")
        results["ceiling"] = [
            row.to_json() for row in run_ceiling(plan.ceiling, tools.wrk, workdir / "ceiling")
        ]
    mark("end")
    results["machine"]["load_during"] = _mean_load(results["load"])
    results["duration_s"] = round(time.monotonic() - started, 1)
    results["checks"] = [check.to_json() for check in report.checks(results)]
    return results


def _mean_load(samples: list[dict[str, Any]]) -> list[float]:
    loads = [sample["load"] for sample in samples]
    return [round(sum(column) / len(column), 2) for column in zip(*loads, strict=True)]


def _plan_json(plan: Plan) -> dict[str, Any]:
    plain: dict[str, Any] = orjson.loads(orjson.dumps(dataclasses.asdict(plan)))
    return plain


def save(results: dict[str, Any], tools_python: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace(":", "").replace("-", "")
    body = orjson.dumps(results, option=orjson.OPT_INDENT_2)
    (out / f"results-{stamp}.json").write_bytes(body)
    latest = out / "results.json"
    latest.write_bytes(body)
    (out / "results.md").write_text(report.markdown(results) + "\n")
    plots = subprocess.run(
        [str(tools_python), "-m", "benchmarks.plots", str(latest), str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if plots.returncode != 0:
        logger.error("plotting failed: %s", plots.stderr[-2000:])
    return latest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="seconds per phase: proves wiring")
    parser.add_argument(
        "--only",
        default="real,embeddings,zero,ceiling",
        help="comma-separated phases: real, embeddings, zero, ceiling",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".cache" / "bench-work")
    parser.add_argument(
        "--wait-for-load",
        type=float,
        metavar="LOAD",
        help="first wait (up to 20 min) until the 1-minute load average is below LOAD",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("tritonserver").setLevel(logging.WARNING)
    # A SIGTERM unwinds like Ctrl-C, so Triton and the API started here are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.wait_for_load is not None:
        wait_for_quiet(args.wait_for_load, timeout_s=1200)
    plan = SMOKE if args.smoke else Plan()
    phases = {phase.strip() for phase in args.only.split(",") if phase.strip()}
    results = run(plan, phases, args.workdir)
    results["smoke"] = args.smoke
    latest = save(results, ensure_tools().python, args.out)
    sys.stdout.write(report.markdown(results) + "\n")
    logger.info("results in %s (%.0f s)", latest, results["duration_s"])
    return 0


def wait_for_quiet(limit: float, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while machine.load_average()[0] >= limit and time.monotonic() < deadline:
        logger.info("load average %s; waiting for < %.2f", machine.load_average(), limit)
        time.sleep(30)


if __name__ == "__main__":
    sys.exit(main())
