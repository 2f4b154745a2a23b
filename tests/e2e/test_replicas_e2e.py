"""Many Tritons behind one API: routing by model, least-request balancing over replicas, a
replica added by discovery, a replica killed under load, a model group stopped.

Real processes: three Tritons through the launcher (two replicas of the chat group and one
text2sql group, each on its own ports; the launcher restarts a killed tritonserver), one
``python -m api serve`` whose chat endpoint is a file the test rewrites (the file resolver:
a new address behind the same name, as a headless Service's DNS would add one). Who served
what is read from each Triton's own metrics (``nv_inference_request_success`` of the
ensemble), never from the API. The tests run in order and share that state. Measurements
are logged (``-o log_cli=true --log-cli-level=INFO`` shows them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ROOT
from tests.e2e.harness import Api, Triton, content_of, sse_events, wait_for

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

CHAT = "/v1/chat/completions"
SQL_DIR = ROOT / "models" / "tiny-sql"
STREAMS = 32
# The target is 10 s (measured 5.7 s in one run); a restarted Triton warming up beside
# the load and two other Tritons on two cores has taken longer to pass its first readiness
# check (ready_timeout_s 2 s), so the bound here leaves room for that.
REJOIN_S = 20.0


def chat(model: str, tokens: int) -> dict[str, object]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Count from 1 to 10"}],
        "max_tokens": tokens,
        "min_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replica-logs")


@pytest.fixture(scope="module")
def tritons(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Triton]]:
    """chat-a, chat-b (tiny-chat) and sql (models/tiny-sql when it exists, else tiny-chat's
    weights under another served name), started at once."""
    servers = {}
    for name in ("chat-a", "chat-b", "sql"):
        folder = logs / name
        folder.mkdir()
        server = Triton(
            folder, tmp_path_factory.mktemp(f"{name}-repository"), TRITON_RESTART_BACKOFF_S="0.5"
        )
        if name == "sql" and (SQL_DIR / "config.json").is_file():
            server.env["TRITON_LLM_MODEL_DIR"] = str(SQL_DIR)
        servers[name] = server
    try:
        threads = [threading.Thread(target=server.start) for server in servers.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name, server in servers.items():
            assert server.launcher is not None, f"{name} did not start"
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def replicas_file(logs: Path, tritons: dict[str, Triton]) -> Path:
    """The chat endpoint's replica list; it starts with chat-a only."""
    path = logs / "chat-replicas.json"
    path.write_text(json.dumps([tritons["chat-a"].grpc_url]))
    return path


@pytest.fixture(scope="module")
def api(logs: Path, tritons: dict[str, Triton], replicas_file: Path) -> Iterator[Api]:
    endpoints = {
        "chat": {"target": f"file://{replicas_file}"},
        "sql": {"addresses": [tritons["sql"].grpc_url]},
    }
    # Every stream admitted at once (max_in_flight per replica in rotation), so that the split
    # measures the balancer, not the API's queue: with 10 slots per replica (engine_slots 8 +
    # headroom) the split measured 72/28 and 80/20 in two runs, unexplained so far.
    models = [
        {"id": "tiny-chat", "kind": "chat", "triton_model": "ensemble", "endpoint": "chat",
         "engine_slots": 8, "max_in_flight": STREAMS},
        {"id": "tiny-sql", "kind": "chat", "triton_model": "ensemble", "endpoint": "sql",
         "engine_slots": 8},
    ]  # fmt: skip
    with Api(
        logs,
        "replicas",
        "127.0.0.1:9",  # the default endpoint: no model uses it
        API_MODELS=json.dumps(models),
        API_TRITON__ENDPOINTS=json.dumps(endpoints),
        API_TRITON__RESOLVE_INTERVAL_S="1",
        API_TRITON__EJECT_S="0.5",
        API_TRITON__MAX_EJECT_S="2",
        # Probes would add requests to the counts this module compares.
        API_RESILIENCE__PROBE_INTERVAL_S="0",
        API_RESILIENCE__QUEUE_TIMEOUT_S="60",
        API_RESILIENCE__FIRST_RESPONSE_TIMEOUT_S="60",
    ) as server:
        yield server


def served(triton: Triton) -> int:
    """Ensemble requests this Triton completed, from its own metrics endpoint (0 if down)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{triton.metrics_port}/metrics", timeout=5).text
    except httpx.TransportError:
        return 0
    found = re.search(r'nv_inference_request_success\{model="ensemble",version="1"\} (\S+)', text)
    return int(float(found.group(1))) if found else 0


@dataclass
class Outcome:
    """One streamed request as the client saw it."""

    status: int
    texts: int = 0
    error: dict[str, object] | None = None
    error_after_text: bool = False
    done: bool = False

    @property
    def clean(self) -> bool:
        return self.status == 200 and self.error is None and self.done


async def one(client: httpx.AsyncClient, api: Api, body: dict[str, object]) -> Outcome:
    async with client.stream("POST", f"{api.url}{CHAT}", json=body) as response:
        outcome = Outcome(response.status_code)
        if response.status_code != 200:
            await response.aread()
            outcome.error = response.json().get("error")
            return outcome
        lines = [line async for line in response.aiter_lines()]
        for event in sse_events(iter(lines)):
            if event == "[DONE]":
                outcome.done = True
            elif "error" in (payload := json.loads(event)):
                outcome.error = payload["error"]
                outcome.error_after_text = outcome.texts > 0
            else:
                outcome.texts += bool(content_of(event))
    return outcome


def load(
    api: Api,
    model: str,
    workers: int,
    seconds: float,
    tokens: int,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """``workers`` clients sending request after request for ``seconds`` (or until ``stop``)."""

    async def worker(client: httpx.AsyncClient, until: float, found: list[Outcome]) -> None:
        while time.monotonic() < until and not (stop is not None and stop.is_set()):
            found.append(await one(client, api, chat(model, tokens)))

    async def run() -> list[Outcome]:
        found: list[Outcome] = []
        until = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=workers + 4)
        async with httpx.AsyncClient(headers=api.headers, timeout=120, limits=limits) as client:
            await asyncio.gather(*(worker(client, until, found) for _ in range(workers)))
        return found

    return asyncio.run(run())


class Background:
    """``load`` on a thread until ``join``, so that the test can break things meanwhile."""

    def __init__(self, api: Api, workers: int, tokens: int) -> None:
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: self.outcomes.extend(
                load(api, "tiny-chat", workers, 600, tokens, self._stop)
            )
        )
        self._thread.start()

    def join(self) -> list[Outcome]:
        self._stop.set()
        self._thread.join(timeout=300)
        assert not self._thread.is_alive(), "the load did not end"
        return self.outcomes


def test_a_replica_added_behind_the_name_takes_traffic_without_a_restart(
    api: Api, tritons: dict[str, Triton], replicas_file: Path
) -> None:
    a, b = tritons["chat-a"], tritons["chat-b"]
    before_a, before_b = served(a), served(b)
    assert all(o.clean for o in load(api, "tiny-chat", 8, 3, 8))
    assert served(a) > before_a and served(b) == before_b  # only chat-a is listed
    replicas_file.write_text(json.dumps([a.grpc_url, b.grpc_url]))
    added = time.monotonic()

    def b_serves() -> bool:
        assert all(o.clean for o in load(api, "tiny-chat", 8, 0.5, 8))
        return served(b) > before_b

    took = wait_for(b_serves, timeout_s=15, poll_s=0)
    logger.info("the added replica took traffic %.1f s after it was listed", took)
    assert time.monotonic() - added < 15


def test_models_route_to_their_group_and_32_streams_split_over_the_replicas(
    api: Api, tritons: dict[str, Triton]
) -> None:
    a, b, sql = tritons["chat-a"], tritons["chat-b"], tritons["sql"]
    counts = {name: served(server) for name, server in tritons.items()}
    outcomes = load(api, "tiny-sql", 4, 2, 8)
    assert outcomes and all(o.clean for o in outcomes)
    sql_requests = len(outcomes)
    assert served(sql) - counts["sql"] == sql_requests
    assert (served(a), served(b)) == (counts["chat-a"], counts["chat-b"])

    # A replica whose readiness check timed out while three Tritons started on two cores is
    # out of rotation for its back-off: the split is measured with both in rotation.
    wait_for(lambda: chat_replicas_ready(api), timeout_s=60, poll_s=0.5)
    # Least request balances what runs, not what completes: two CPU-bound Tritons on two
    # shared cores run at uneven speeds for stretches, and the faster one rightly finishes
    # (and so is sent) more requests (splits of 72/28 and 80/20 were measured). So the test
    # samples the API's own per-replica in-flight gauges under load and checks that they stay
    # level, and that both replicas served a fair part of the requests.
    samples: list[tuple[float, float]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            running = replica_in_flight(api)
            pair = (running.get(a.grpc_url, 0.0), running.get(b.grpc_url, 0.0))
            if sum(pair) >= STREAMS // 2:  # the load is up, not starting or ending
                samples.append(pair)
            sampling.wait(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        outcomes = load(api, "tiny-chat", STREAMS, 20, 24)
    finally:
        sampling.set()
        sampler.join()
    assert all(o.clean for o in outcomes), [o for o in outcomes if not o.clean][:3]
    shares = [served(a) - counts["chat-a"], served(b) - counts["chat-b"]]
    gaps = sorted(abs(x - y) for x, y in samples)
    logger.info(
        "%d streams, %d requests: chat-a %d, chat-b %d; in-flight gap over %d samples: "
        "median %.1f, max %.1f",
        STREAMS, len(outcomes), *shares, len(samples), gaps[len(gaps) // 2], gaps[-1],
    )  # fmt: skip
    assert sum(shares) == len(outcomes)
    assert served(sql) - counts["sql"] == sql_requests  # no chat request went there
    assert len(samples) >= 10, samples
    # Dispatch keeps the gap at most 1; streams ending on one replica widen it until the
    # next requests arrive, which go there.
    assert gaps[len(gaps) // 2] <= 2, samples
    for share in shares:
        assert share / sum(shares) >= 0.2, shares


def replica_in_flight(api: Api) -> dict[str, float]:
    """The API's ``api_replica_requests_in_flight`` of the chat endpoint, by address."""
    text = httpx.get(f"{api.url}/metrics", headers=api.headers, timeout=10).text
    pattern = r'api_replica_requests_in_flight\{endpoint="chat",replica="([^"]+)"\} (\S+)'
    return {found.group(1): float(found.group(2)) for found in re.finditer(pattern, text)}


def chat_replicas_ready(api: Api) -> bool:
    body = httpx.get(f"{api.url}/health/ready", timeout=10).json()
    states = body.get("replicas", {}).get("chat", {})
    return len(states) == 2 and all(state == "ready" for state in states.values())


def test_killing_a_replica_under_load_fails_no_request_before_its_first_token(
    api: Api, tritons: dict[str, Triton]
) -> None:
    a, b = tritons["chat-a"], tritons["chat-b"]
    background = Background(api, 16, 120)
    try:
        time.sleep(5)
        os.kill(a.server_pid(), signal.SIGKILL)
        killed = time.monotonic()
        b_at_kill = served(b)
        # The launcher's supervisor starts tritonserver again on the same ports.
        wait_until_ready(a)
        ready_after = time.monotonic() - killed
        b_meanwhile = served(b) - b_at_kill
        a_back = served(a)
        rejoin = wait_for(lambda: served(a) > a_back, timeout_s=REJOIN_S, poll_s=0.2)
    finally:
        outcomes = background.join()
    logger.info(
        "kill: chat-a ready again %.1f s after the kill, took traffic %.1f s later; "
        "chat-b served %d meanwhile",
        ready_after,
        rejoin,
        b_meanwhile,
    )
    failed_early = [o for o in outcomes if o.error is not None and not o.error_after_text]
    cut = [o for o in outcomes if o.error_after_text]
    logger.info("%d requests, %d cut mid-way", len(outcomes), len(cut))
    assert not failed_early, failed_early[:3]
    assert all(o.done for o in outcomes)  # every stream ended with its [DONE]
    assert b_meanwhile > 0  # the survivor carried the load while chat-a was down


def wait_until_ready(triton: Triton, timeout_s: float = 240) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{triton.http_url}/v2/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout_s=timeout_s, poll_s=0.2)


def test_stopping_the_text2sql_group_leaves_chat_serving(
    api: Api, tritons: dict[str, Triton]
) -> None:
    tritons["sql"].stop()
    outcomes = load(api, "tiny-chat", 8, 3, 8)
    assert outcomes and all(o.clean for o in outcomes)
    refused = api.post(CHAT, {**chat("tiny-sql", 4), "stream": False})
    assert refused.status_code == 503, refused.text
    ready = httpx.get(f"{api.url}/health/ready", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["served_models"] == {"tiny-chat": "ready", "tiny-sql": "unavailable"}
    chat_only = httpx.get(f"{api.url}/health/ready", params={"model": "tiny-chat"}, timeout=10)
    assert chat_only.status_code == 200
