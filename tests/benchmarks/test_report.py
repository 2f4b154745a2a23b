from __future__ import annotations

import math
from typing import Any

from benchmarks.report import checks, comparison_rows, markdown, ratio


def load(path: str, concurrency: int, ttft: float, tokens: float, **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "concurrency": concurrency,
        "requests": 10,
        "errors": 0,
        "ttft_p50_ms": ttft,
        "ttft_p99_ms": ttft * 2,
        "itl_p50_ms": 1.0,
        "itl_p99_ms": 2.0,
        "output_tokens_per_s": tokens,
        "requests_per_s": tokens / 64,
        "responses_per_s": tokens,
        "wall_s": 1.0,
        **extra,
    }


def results() -> dict[str, Any]:
    return {
        "machine": {
            "cpu_model": "Test CPU",
            "cores": 2,
            "memory_gib": 8.0,
            "os": "Linux",
            "python": "3.11",
            "load_before": [0.5, 0.4, 0.3],
        },
        "real_model": {
            "direct": [load("direct", 8, 20.0, 1000.0), load("direct", 1, 10.0, 200.0)],
            "api": [load("api", 1, 10.4, 196.0), load("api", 8, 22.0, 900.0)],
        },
        "zero_cost": {
            "direct": [load("direct", 32, 1.0, 1500.0)],
            "api": [load("api", 32, 1.1, 1200.0)],
        },
        "ceiling": [
            {"mode": "stream", "workers": 1, "gateway": True, "per_worker": 25_000.0},
            {"mode": "json", "workers": 1, "gateway": True, "per_worker": 1_500.0},
            {"mode": "json", "workers": 2, "gateway": True, "per_worker": 900.0},
        ],
        "embeddings": {"cache": {"speedup_p50": 120.0}},
    }


def test_rows_pair_levels_in_order_with_ratios() -> None:
    real = results()["real_model"]
    rows = comparison_rows(real["direct"], real["api"])
    assert [row["concurrency"] for row in rows] == [1, 8]
    assert math.isclose(rows[0]["ttft_ratio"], 1.04)
    assert math.isclose(rows[1]["tokens_ratio"], 0.9)
    assert rows[1]["ttft_p50_ms"] == (20.0, 22.0)


def test_levels_missing_on_one_path_are_left_out() -> None:
    rows = comparison_rows(
        [load("direct", 1, 1, 1), load("direct", 2, 1, 1)], [load("api", 2, 1, 1)]
    )
    assert [row["concurrency"] for row in rows] == [2]


def test_ratio_of_nothing_is_nan() -> None:
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(float("nan"), 1.0))
    assert math.isnan(ratio(None, 1.0)) and math.isnan(ratio(1.0, None))


def test_checks_hold_or_miss_per_target() -> None:
    found = {check.name: check.met for check in checks(results())}
    assert found["TTFT p50 API/direct, c=1"] is True
    assert found["TTFT p50 API/direct, c=8"] is False  # 1.10 > 1.05
    assert found["output tokens/s API/direct, c=1"] is True  # 0.98
    assert found["output tokens/s API/direct, c=8"] is False  # 0.90
    assert found["zero-cost engine: responses/s API/direct, c=32"] is False  # 0.80
    assert found["in-process: streamed chunks/s per worker (gateway on)"] is True
    assert found["in-process: non-streaming requests/s per worker (gateway on)"] is False
    assert found["embedding cache: hit p50 faster than a miss (x)"] is True
    # Only single-worker rows are judged "per worker".
    assert sum("per worker" in name for name in found) == 2


def test_nan_never_passes_and_serialises_as_null() -> None:
    data = results()
    data["real_model"]["api"][0]["ttft_p50_ms"] = float("nan")
    check = next(c for c in checks(data) if c.name == "TTFT p50 API/direct, c=1")
    assert check.met is False
    assert check.to_json()["value"] is None


def test_markdown_has_every_section() -> None:
    text = markdown({**results(), "ceiling": [], "embeddings": {}})
    assert "Test CPU, 2 cores" in text
    assert "| 1 | 10.00 / 10.40 / **1.040**" in text
    assert "Zero-cost engine" in text
    assert "| TTFT p50 API/direct, c=8 | 1.100 | <= 1.05 | **no** |" in text


def test_the_floor_table_splits_each_ratio_into_architecture_and_api() -> None:
    run = {**results(), "ceiling": [], "embeddings": {}}
    assert "The floor" not in markdown(run)  # runs without the floor proxy
    run["real_model"]["floor"] = [
        load("floor", 8, 21.0, 950.0, api_cpu_us_per_response=100.0),
        load("floor", 1, 10.2, 198.0, api_cpu_us_per_response=120.0),
    ]
    run["real_model"]["api"][0]["api_cpu_us_per_response"] = 250.0
    text = markdown(run)
    assert "#### The floor: the thinnest gateway of the same parts" in text
    # c=1: floor / direct 10.2/10 ; API / floor 10.4/10.2 ; tokens 198/200 and 196/198.
    assert "| 1 | 10.20 | 1.020 | 1.020 | 198.0 | 0.990 | 0.990 | 120 / 250 |" in text
    assert "| 8 | 21.00 | 1.050 | 1.048 | 950.0 | 0.950 | 0.947 | 100 / n/a |" in text
    # The targets stay API / direct.
    assert "| TTFT p50 API/direct, c=8 | 1.100 | <= 1.05 | **no** |" in text


def test_the_zero_cost_floor_compares_responses_per_second() -> None:
    run = {**results(), "ceiling": [], "embeddings": {}}
    assert "The floor proxy on the zero-cost engine" not in markdown(run)
    run["zero_cost"]["floor"] = [load("floor", 32, 1.05, 1250.0, api_cpu_us_per_response=150.0)]
    run["zero_cost"]["floor"][0]["responses_per_s"] = 1300.0
    text = markdown(run)
    assert "The floor proxy on the zero-cost engine" in text
    assert "| responses/s (floor) |" in text and "CPU µs / response (floor / API)" in text
    # responses/s, not tokens/s: floor / direct 1300/1500, API / floor 1200/1300.
    assert "| 32 | 1.05 | 1.050 | 1.048 | 1,300.0 | 0.867 | 0.923 | 150 / n/a |" in text
    # The target stays API / direct.
    assert "| zero-cost engine: responses/s API/direct, c=32 | 0.800 |" in text
