"""The peer benchmark's parsing and arithmetic (no servers, no load tools)."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from benchmarks import aiperf_load, burst, cpu_window, peer
from benchmarks.litellm_peer import proxy_config


def test_samples_interpolate_between_readings() -> None:
    samples = cpu_window.CpuSamples()
    samples.add(1_000_000_000, 10.0)
    samples.add(2_000_000_000, 12.0)
    samples.add(3_000_000_000, 12.5)
    assert samples.at(1_500_000_000) == pytest.approx(11.0)
    assert samples.between(1_500_000_000, 2_500_000_000) == pytest.approx(1.25)
    # Outside the samples: clamped to the first and last reading.
    assert samples.at(0) == 10.0
    assert samples.at(9_000_000_000) == 12.5
    assert samples.rate() == pytest.approx(1.25)


def test_sampling_takes_readings_at_both_ends() -> None:
    readings = iter([1.0, 2.0, 3.0, 4.0, 5.0])
    with cpu_window.sampling(lambda: next(readings), interval_s=60) as samples:
        pass
    assert samples.cpu_s == [1.0, 2.0]


def test_window_spans_first_start_to_last_end() -> None:
    assert cpu_window.window([(5, 9), (3, 4), (6, 12)]) == (3, 12)
    with pytest.raises(ValueError):
        cpu_window.window([])


def _summary(**metrics: dict[str, float]) -> dict[str, object]:
    return {"records": metrics}


def test_aiperf_summary_streamed_and_not() -> None:
    summary = _summary(
        request_count={"avg": 32.0},
        total_output_tokens={"avg": 992.0},
        time_to_first_token={"p50": 20.5, "p99": 40.0},
        inter_token_latency={"p50": 7.0, "p99": 9.0},
        output_token_throughput={"avg": 500.0},
        request_throughput={"avg": 16.0},
    )
    streamed = aiperf_load.parse_summary("api", 8, summary, 12.345, streaming=True)
    assert (streamed.requests, streamed.responses, streamed.errors) == (32, 992, 0)
    assert streamed.ttft_p50_ms == 20.5 and streamed.itl_p99_ms == 9.0
    assert streamed.wall_s == 12.35
    plain = aiperf_load.parse_summary("api", 8, summary, 1.0, streaming=False)
    # A non-streamed reply has no first token: AIPerf's TTFT there is the whole reply.
    assert math.isnan(plain.ttft_p50_ms)
    assert plain.requests_per_s == 16.0


def test_aiperf_profiling_records_skip_the_warmup() -> None:
    lines = [
        {"metadata": {"benchmark_phase": "warmup", "request_start_ns": 1, "request_end_ns": 2}},
        {"metadata": {"benchmark_phase": "profiling", "request_start_ns": 5, "request_end_ns": 9}},
        {"metadata": {"benchmark_phase": "profiling", "request_start_ns": 6}},
    ]
    jsonl = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    assert aiperf_load.profiling_records(jsonl) == [(5, 9)]


def test_aiperf_command_sends_max_tokens_and_streams_on_request() -> None:
    target = aiperf_load.HttpTarget(
        "litellm", "http://127.0.0.1:1", "m", {"Authorization": "Bearer k"}, Path("p"), True
    )
    argv = aiperf_load.command(Path("aiperf"), target, 4, 2, 64, Path("tok"), Path("out"))
    assert "--use-legacy-max-tokens" in argv and "--streaming" in argv
    assert argv[argv.index("--request-count") + 1] == "4"  # never fewer than the clients
    assert argv[argv.index("--header") + 1] == "Authorization:Bearer k"
    assert argv[argv.index("--tokenizer") + 1] == str(Path("tok").resolve())
    plain = aiperf_load.HttpTarget("api", "u", "m", {}, Path("p"), False)
    assert "--streaming" not in aiperf_load.command(
        Path("aiperf"), plain, 1, 8, 64, Path("t"), Path("o")
    )


def test_burst_counts_text_chunks_only() -> None:
    role = orjson.dumps({"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    text = orjson.dumps({"choices": [{"delta": {"content": "hi"}}]})
    assert not burst.has_text(f"data: {role.decode()}")
    assert burst.has_text(f"data: {text.decode()}")
    assert not burst.has_text("data: [DONE]")
    assert not burst.has_text(": keep-alive")


def test_burst_summary_is_the_slowest_and_the_median() -> None:
    assert burst.summarise([0.010, 0.030, 0.020]) == pytest.approx((30.0, 20.0))
    with pytest.raises(ValueError):
        burst.summarise([])


def test_gateway_cpu_per_token_and_request() -> None:
    figures = peer.cpu_figures(0.5, 100, 5_000, streaming=True)
    assert figures["cpu_us_per_token"] == 100.0
    assert figures["cpu_us_per_request"] == 5_000.0
    assert figures["requests_per_cpu_s"] == 200.0
    assert "cpu_us_per_token" not in peer.cpu_figures(0.5, 100, 5_000, streaming=False)


def test_gateway_cpu_takes_the_idle_rate_off_the_profiling_window() -> None:
    samples = cpu_window.CpuSamples()
    samples.add(0, 0.0)
    samples.add(10_000_000_000, 2.0)  # 0.2 CPU s per s throughout
    result = aiperf_load.parse_summary(
        "api", 1, _summary(request_count={"avg": 10.0}, total_output_tokens={"avg": 100.0}), 1, True
    )
    run = aiperf_load.AiperfRun(result, 12, 120, profiling=[(0, 5_000_000_000)])
    figures = peer.gateway_cpu(samples, run, idle_cpu_per_s=0.1, streaming=True)
    assert figures["gateway_cpu_s"] == 1.0  # 5 s of the 10 s window
    assert figures["net_gateway_cpu_s"] == 0.5  # less 0.1 s/s idle over 5 s
    assert figures["net_cpu_us_per_token"] == 5_000.0


def test_summary_ratios_against_direct_and_litellm() -> None:
    rows = [
        {"path": "idle", "cpu_s_per_s": {}},
        {"path": "direct", "concurrency": 1, "ttft_p50_ms": 10.0, "output_tokens_per_s": 100.0},
        {
            "path": "api-stream",
            "concurrency": 1,
            "ttft_p50_ms": 11.0,
            "output_tokens_per_s": 98.0,
            "net_cpu_us_per_token": 30.0,
        },
        {
            "path": "litellm-stream",
            "concurrency": 1,
            "ttft_p50_ms": 14.0,
            "output_tokens_per_s": 80.0,
            "net_cpu_us_per_token": 300.0,
        },
        {"path": "api-json", "concurrency": 1, "net_requests_per_cpu_s": 1000.0},
        {"path": "litellm-json", "concurrency": 1, "net_requests_per_cpu_s": 100.0},
        {"path": "api-json", "concurrency": 32, "failed": "boom"},
    ]
    bursts = [
        {"path": "direct", "size": 8, "last_ttft_p50_ms": 50.0},
        {"path": "api", "size": 8, "last_ttft_p50_ms": 51.5},
        {"path": "litellm", "size": 8, "last_ttft_p50_ms": 70.0},
    ]
    out = peer.summary(rows, bursts)
    assert set(out) == {"c1", "burst8"}
    level = out["c1"]
    assert level["api_added_ttft_ms"] == 1.0 and level["litellm_added_ttft_ms"] == 4.0
    assert level["api_over_litellm_added_ttft"] == 0.25
    assert level["api_tokens_per_s_over_direct"] == 0.98
    assert level["api_over_litellm_requests_per_cpu_s"] == 10.0
    assert out["burst8"]["api_added_last_ttft_ms"] == 1.5
    assert out["burst8"]["litellm_added_last_ttft_ms"] == 20.0
    assert math.isnan(out["burst8"]["api_nofilter_added_last_ttft_ms"])  # not in this run


def test_level_order_flips_every_other_level() -> None:
    assert peer.targets_at_level(0, ["a", "b", "c"]) == ["a", "b", "c"]
    assert peer.targets_at_level(1, ["a", "b", "c"]) == ["c", "b", "a"]


def test_litellm_config_points_the_triton_provider_at_generate() -> None:
    config = proxy_config("http://127.0.0.1:8000/", "ensemble", "sk-x")
    params = config["model_list"][0]["litellm_params"]
    assert params["model"] == "triton/ensemble"
    # The provider picks /generate vs /infer from the URL's end, and streams on generate_stream.
    assert params["api_base"] == "http://127.0.0.1:8000/v2/models/ensemble/generate"
    assert params["rpm"] > 0 and params["tpm"] > 0
    assert config["general_settings"]["master_key"] == "sk-x"


def test_report_tables_put_the_gateways_side_by_side() -> None:
    from benchmarks import peer_report

    results = {
        "rows": [
            {"path": "direct", "concurrency": 1, "ttft_p50_ms": 10.0, "output_tokens_per_s": 100.0},
            {
                "path": "api-stream",
                "concurrency": 1,
                "ttft_p50_ms": 12.0,
                "net_cpu_us_per_token": 250.0,
            },
            {"path": "litellm-json", "concurrency": 1, "net_requests_per_cpu_s": 50.0},
            {"path": "api-json", "concurrency": 1, "failed": "aiperf failed"},
        ],
        "bursts": [
            {"path": "direct", "size": 8, "last_ttft_p50_ms": 40.0},
            {"path": "api", "size": 8, "last_ttft_p50_ms": 41.5},
        ],
    }
    table = peer_report.levels_table(results)
    assert "| 1 | 10.0 / 12.0 / - / - | 100 / - / - / - | 250 / - / - | - / - | - / 50 |" in table
    assert "| 8 | 40.0 / 41.5 / - / - | 1.5 / - / - |" in peer_report.bursts_table(results)
