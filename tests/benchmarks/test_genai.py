from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks import genai
from benchmarks.genai import Target, Workload, command, count_responses, parse_result


def sse(content: str | None, finish: str | None = None) -> dict[str, str]:
    delta = {} if content is None else {"content": content}
    chunk = f'{{"choices":[{{"index":0,"delta":{_json(delta)},"finish_reason":{_json(finish)}}}]}}'
    return {"response": f"data: {chunk}\n\n"}


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def test_kserve_responses_count_text_and_span() -> None:
    requests = [
        {
            "timestamp": 1_000_000_000,
            "response_timestamps": [1_100_000_000, 1_200_000_000],
            "response_outputs": [{"text_output": " a"}, {"text_output": " b"}],
        },
        {
            "timestamp": 1_500_000_000,
            "response_timestamps": [3_000_000_000],
            "response_outputs": [{"text_output": " c"}],
        },
    ]
    assert count_responses(requests) == (3, 0, 2.0)


def test_chat_role_finish_and_done_chunks_do_not_count() -> None:
    outputs = [
        sse(""),
        sse("Hello"),
        sse(" world"),
        sse(None, "length"),
        {"response": "data: [DONE]\n\n"},
    ]
    request = {"timestamp": 0, "response_timestamps": [1_000_000_000], "response_outputs": outputs}
    assert count_responses([request]) == (2, 0, 1.0)


def test_a_request_without_text_or_with_an_error_event_fails() -> None:
    empty = {"timestamp": 0, "response_timestamps": [1], "response_outputs": []}
    error = {
        "timestamp": 0,
        "response_timestamps": [1, 2],
        "response_outputs": [
            sse("partial"),
            {"response": 'data: {"error": {"message": "boom"}}\n\n'},
        ],
    }
    responses, errors, _ = count_responses([empty, error])
    assert (responses, errors) == (1, 2)


def test_parse_result_reads_the_summary_and_the_raw_export() -> None:
    summary = {
        "time_to_first_token": {"p50": 10.0, "p99": 20.0},
        "inter_token_latency": {"p50": 2.0, "p99": 3.0},
        "output_token_throughput": {"avg": 500.0},
        "request_throughput": {"avg": 7.5},
    }
    raw = {
        "experiments": [
            {
                "requests": [
                    {
                        "timestamp": 0,
                        "response_timestamps": [500_000_000],
                        "response_outputs": [{"text_output": "x"}],
                    }
                ]
            }
        ]
    }
    result = parse_result("direct", 8, summary, raw, wall_s=3.14159)
    assert result.ttft_p50_ms == 10.0 and result.itl_p99_ms == 3.0
    assert result.output_tokens_per_s == 500.0 and result.requests_per_s == 7.5
    assert (result.requests, result.errors, result.responses_per_s) == (1, 0, 2.0)
    assert result.wall_s == 3.14


def test_missing_figures_are_nan() -> None:
    result = parse_result("api", 1, {}, {"experiments": []}, 0.0)
    assert math.isnan(result.ttft_p50_ms) and result.responses_per_s == 0.0


def test_both_paths_get_the_same_workload_flags() -> None:
    workload = Workload(input_tokens=50, output_tokens=20, request_count=10)
    direct = Target("direct", "kserve", "ensemble", "127.0.0.1:8001", {}, Path("t.jsonl"))
    api = Target(
        "api", "chat", "tiny-chat", "127.0.0.1:9000", {"Authorization": "Bearer k"}, Path("p.jsonl")
    )
    direct_argv = command(direct, 32, workload, Path("tok"), Path("out"))
    api_argv = command(api, 32, workload, Path("tok"), Path("out"))
    assert direct_argv[direct_argv.index("--input-file") + 1] == "t.jsonl"
    assert api_argv[api_argv.index("--input-file") + 1] == "p.jsonl"
    for argv in (direct_argv, api_argv):
        assert "--streaming" in argv
        assert not any(flag.startswith("--synthetic-input") for flag in argv)
        assert argv[argv.index("--output-tokens-mean") + 1] == "20"
        assert argv[argv.index("--extra-inputs") + 1] == "min_tokens:20"
        # Never fewer requests, nor warm-up requests, than clients.
        assert argv[argv.index("--request-count") + 1] == "32"
        assert argv[argv.index("--warmup-request-count") + 1] == "32"
    assert direct_argv[direct_argv.index("--backend") + 1] == "tensorrtllm"
    assert api_argv[api_argv.index("--header") + 1] == "Authorization:Bearer k"
    assert "--header" not in direct_argv


def _row(ttft: float, tokens: float, errors: int = 0, api_cpu: float = 1.0) -> genai.LoadResult:
    return genai.LoadResult(
        "api", 8, 100, errors, ttft, ttft * 2, 5.0, 6.0, tokens, tokens / 64, tokens, 10.0,
        client_cpu_s=2.0, api_cpu_s=api_cpu, responses=6400,
    )  # fmt: skip


def test_two_runs_combine_into_one_row() -> None:
    row = genai.combine([_row(10.0, 900.0, errors=1), _row(20.0, 1100.0, api_cpu=3.0)])
    assert (row.path, row.concurrency) == ("api", 8)
    assert row.ttft_p50_ms == 15.0 and row.output_tokens_per_s == 1000.0
    assert row.requests == 200 and row.errors == 1 and row.responses == 12800
    assert row.api_cpu_s == 4.0 and row.wall_s == 20.0
    assert row.api_cpu_us_per_response == 4.0 / 12800 * 1e6


def test_a_failed_run_fails_the_combined_row() -> None:
    row = genai.combine([_row(10.0, 900.0), genai.failed("api", 8, 3.0)])
    assert row.errors == -1 and row.wall_s == 13.0
    assert genai.combine([_row(10.0, 900.0)]) == _row(10.0, 900.0)
