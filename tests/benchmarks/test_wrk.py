from __future__ import annotations

import pytest

from benchmarks.wrk import MARKER, lua_script, parse_output


def test_fixed_body_script() -> None:
    script = lua_script({"model": "m", "input": "hi"}, {"Authorization": "Bearer k"})
    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Authorization"] = "Bearer k"' in script
    assert 'wrk.body = "{\\"model\\":\\"m\\",\\"input\\":\\"hi\\"}"' in script
    assert "request = function" not in script
    assert MARKER in script


def test_unique_field_appends_a_counter_inside_the_string() -> None:
    script = lua_script({"input": "text", "model": "m"}, {}, unique_field="input")
    assert 'local head, tail = "{\\"input\\":\\"text", "\\",\\"model\\":\\"m\\"}"' in script
    assert 'head .. " " .. counter .. tail' in script


def test_parse_output() -> None:
    stdout = (
        "Running 2s test\n"
        f'{MARKER}{{"requests":500,"duration_us":2000000,"bytes":1,"connect":0,"read":1,'
        '"write":0,"status":2,"timeout":0,"p50_us":1500,"p90_us":2500,"p99_us":9000,'
        '"mean_us":1700.5}\n'
    )
    result = parse_output(stdout, client_cpu_s=0.4)
    assert result.requests_per_s == 250
    assert result.errors == 3
    assert (result.latency_p50_ms, result.latency_p99_ms) == (1.5, 9.0)
    assert result.client_cpu_s == 0.4


def test_parse_output_without_the_marker_fails() -> None:
    with pytest.raises(RuntimeError):
        parse_output("wrk: connection refused", 0.0)
