"""Markdown tables of a peer run (``benchmarks.peer``).

``python -m benchmarks.peer_report benchmarks/results/peer.json``
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

GATEWAYS = ("api", "api_nofilter", "litellm")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _row(rows: Sequence[Mapping[str, Any]], path: str, level: int) -> Mapping[str, Any]:
    for row in rows:
        if row.get("path") == path and row.get("concurrency") == level and "failed" not in row:
            return row
    return {}


def levels_table(results: Mapping[str, Any]) -> str:
    rows = results["rows"]
    levels = sorted({row["concurrency"] for row in rows if "concurrency" in row})
    lines = [
        "| conc. | TTFT p50 ms: direct / API / API, no filter / LiteLLM "
        "| output tok/s: direct / API / API, no filter / LiteLLM "
        "| CPU µs per streamed token: API / API, no filter / LiteLLM "
        "| CPU µs per non-streamed request: API / LiteLLM | requests per CPU s: API / LiteLLM |",
        "|---:|---|---|---|---|---|",
    ]
    for level in levels:
        direct = _row(rows, "direct", level)
        streams = [_row(rows, f"{name}-stream", level) for name in GATEWAYS]
        jsons = [_row(rows, f"{name}-json", level) for name in ("api", "litellm")]
        ttft = " / ".join(_fmt(r.get("ttft_p50_ms")) for r in [direct, *streams])
        tokens = " / ".join(_fmt(r.get("output_tokens_per_s"), 0) for r in [direct, *streams])
        cpu_token = " / ".join(_fmt(r.get("net_cpu_us_per_token"), 0) for r in streams)
        cpu_json = " / ".join(_fmt(r.get("net_cpu_us_per_request"), 0) for r in jsons)
        per_cpu = " / ".join(_fmt(r.get("net_requests_per_cpu_s"), 0) for r in jsons)
        lines.append(f"| {level} | {ttft} | {tokens} | {cpu_token} | {cpu_json} | {per_cpu} |")
    return "\n".join(lines)


def bursts_table(results: Mapping[str, Any]) -> str:
    bursts = results.get("bursts") or []
    if not bursts:
        return ""
    by = {(row["path"], row["size"]): row for row in bursts}
    lines = [
        "| burst | last request's TTFT p50 ms: direct / API / API, no filter / LiteLLM "
        "| added over direct: API / API, no filter / LiteLLM |",
        "|---:|---|---|",
    ]
    for size in sorted({row["size"] for row in bursts}):
        direct = by.get(("direct", size), {}).get("last_ttft_p50_ms", math.nan)
        values = [by.get((name, size), {}).get("last_ttft_p50_ms", math.nan) for name in GATEWAYS]
        last = " / ".join(_fmt(v) for v in [direct, *values])
        added = " / ".join(_fmt(v - direct) for v in values)
        lines.append(f"| {size} | {last} | {added} |")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    results = orjson.loads(Path(argv[0]).read_bytes())
    print(levels_table(results))
    print()
    print(bursts_table(results))
    print()
    print(orjson.dumps(results.get("summary", {}), option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
