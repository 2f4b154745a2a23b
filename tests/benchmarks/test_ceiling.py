"""The ceiling's repeated runs: the row is the median run, and the report shows their range."""

from __future__ import annotations

from benchmarks.ceiling import median_result
from benchmarks.report import ceiling_table
from benchmarks.wrk import WrkResult


def wrk_run(requests_per_s: float, errors: int = 0) -> WrkResult:
    return WrkResult(
        requests=int(requests_per_s * 8),
        duration_s=8.0,
        errors=errors,
        requests_per_s=requests_per_s,
        latency_p50_ms=1000 / requests_per_s,
        latency_p90_ms=2.0,
        latency_p99_ms=3.0,
        latency_mean_ms=1.5,
        client_cpu_s=0.8,
    )


def test_the_row_is_the_median_run_with_every_run_listed_and_errors_summed() -> None:
    runs = [(wrk_run(2100.0), 1.1), (wrk_run(1800.0, errors=2), 1.0), (wrk_run(1950.0), 1.05)]
    row = median_result("json", 1, True, 16, runs)
    assert row.requests_per_s == 1950.0 and row.per_worker == 1950.0
    # The median run's own figures, not a mix of runs.
    assert row.server_cores == 1.05 and row.latency_p50_ms == round(1000 / 1950, 2)
    assert row.runs == (2100.0, 1800.0, 1950.0)
    assert row.errors == 2


def test_per_worker_and_chunks_follow_the_mode_and_workers() -> None:
    row = median_result("stream", 2, False, 64, [(wrk_run(500.0), 1.5), (wrk_run(600.0), 1.6)])
    # Two runs: the lower middle one.
    assert row.chunks_per_s == 500.0 * 64 and row.per_worker == 500.0 * 64 / 2
    assert row.runs == (16_000.0, 19_200.0)


def test_the_table_shows_the_range_of_repeated_runs_only() -> None:
    repeated = median_result("json", 1, True, 16, [(wrk_run(r), 1.0) for r in (2100, 1800, 1950)])
    single = median_result("json", 1, False, 16, [(wrk_run(4000.0), 1.0)])
    table = ceiling_table([repeated.to_json(), single.to_json()])
    assert "| 1,950 (1,800-2,100) |" in table
    assert "| 4,000 |" in table
