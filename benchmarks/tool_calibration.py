"""``python -m benchmarks.tool_calibration``: genai-perf and AIPerf on the same endpoint.

The peer benchmark measures direct gRPC with genai-perf (perf_analyzer, C++) and the HTTP
gateways with AIPerf (Python, several processes); both count time to first token from the
request's send to the first response with text, but their clients differ. This drives the
API's chat endpoint at concurrency 1 with both tools in turn (genai-perf, AIPerf, AIPerf,
genai-perf) and prints each run's TTFT and ITL p50: the gap is what AIPerf's client adds on
this machine, to be taken into account when comparing AIPerf's rows with the direct path's.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import orjson

from benchmarks import aiperf_load, genai
from benchmarks.prompts import write_prompt_files
from benchmarks.run_all import TOKENIZER, _load_test, targets
from benchmarks.stack import Engine, stack
from benchmarks.tools import ensure_tools

REQUESTS = 32


def main(workdir: Path = Path("/tmp/bench-calibration")) -> int:
    logging.basicConfig(level=logging.INFO)
    tools, aiperf = ensure_tools(), aiperf_load.ensure_aiperf()
    prompts = write_prompt_files(TOKENIZER, genai.DATASET_ENTRIES, 100, 7, workdir / "prompts")
    runs = []
    with stack(Engine.CPU, workdir / "stack") as running:
        _, chat = targets(running, prompts)
        target = aiperf_load.HttpTarget(
            "api", running.api_url, "tiny-chat", running.auth_header, prompts.plain, True
        )
        for index, tool in enumerate(("genai-perf", "aiperf", "aiperf", "genai-perf")):
            folder = workdir / f"{tool}-{index}"
            if tool == "genai-perf":
                workload = genai.Workload(100, 64, REQUESTS, 4)
                result = _load_test(tools, chat, 1, workload, folder, 600)
            else:
                result = aiperf_load.run(
                    aiperf, target, 1, REQUESTS, 64, TOKENIZER, folder, 600
                ).result
            runs.append(
                {"tool": tool, "ttft_p50_ms": result.ttft_p50_ms, "itl_p50_ms": result.itl_p50_ms}
            )
    sys.stdout.write(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
