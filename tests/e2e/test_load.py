"""A bounded overload test on loopback: 500 concurrent streaming clients for a few seconds.

Every request is either served completely or refused clearly (429/503 with the error
envelope); nothing else happens, and the API's memory returns to its baseline afterwards.
The API runs as its own process (to measure it) against the session's Triton.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from benchmarks.overload import LoadReport, run
from tests.e2e.conftest import Stack
from tests.e2e.harness import Api, wait_for

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

CLIENTS = 500
DURATION_S = 5.0
# Python keeps some freed memory in its arenas; growth past this after a run is a leak.
RSS_SLACK_MIB = 25.0
QUEUE_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with Api(
        tmp_path_factory.mktemp("load-logs"),
        "load",
        stack.triton_grpc,
        API_LOG_LEVEL="warning",
        # Admission control is what this test exercises, not the per-address flood guard.
        API_LIMITS__IP_REQUESTS_PER_MINUTE="10000000",
        # Sized to what a 2-core machine serves, so that 500 clients overload it for sure.
        API_RESILIENCE__MAX_IN_FLIGHT="16",
        API_RESILIENCE__MAX_QUEUE="32",
        API_RESILIENCE__QUEUE_TIMEOUT_S=str(QUEUE_TIMEOUT_S),
    ) as server:
        yield server


def idle(api: Api) -> bool:
    """Nothing running or queued in the API (its own gauges)."""
    text = httpx.get(f"{api.url}/metrics", headers=api.headers, timeout=10).text
    busy = re.findall(r"^api_requests_(?:in_flight|queued)\{[^}]*\} (\S+)$", text, re.MULTILINE)
    return all(float(value) == 0 for value in busy)


def settled_rss(api: Api) -> int:
    wait_for(lambda: idle(api), timeout_s=60)
    time.sleep(3.0)
    return api.rss_bytes()


def load(api: Api, duration_s: float) -> LoadReport:
    return asyncio.run(run(api.url, api.key, CLIENTS, duration_s, pid=api.pid))


def test_overload_is_served_or_refused_and_memory_returns(api: Api) -> None:
    cold = api.rss_bytes()
    warm_up = load(api, duration_s=2.0)
    assert warm_up.unexplained == []
    baseline = settled_rss(api)
    report = load(api, DURATION_S)
    after = settled_rss(api)
    summary = report.summary()
    mib = 2**20
    logger.info("load: %s", summary)
    logger.info(
        "API RSS: at start %.1f MiB, after a warm-up %.1f MiB, peak %.1f MiB, after %.1f MiB",
        cold / mib,
        baseline / mib,
        summary["rss_peak_mib"],
        after / mib,
    )
    assert report.unexplained == []
    assert report.served > 0
    assert report.refused > 0  # the load really exceeded what the model takes
    # Refusals come at once or after the bounded queue wait, never after a backlog.
    assert summary["refused_p99_s"] < QUEUE_TIMEOUT_S + 2
    assert set(report.outcomes) <= {"served", *(k for k in report.outcomes if "refused" in k)}
    assert (after - baseline) / mib < RSS_SLACK_MIB


def test_the_api_still_answers_normally_after_the_load(api: Api, stack: Stack) -> None:
    body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    assert api.post("/v1/chat/completions", body).status_code == 200
    assert httpx.get(f"{api.url}/health/ready", timeout=10).status_code == 200
