"""PNG plots of a saved run; runs in the benchmark venv (matplotlib, no API imports).

``python -m benchmarks.plots RESULTS.json OUT_DIR`` writes:
- ``latency_throughput.png``: TTFT p50 and output tokens/s, direct vs API, per concurrency;
- ``ratios.png``: API/direct ratios per concurrency against the targets;
- ``ceiling.png``: the in-process ceiling per worker count, gateway on and off;
- ``peer.png`` (from ``peer.json``, ``benchmarks.peer``): the API against LiteLLM: gateway CPU
  per streamed token, per non-streamed request, and TTFT p50 with direct's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.report import ANCHOR_RATIO, comparison_rows


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    ordered = sorted(rows, key=lambda row: row["concurrency"])
    # A failed load test is saved with null figures: a gap in the line.
    values = [float("nan") if row[key] is None else row[key] for row in ordered]
    return [row["concurrency"] for row in ordered], values


def _concurrency_axis(axis: Any, levels: list[int]) -> None:
    axis.set_xscale("log", base=2)
    axis.set_xticks(levels, [str(level) for level in levels])
    axis.minorticks_off()
    axis.set_xlabel("concurrency")


def latency_throughput(results: dict[str, Any], out: Path) -> None:
    real = results["real_model"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for path, style in (("direct", "o-"), ("api", "s--")):
        x, ttft = _series(real[path], "ttft_p50_ms")
        left.plot(x, ttft, style, label=f"{path} TTFT p50")
        x, tokens = _series(real[path], "output_tokens_per_s")
        right.plot(x, tokens, style, label=f"{path} output tok/s")
    levels = sorted({row["concurrency"] for row in real["direct"]})
    left.set_yscale("log")  # queueing at high concurrency dwarfs the single-client TTFT
    for axis, title in ((left, "Time to first token p50 (ms, log)"), (right, "Output tokens/s")):
        _concurrency_axis(axis, levels)
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
        axis.legend()
    machine = results["machine"]
    fig.suptitle(f"tiny-chat on {machine['cpu_model']} ({machine['cores']} cores)")
    fig.tight_layout()
    fig.savefig(out / "latency_throughput.png", dpi=110)
    plt.close(fig)


def ratios(results: dict[str, Any], out: Path) -> None:
    fig, axis = plt.subplots(figsize=(7, 4))
    real = comparison_rows(results["real_model"]["direct"], results["real_model"]["api"])
    levels = [row["concurrency"] for row in real]
    for key, label in (
        ("ttft_ratio", "TTFT p50 (<= 1.05)"),
        ("tokens_ratio", "output tok/s (>= 0.95)"),
        ("requests_ratio", "requests/s (anchor 0.45)"),
    ):
        axis.plot(levels, [row[key] for row in real], "o-", label=label)
    rows = []
    if zero := results.get("zero_cost"):
        rows = comparison_rows(zero["direct"], zero["api"])
        axis.plot(
            [row["concurrency"] for row in rows],
            [row["responses_ratio"] for row in rows],
            "^:",
            label="zero-cost engine responses/s (>= 0.90)",
        )
    for level, color in ((1.05, "r"), (0.95, "g"), (0.9, "m"), (ANCHOR_RATIO, "k")):
        axis.axhline(level, linestyle=":", color=color, linewidth=0.8)
    zero_levels = [row["concurrency"] for row in rows] if zero else []
    _concurrency_axis(axis, sorted({*levels, *zero_levels}))
    axis.set_ylabel("API / direct")
    axis.set_title("API path relative to Triton's gRPC stream")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ratios.png", dpi=110)
    plt.close(fig)


def ceiling(results: dict[str, Any], out: Path) -> None:
    rows = results["ceiling"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for gateway, style in ((True, "o-"), (False, "s--")):
        label = "gateway on" if gateway else "gateway off"
        stream = sorted(
            (r for r in rows if r["mode"] == "stream" and r["gateway"] == gateway),
            key=lambda r: r["workers"],
        )
        plain = sorted(
            (r for r in rows if r["mode"] == "json" and r["gateway"] == gateway),
            key=lambda r: r["workers"],
        )
        left.plot(
            [r["workers"] for r in stream], [r["chunks_per_s"] for r in stream], style, label=label
        )
        right.plot(
            [r["workers"] for r in plain], [r["requests_per_s"] for r in plain], style, label=label
        )
    left.axhline(20_000, color="g", linestyle=":", linewidth=0.8)
    right.axhline(2_000, color="g", linestyle=":", linewidth=0.8)
    left.set_title("Streamed chunks/s (in-process zero-cost backend)")
    right.set_title("Non-streaming requests/s")
    for axis in (left, right):
        axis.set_xlabel("uvicorn workers")
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.suptitle(f"{results['machine']['cores']} cores: workers beyond the core count share CPU")
    fig.tight_layout()
    fig.savefig(out / "ceiling.png", dpi=110)
    plt.close(fig)


def peer(results: dict[str, Any], out: Path) -> None:
    rows = [row for row in results["rows"] if "concurrency" in row and "failed" not in row]
    panels = (
        ("net_cpu_us_per_token", "-stream", "Gateway CPU µs per streamed token"),
        ("net_cpu_us_per_request", "-json", "Gateway CPU µs per non-streamed request"),
        ("ttft_p50_ms", "-stream", "TTFT p50 ms (log)"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    levels = sorted({row["concurrency"] for row in rows})
    for axis, (key, suffix, title) in zip(axes, panels, strict=True):
        names = ["api", "litellm"] + (["api_nofilter", "direct"] if key == "ttft_p50_ms" else [])
        for name, style in zip(names, ("s--", "^:", "d-.", "o-"), strict=False):
            path = name if name == "direct" else name + suffix
            picked = [row for row in rows if row["path"] == path and row.get(key) is not None]
            if picked:
                x, y = _series(picked, key)
                axis.plot(x, y, style, label=name)
        axis.set_yscale("log")
        _concurrency_axis(axis, levels)
        axis.set_title(title)
        axis.legend()
    fig.suptitle(f"API vs LiteLLM {results['litellm']['version']} on one Triton (one run)")
    fig.tight_layout()
    fig.savefig(out / "peer.png", dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    results = json.loads(Path(argv[0]).read_text())
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    if results.get("real_model"):
        latency_throughput(results, out)
        ratios(results, out)
    if results.get("ceiling"):
        ceiling(results, out)
    if results.get("litellm"):
        peer(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
