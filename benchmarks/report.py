"""Ratio tables (API path / direct path), target checks and the Markdown for the README.

Pure functions over the result dictionaries that ``run_all`` writes as JSON, so a saved run
can be re-rendered (``python -m benchmarks.report results.json``) and the logic is unit-tested.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

# Triton's own OpenAI frontend: 7.8 streaming requests/s against 17.4 over KServe gRPC.
ANCHOR_RATIO = 7.8 / 17.4
TTFT_LIMIT = 1.05
TOKENS_FLOOR = 0.95
ZERO_COST_FLOOR = 0.90
STREAM_CHUNKS_PER_WORKER = 20_000
JSON_REQUESTS_PER_WORKER = 2_000
CACHE_SPEEDUP = 50

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    target: str
    met: bool

    def to_json(self) -> dict[str, Any]:
        value = None if math.isnan(self.value) else round(self.value, 3)
        return {"name": self.name, "value": value, "target": self.target, "met": self.met}


def at_least(name: str, value: float, floor: float) -> Check:
    return Check(name, value, f">= {floor:g}", value >= floor)


def at_most(name: str, value: float, limit: float) -> Check:
    return Check(name, value, f"<= {limit:g}", value <= limit)


def ratio(api: float | None, direct: float | None) -> float:
    """API / direct; NaN when either is missing (a saved run stores NaN as null)."""
    if api is None or not direct or math.isnan(direct) or math.isnan(api):
        return float("nan")
    return api / direct


def pairs(direct: Sequence[Row], api: Sequence[Row]) -> list[tuple[Row, Row]]:
    """Direct and API results of the same concurrency, in concurrency order."""
    by_level = {row["concurrency"]: row for row in api}
    ordered = sorted(direct, key=lambda row: row["concurrency"])
    shared = [row for row in ordered if row["concurrency"] in by_level]
    return [(row, by_level[row["concurrency"]]) for row in shared]


FIGURES = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "output_tokens_per_s",
    "requests_per_s",
    "responses_per_s",
    "errors",
)


def comparison_rows(direct: Sequence[Row], api: Sequence[Row]) -> list[dict[str, Any]]:
    """One row per concurrency: (direct, API) for each figure, and the API/direct ratios."""
    rows = []
    for d, a in pairs(direct, api):
        row: dict[str, Any] = {"concurrency": d["concurrency"]}
        row.update({name: (d[name], a[name]) for name in FIGURES})
        row["ttft_ratio"] = ratio(a["ttft_p50_ms"], d["ttft_p50_ms"])
        row["tokens_ratio"] = ratio(a["output_tokens_per_s"], d["output_tokens_per_s"])
        row["requests_ratio"] = ratio(a["requests_per_s"], d["requests_per_s"])
        row["responses_ratio"] = ratio(a["responses_per_s"], d["responses_per_s"])
        row["api_cpu_us"] = a.get("api_cpu_us_per_response", float("nan"))
        rows.append(row)
    return rows


def checks(results: Mapping[str, Any]) -> list[Check]:
    """Every target of the issue that this run measured."""
    return [
        *_real_model_checks(results.get("real_model")),
        *_zero_cost_checks(results.get("zero_cost")),
        *_ceiling_checks(results.get("ceiling", [])),
        *_cache_checks(results.get("embeddings", {}).get("cache")),
    ]


def _real_model_checks(real: Mapping[str, Any] | None) -> list[Check]:
    found: list[Check] = []
    for row in comparison_rows(real["direct"], real["api"]) if real else []:
        level = row["concurrency"]
        found += [
            at_most(f"TTFT p50 API/direct, c={level}", row["ttft_ratio"], TTFT_LIMIT),
            at_least(f"output tokens/s API/direct, c={level}", row["tokens_ratio"], TOKENS_FLOOR),
            at_least(
                f"requests/s API/direct against the anchor's 7.8/17.4, c={level}",
                row["requests_ratio"],
                round(ANCHOR_RATIO, 3),
            ),
        ]
    return found


def _zero_cost_checks(zero: Mapping[str, Any] | None) -> list[Check]:
    return [
        at_least(
            f"zero-cost engine: responses/s API/direct, c={row['concurrency']}",
            row["responses_ratio"],
            ZERO_COST_FLOOR,
        )
        for row in (comparison_rows(zero["direct"], zero["api"]) if zero else [])
    ]


def _ceiling_checks(rows: Sequence[Row]) -> list[Check]:
    found: list[Check] = []
    for row in rows:
        if row["workers"] != 1:
            continue
        gateway = "gateway on" if row["gateway"] else "gateway off"
        if row["mode"] == "stream":
            name = f"in-process: streamed chunks/s per worker ({gateway})"
            found.append(at_least(name, row["per_worker"], STREAM_CHUNKS_PER_WORKER))
        else:
            name = f"in-process: non-streaming requests/s per worker ({gateway})"
            found.append(at_least(name, row["per_worker"], JSON_REQUESTS_PER_WORKER))
    return found


def _cache_checks(cache: Mapping[str, Any] | None) -> list[Check]:
    if not cache:
        return []
    return [
        at_least(
            "embedding cache: hit p50 faster than a miss (x)", cache["speedup_p50"], CACHE_SPEEDUP
        )
    ]


def _num(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def comparison_table(direct: Sequence[Row], api: Sequence[Row]) -> str:
    """Markdown: direct | API | API/direct for each figure, one row per concurrency."""
    header = (
        "| conc. | TTFT p50 ms (direct / API / ratio) | TTFT p99 ms (direct / API) "
        "| ITL p50 ms (direct / API) | output tok/s (direct / API / ratio) "
        "| req/s (direct / API / ratio) | errors (direct / API) | API CPU µs / token |\n"
        "|---:|---|---|---|---|---|---|---:|"
    )
    lines = [header]
    for row in comparison_rows(direct, api):
        t50, t99, itl = row["ttft_p50_ms"], row["ttft_p99_ms"], row["itl_p50_ms"]
        tok, req, err = row["output_tokens_per_s"], row["requests_per_s"], row["errors"]
        lines.append(
            f"| {row['concurrency']} | {_num(t50[0], 2)} / {_num(t50[1], 2)} / "
            f"**{_num(row['ttft_ratio'], 3)}** | {_num(t99[0], 2)} / {_num(t99[1], 2)} | "
            f"{_num(itl[0], 2)} / {_num(itl[1], 2)} | {_num(tok[0])} / {_num(tok[1])} / "
            f"**{_num(row['tokens_ratio'], 3)}** | {_num(req[0], 2)} / {_num(req[1], 2)} / "
            f"**{_num(row['requests_ratio'], 3)}** | {_errors(err[0])} / {_errors(err[1])} | "
            f"{_num(row['api_cpu_us'], 0)} |"
        )
    return "\n".join(lines)


def floor_table(
    direct: Sequence[Row],
    api: Sequence[Row],
    floor: Sequence[Row],
    rate: str = "output_tokens_per_s",
    unit: str = "token",
) -> str:
    """Markdown: the floor proxy against direct (what the architecture costs) and the API
    against the floor (what the API's own work costs), one row per concurrency. ``rate`` is
    the throughput compared: output tokens/s for the real model, responses/s for the
    zero-cost engine."""
    label = "output tok/s" if rate == "output_tokens_per_s" else "responses/s"
    lines = [
        "| conc. | TTFT p50 ms (floor) | floor / direct | API / floor "
        f"| {label} (floor) | floor / direct | API / floor | CPU µs / {unit} (floor / API) |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (d, f), (_, a) in zip(pairs(direct, floor), pairs(floor, api), strict=False):
        lines.append(
            f"| {d['concurrency']} | {_num(f['ttft_p50_ms'], 2)} | "
            f"{_num(ratio(f['ttft_p50_ms'], d['ttft_p50_ms']), 3)} | "
            f"{_num(ratio(a['ttft_p50_ms'], f['ttft_p50_ms']), 3)} | "
            f"{_num(f[rate])} | "
            f"{_num(ratio(f[rate], d[rate]), 3)} | "
            f"{_num(ratio(a[rate], f[rate]), 3)} | "
            f"{_num(f.get('api_cpu_us_per_response', float('nan')), 0)} / "
            f"{_num(a.get('api_cpu_us_per_response', float('nan')), 0)} |"
        )
    return "\n".join(lines)


def _errors(count: int) -> str:
    return "run failed" if count < 0 else str(count)


def zero_cost_table(direct: Sequence[Row], api: Sequence[Row]) -> str:
    lines = [
        "| conc. | responses/s direct | responses/s API | API/direct | TTFT p50 ms (direct / API) "
        "| errors (direct / API) | API CPU µs / response |",
        "|---:|---:|---:|---:|---|---|---:|",
    ]
    for row in comparison_rows(direct, api):
        resp, t50, err = row["responses_per_s"], row["ttft_p50_ms"], row["errors"]
        lines.append(
            f"| {row['concurrency']} | {_num(resp[0])} | {_num(resp[1])} | "
            f"**{_num(row['responses_ratio'], 3)}** | {_num(t50[0], 2)} / {_num(t50[1], 2)} | "
            f"{_errors(err[0])} / {_errors(err[1])} | {_num(row['api_cpu_us'], 0)} |"
        )
    return "\n".join(lines)


def _spread(runs: Sequence[float]) -> str:
    """`` (low-high)`` of a median row's runs; nothing for a single run (older results)."""
    return f" ({_num(min(runs), 0)}-{_num(max(runs), 0)})" if len(runs) > 1 else ""


def ceiling_table(rows: Sequence[Row]) -> str:
    lines = [
        "| mode | workers | gateway | req/s | chunks/s | per worker (median run; range) "
        "| per busy server core "
        "| server cores | client cores | p50 / p99 ms | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['mode']} ({row['tokens_per_request']} tokens) | {row['workers']} | "
            f"{'on' if row['gateway'] else 'off'} | {_num(row['requests_per_s'])} | "
            f"{_num(row['chunks_per_s'], 0) if row['mode'] == 'stream' else '-'} | "
            f"{_num(row['per_worker'], 0)}{_spread(row.get('runs', ()))} | "
            f"{_num(row['per_server_core'], 0)} | "
            f"{_num(row['server_cores'], 2)} | {_num(row['client_cores'], 2)} | "
            f"{_num(row['latency_p50_ms'], 2)} / {_num(row['latency_p99_ms'], 2)} | "
            f"{row['errors']} |"
        )
    return "\n".join(lines)


def embeddings_table(embeddings: Mapping[str, Any]) -> str:
    cache = embeddings["cache"]
    lines = [
        f"Cache, in process ({cache['samples']} texts): miss p50 {_num(cache['miss_p50_ms'], 3)}"
        f" ms (p99 {_num(cache['miss_p99_ms'], 3)}), hit p50 {_num(cache['hit_p50_ms'], 3)} ms"
        f" (p99 {_num(cache['hit_p99_ms'], 3)}): hit **{_num(cache['speedup_p50'])}x** faster.",
        "",
        "| HTTP /v1/embeddings | connections | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in embeddings["http"].items():
        kind, _, conns = name.partition("_c")
        lines.append(
            f"| {kind} | {conns} | {_num(row['requests_per_s'])} | "
            f"{_num(row['latency_p50_ms'], 2)} | {_num(row['latency_p99_ms'], 2)} | "
            f"{row['errors']} |"
        )
    lines.append("")
    lines.append(
        f"Triton directly (perf_analyzer, gRPC, 8 in flight, one text per request): "
        f"{_num(embeddings['direct_infer_per_s'])} inferences/s."
    )
    return "\n".join(lines)


# The breakdown's "order" when each path ran once forward and once in reverse (run_all writes
# it into the results; older results have no "order").
BOTH_ORDERS = "forward and reverse"


def breakdown_table(figures: Mapping[str, Any]) -> str:
    """Where the API path's first token goes at concurrency 1 (see ``benchmarks.wire``)."""
    parts = [figures.get(name, {}) for name in ("direct", "chat", "completions")]
    failed = [
        part.get("error", "recorded in an earlier format (see the JSON)")
        for part in parts
        if "requests" not in part
    ]
    if "error" in figures or failed:
        return f"Not measured: {figures.get('error') or failed[0]}."
    direct, chat, completions = parts
    genai_perf = figures.get("genai_perf_ttft_p50_ms", {})
    rows = [
        ("POST in -> gRPC request out (the API)", "before_grpc_ms"),
        ("gRPC request out -> first response in (Triton)", "triton_ms"),
        ("first response in -> first SSE chunk out (the API)", "after_first_response_ms"),
        ("POST in -> first SSE chunk out", "first_chunk_ms"),
    ]
    plain = figures.get("direct_plain", {})
    lines = [
        f"Medians of {direct['requests']} direct, {chat['requests']} chat and "
        f"{completions['requests']} completions requests, one at a time, from the kernel's "
        "time stamps on the loopback interface. Direct: gRPC request out -> first response "
        f"in, **{_num(direct['first_response_ms'], 2)} ms** (genai-perf's TTFT p50: "
        f"{_num(genai_perf.get('direct', float('nan')), 2)} ms).",
    ]
    if "first_response_ms" in plain:
        lines[-1] += (
            " The same prompts sent bare, without the chat template's control tokens: "
            f"{_num(plain['first_response_ms'], 2)} ms (genai-perf: "
            f"{_num(genai_perf.get('direct_plain', float('nan')), 2)} ms)."
        )
    if figures.get("order") == BOTH_ORDERS:
        lines[-1] += (
            " Each path ran twice, once in the order direct, bare, chat, completions, floor and "
            "once in reverse, so that Triton's drift over the sequence falls on all alike; "
            "genai-perf's figure is the mean of the two runs' p50."
        )
    # Runs before benchmarks.floor_proxy have no floor column.
    columns = {"chat": chat, "completions": completions}
    header = "| API span, ms | chat | completions (same `text_input` as direct) |"
    if "requests" in (floor := figures.get("floor", {})):
        columns["floor"] = floor
        header += " thinnest proxy, chat prompts (floor) |"
    lines += [
        "",
        header,
        "|---|" + "---:|" * len(columns),
        *(
            f"| {name} | " + " | ".join(_num(part[key], 2) for part in columns.values()) + " |"
            for name, key in rows
        ),
        "| genai-perf's TTFT p50 | "
        + " | ".join(_num(genai_perf.get(path, float("nan")), 2) for path in columns)
        + " |",
    ]
    if "floor" in columns:
        lines += [
            "",
            "The floor is `benchmarks.floor_proxy`: uvicorn and gRPC's asyncio client with the "
            "API's own request builder and nothing else (no auth, limits, usage, validation or "
            "logging). What it adds to Triton's span is the architecture's cost on this "
            "machine; the API's figure minus the floor's is what the API's own work costs.",
        ]
    return "\n".join(lines)


def checks_table(found: Sequence[Check]) -> str:
    lines = ["| target | measured | required | held |", "|---|---:|---|---|"]
    for check in found:
        lines.append(
            f"| {check.name} | {_num(check.value, 3)} | {check.target} | "
            f"{'yes' if check.met else '**no**'} |"
        )
    return "\n".join(lines)


def machine_line(machine: Mapping[str, Any]) -> str:
    load = machine.get("load_during", machine.get("load_before", []))
    return (
        f"{machine['cpu_model']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['os']}, Python {machine['python']}; load average "
        f"{' / '.join(f'{x:.2f}' for x in load)} (1/5/15 min)"
    )


def markdown(results: Mapping[str, Any]) -> str:
    """Every table of one run, as Markdown."""
    parts = [f"Machine: {machine_line(results['machine'])}.", ""]
    if real := results.get("real_model"):
        table = comparison_table(real["direct"], real["api"])
        # Runs before the prompt files sent the same bare text on both paths.
        prompts = results.get("prompts", "the same bare text on both paths (no chat template)")
        title = "#### Real model (tiny-chat, CPU engine): direct gRPC vs API"
        parts += [title, "", f"Prompts: {prompts}.", "", table, ""]
        if floor := real.get("floor"):
            parts += [
                "#### The floor: the thinnest gateway of the same parts",
                "",
                "`benchmarks.floor_proxy` (uvicorn, gRPC's asyncio client, the API's own "
                "request builder; no auth, limits, usage, validation or logging), run in the "
                "same rounds. Floor / direct is what any such Python gateway costs on this "
                "machine; API / floor is what the API's own work costs on top.",
                "",
                floor_table(real["direct"], real["api"], floor),
                "",
            ]
    if breakdown := results.get("ttft_breakdown"):
        title = "#### Where the API's first token goes (concurrency 1, loopback packets)"
        parts += [title, "", breakdown_table(breakdown), ""]
    if zero := results.get("zero_cost"):
        table = zero_cost_table(zero["direct"], zero["api"])
        parts += ["#### Zero-cost engine in Triton: direct gRPC vs API", "", table, ""]
        if floor := zero.get("floor"):
            parts += [
                "The floor proxy on the zero-cost engine, in the same rounds:",
                "",
                floor_table(zero["direct"], zero["api"], floor, "responses_per_s", "response"),
                "",
            ]
    if ceiling := results.get("ceiling"):
        parts += ["#### API ceiling: in-process zero-cost backend", "", ceiling_table(ceiling), ""]
    if embeddings := results.get("embeddings"):
        parts += ["#### Embeddings", "", embeddings_table(embeddings), ""]
    parts += ["#### Targets", "", checks_table(checks(results)), ""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a saved run's tables as Markdown.")
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    sys.stdout.write(markdown(orjson.loads(args.results.read_bytes())) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
