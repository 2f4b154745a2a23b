from __future__ import annotations

import math

from benchmarks.embeddings import parse_perf_analyzer_throughput
from benchmarks.hotpath import frame_key, hot_spots
from benchmarks.machine import cpu_model, memory_gib
from benchmarks.procs import parse_stat_cpu_ticks


def test_cpu_model_and_memory() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU @ 2.00GHz\n"
    assert cpu_model(cpuinfo) == "Example CPU @ 2.00GHz"
    assert cpu_model("") == "unknown"
    assert memory_gib("MemTotal:       8388608 kB\nMemFree: 1 kB\n") == 8.0


def test_stat_ticks_survive_spaces_in_the_command() -> None:
    stat = "42 (uvicorn worker 1) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0"
    assert parse_stat_cpu_ticks(stat) == 300


def test_frame_keys_drop_line_numbers_and_prefixes() -> None:
    frame = "send (/work/main/.venv/lib/python3.11/site-packages/uvicorn/protocols/h.py:463)"
    assert frame_key(frame) == "send (uvicorn/protocols/h.py)"
    assert frame_key("<module> (x.py)") == "<module> (x.py)"


def test_hot_spots_rank_self_time_and_count_inclusive_once() -> None:
    lines = [
        "main (a.py:1);loop (a.py:2);loop (a.py:3);work (b.py:9) 6",
        "main (a.py:1);idle (c.py:4) 4",
    ]
    spots, total = hot_spots(lines, top=2)
    assert total == 10
    assert [(s.function, s.self_share, s.inclusive_share) for s in spots] == [
        ("work (b.py)", 0.6, 0.6),
        ("idle (c.py)", 0.4, 0.4),
    ]


def test_perf_analyzer_throughput_is_the_last_one_printed() -> None:
    output = (
        "  Client:\n    Throughput: 28.5 infer/sec\n"
        "Inferences/Second vs. Client Average Batch Latency\n"
        "Concurrency: 8, throughput: 29.1089 infer/sec, latency 260437 usec\n"
    )
    assert parse_perf_analyzer_throughput(output) == 29.1089
    assert math.isnan(parse_perf_analyzer_throughput("Failed to obtain stable measurement."))
