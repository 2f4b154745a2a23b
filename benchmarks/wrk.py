"""``wrk`` (C, epoll) as the load generator: POST bodies from a Lua script, JSON figures back.

The script's ``done`` hook prints one line ``WRK_JSON {...}`` with the request count, duration,
errors and latency percentiles, so nothing depends on wrk's human-readable report. wrk's own
CPU time is measured too: on a small machine the client can be the bottleneck.
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)

MARKER = "WRK_JSON "

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%f}\\n',
    "%MARKER%", summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: int
    requests_per_s: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_mean_ms: float
    client_cpu_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lua_script(
    body: Mapping[str, Any], headers: Mapping[str, str], unique_field: str | None = None
) -> str:
    """A wrk script POSTing ``body``; with ``unique_field`` that string field gets a counter
    appended, making every request's input new (embedding cache misses)."""
    lines = ['wrk.method = "POST"']
    all_headers = {"Content-Type": "application/json", **headers}
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in all_headers.items()]
    encoded = orjson.dumps(body).decode()
    if unique_field is None:
        lines.append(f"wrk.body = {_lua_string(encoded)}")
    else:
        head, tail = _split_at_field_end(encoded, unique_field)
        lines += [
            "local counter = 0",
            f"local head, tail = {_lua_string(head)}, {_lua_string(tail)}",
            "request = function()",
            "  counter = counter + 1",
            '  return wrk.format(nil, nil, nil, head .. " " .. counter .. tail)',
            "end",
        ]
    lines.append(_DONE.replace("%MARKER%", MARKER))
    return "\n".join(lines) + "\n"


def _lua_string(text: str) -> str:
    # JSON string escaping is valid Lua string escaping for the ASCII bodies used here.
    return json.dumps(text)


def _split_at_field_end(encoded: str, field: str) -> tuple[str, str]:
    """Split compact JSON just before the closing quote of string field ``field``."""
    key = f'"{field}":"'
    start = encoded.index(key) + len(key)
    end = encoded.index('"', start)
    return encoded[:end], encoded[end:]


def parse_output(stdout: str, client_cpu_s: float) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = orjson.loads(line[len(MARKER) :])
            break
    else:
        raise RuntimeError(f"wrk printed no result line:\n{stdout[-2000:]}")
    duration = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        duration_s=round(duration, 3),
        errors=errors,
        requests_per_s=data["requests"] / duration if duration else 0.0,
        latency_p50_ms=data["p50_us"] / 1000,
        latency_p90_ms=data["p90_us"] / 1000,
        latency_p99_ms=data["p99_us"] / 1000,
        latency_mean_ms=data["mean_us"] / 1000,
        client_cpu_s=round(client_cpu_s, 3),
    )


def run(
    wrk: Path,
    url: str,
    script: str,
    connections: int,
    duration_s: float,
    workdir: Path,
    threads: int = 1,
) -> WrkResult:
    """One wrk run; its CPU time comes from the rusage of reaped children around it."""
    workdir.mkdir(parents=True, exist_ok=True)
    script_path = workdir / f"wrk-{time.monotonic_ns()}.lua"
    script_path.write_text(script)
    argv = [
        str(wrk),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(duration_s, 1):.0f}s",
        "--timeout",
        "30s",
        "-s",
        str(script_path),
        url,
    ]
    before = _children_cpu()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    client_cpu = _children_cpu() - before
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    return parse_output(done.stdout, client_cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
