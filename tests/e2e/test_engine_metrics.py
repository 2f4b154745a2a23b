"""The engine's waiting-request gauge, the chart's default autoscaling signal, on a real Triton.

The Helm chart scales each model group on TensorRT-LLM's
``nv_trt_llm_request_metrics{request_type="waiting"}`` (through the prometheus-adapter rule in
helm/prometheus-adapter-values.yaml). The CPU twin exports the same gauge; this test reads the
series the adapter rule selects from Triton's metrics port while more streams run than the
engine has sequences (8), sees it rise above 0, and sees it return to 0 once they finish.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field

import httpx
import pytest
import yaml

from tests.e2e.conftest import ROOT, Stack

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

ENGINE_SEQUENCES = 8  # the launcher's default max_num_sequences (tiny-chat's engine_slots)
# The API admits engine_slots + resilience.admission_headroom (2) at once: all of these reach
# the engine without waiting in the API, and the two past the engine's sequences wait there.
STREAMS = ENGINE_SEQUENCES + 2
TOKENS = 160
BODY = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "Tell me a long story"}],
    "max_tokens": TOKENS,
    "min_tokens": TOKENS,
    "stream": True,
}
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def adapter_series() -> tuple[str, dict[str, str]]:
    """The metric name and fixed label values the chart's default autoscaling rule selects."""
    rules = yaml.safe_load((ROOT / "helm" / "prometheus-adapter-values.yaml").read_text())
    (rule,) = [r for r in rules["rules"]["custom"] if r["name"]["as"] == "trtllm_waiting_requests"]
    query = re.fullmatch(r"(\w+)\{(.*)\}", rule["seriesQuery"])
    assert query is not None, rule["seriesQuery"]
    # Only the `label="value"` matchers (namespace!="" and the like select nothing fixed).
    return query[1], dict(re.findall(r'(\w+)="([^"]*)"', query[2]))


def request_gauges(metrics_url: str, name: str) -> dict[str, float]:
    """``request_type`` -> value of the tensorrt_llm model's samples of ``name``."""
    found: dict[str, float] = {}
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        match = SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("model") == "tensorrt_llm":
            found[labels["request_type"]] = float(match["value"])
    return found


@dataclass
class Peaks:
    waiting: float = 0.0
    active: float = 0.0
    # The most requests seen waiting while the engine ran all its sequences: the GPU "full".
    waiting_when_full: float = 0.0
    samples: int = 0
    seen: dict[str, float] = field(default_factory=dict)


async def watch(metrics_url: str, name: str, peaks: Peaks, stop: asyncio.Event) -> None:
    while not stop.is_set():
        gauges = await asyncio.to_thread(request_gauges, metrics_url, name)
        peaks.samples += 1
        peaks.seen = gauges
        peaks.waiting = max(peaks.waiting, gauges.get("waiting", 0.0))
        peaks.active = max(peaks.active, gauges.get("active", 0.0))
        if gauges.get("active") == ENGINE_SEQUENCES:
            peaks.waiting_when_full = max(peaks.waiting_when_full, gauges.get("waiting", 0.0))
        await asyncio.sleep(0.05)


async def stream_one(client: httpx.AsyncClient) -> int:
    async with client.stream("POST", "/v1/chat/completions", json=BODY) as response:
        async for _ in response.aiter_lines():
            pass
        return response.status_code


async def run_streams(stack: Stack, name: str) -> tuple[list[int], Peaks]:
    peaks, stop = Peaks(), asyncio.Event()
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=120) as client:
        watcher = asyncio.create_task(watch(stack.triton_metrics, name, peaks, stop))
        statuses = await asyncio.gather(*(stream_one(client) for _ in range(STREAMS)))
        stop.set()
        await watcher
    return list(statuses), peaks


def settle(metrics_url: str, name: str, timeout_s: float = 15.0) -> dict[str, float]:
    """The gauges once nothing waits or runs (or as they are at the deadline)."""
    deadline = time.monotonic() + timeout_s
    gauges = request_gauges(metrics_url, name)
    while time.monotonic() < deadline and (gauges.get("waiting") or gauges.get("active")):
        time.sleep(0.2)
        gauges = request_gauges(metrics_url, name)
    return gauges


def test_the_adapter_rule_selects_the_waiting_gauge() -> None:
    name, fixed = adapter_series()
    assert name == "nv_trt_llm_request_metrics"
    assert fixed.get("request_type") == "waiting"


def test_waiting_requests_rise_past_the_engine_s_sequences_and_fall_back(stack: Stack) -> None:
    name, fixed = adapter_series()
    before = settle(stack.triton_metrics, name)
    # TensorRT-LLM's request_type values (active, max, scheduled, waiting) on the same family.
    assert {"waiting", "active", "scheduled", "max"} <= set(before), before
    assert before["max"] == ENGINE_SEQUENCES
    assert before["waiting"] == 0 and before["active"] == 0, before

    statuses, peaks = asyncio.run(run_streams(stack, name))
    logger.info(
        "over %d samples: peak waiting %s, peak active %s, waiting with all sequences busy %s",
        peaks.samples,
        peaks.waiting,
        peaks.active,
        peaks.waiting_when_full,
    )

    assert statuses == [200] * STREAMS
    assert peaks.waiting > 0, f"{fixed} never rose above 0 over {peaks.samples} samples"
    # Arrivals wait until their prefill too, so the peak may exceed STREAMS - ENGINE_SEQUENCES;
    # with every sequence running, exactly the excess waits.
    assert peaks.waiting <= STREAMS
    assert peaks.active == ENGINE_SEQUENCES, "the engine runs at most max_num_sequences"
    assert 0 < peaks.waiting_when_full <= STREAMS - ENGINE_SEQUENCES
    after = settle(stack.triton_metrics, name)
    assert after["waiting"] == 0 and after["active"] == 0, after
