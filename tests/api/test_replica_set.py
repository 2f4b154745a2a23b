"""ReplicaSet over fake replicas (one scripted backend per address): balancing, discovery,
ejection and re-admission, failover before the first chunk, draining. The real gRPC path is
in tests/e2e/test_replicas_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import pytest

from api.backend.breaker import counts_as_failure
from api.backend.errors import ReplicaLostError
from api.backend.replica_set import ReplicaSet
from api.backend.types import GenerationChunk, GenerationRequest, SamplingParams
from api.errors import BackendUnavailableError
from api.settings import TritonSettings
from tests.api.fakes import FakeBackend

SETTINGS = TritonSettings(resolve_interval_s=5.0, eject_s=1.0, max_eject_s=4.0)


def request() -> GenerationRequest:
    return GenerationRequest("r", "ensemble", SamplingParams(max_tokens=3), prompt="hi")


@dataclass
class Replica(FakeBackend):
    """A fake server: can hold streams open, fail before or after the first chunk."""

    address: str = ""
    hold: asyncio.Event | None = None
    cut_after_first: bool = False
    started: int = 0
    closed: bool = False
    log: list[str] = field(default_factory=list)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.started += 1
        if self.fail_before_first is not None:
            raise self.fail_before_first
        yield GenerationChunk(text=self.address)
        if self.cut_after_first:
            raise BackendUnavailableError("connection reset")
        if self.hold is not None:
            await self.hold.wait()
        yield GenerationChunk(final=True)

    async def close(self) -> None:
        self.closed = True


class Servers:
    """The fake servers by address, made on demand (the ReplicaSet's factory)."""

    def __init__(self) -> None:
        self.by_address: dict[str, Replica] = {}

    def __call__(self, address: str) -> Replica:
        return self.by_address.setdefault(address, Replica(address=address))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def replica_set(
    addresses: list[str], servers: Servers, clock: Clock | None = None
) -> tuple[ReplicaSet, list[str]]:
    """A set whose resolver answers whatever the returned list holds at the time."""
    answer = list(addresses)

    async def resolve() -> list[str]:
        return list(answer)

    replicas = ReplicaSet(
        "chat",
        resolve,
        servers,
        ["ensemble"],
        SETTINGS,
        dynamic=False,
        clock=clock or Clock(),
        tie_break=lambda tied: tied[0],  # the first known among equals: a, then b
    )
    return replicas, answer


async def drain(stream: AsyncGenerator[GenerationChunk, None]) -> list[str]:
    return [chunk.text async for chunk in stream]


async def spread(replicas: ReplicaSet, count: int) -> list[str]:
    """Where ``count`` streams open at once went (each read to its first chunk first)."""
    streams = [replicas.generate(request()) for _ in range(count)]
    texts = [(await anext(stream)).text for stream in streams]
    for stream in streams:
        await drain(stream)
    return texts


async def test_requests_go_to_the_replica_running_the_fewest() -> None:
    servers = Servers()
    replicas, _ = replica_set(["a:1", "b:1", "c:1"], servers)
    await replicas.refresh()
    hold = asyncio.Event()
    for server in servers.by_address.values():
        server.hold = hold
    streams = [replicas.generate(request()) for _ in range(9)]
    firsts = [await anext(stream) for stream in streams]
    # Each new stream went to a least-loaded replica: 3 running on each.
    assert sorted(chunk.text for chunk in firsts) == ["a:1"] * 3 + ["b:1"] * 3 + ["c:1"] * 3
    assert [r.in_flight for r in replicas.replicas] == [3, 3, 3]
    # One replica's streams end: the next requests all go there until it catches up.
    a_streams = [s for s, c in zip(streams, firsts, strict=True) if c.text == "a:1"]
    for stream in a_streams:
        await stream.aclose()
    nexts = [replicas.generate(request()) for _ in range(3)]
    assert [(await anext(s)).text for s in nexts] == ["a:1"] * 3
    hold.set()
    for stream in [*streams, *nexts]:
        await drain(stream)
        await stream.aclose()
    assert [r.in_flight for r in replicas.replicas] == [0, 0, 0]


async def test_a_new_address_joins_after_its_check_and_takes_traffic() -> None:
    servers, clock = Servers(), Clock()
    replicas, answer = replica_set(["a:1"], servers, clock)
    await replicas.refresh()
    answer.append("b:1")
    await replicas.refresh()
    joined = {r.address: r for r in replicas.replicas}["b:1"]
    assert joined.state == "ejected"  # known, not in rotation before a readiness check
    assert joined in replicas.due_checks()
    assert await replicas.check(joined)
    assert joined.state == "ready"
    assert sorted(await spread(replicas, 4)) == ["a:1", "a:1", "b:1", "b:1"]


async def test_a_vanished_address_drains_its_streams_then_closes() -> None:
    servers = Servers()
    replicas, answer = replica_set(["a:1", "b:1"], servers)
    await replicas.refresh()
    hold = asyncio.Event()
    servers("a:1").hold = hold
    running = []
    for _ in range(2):
        stream = replicas.generate(request())
        running.append((stream, (await anext(stream)).text))
    on_a = [stream for stream, text in running if text == "a:1"]
    answer.remove("a:1")
    await replicas.refresh()
    assert {r.address: r.state for r in replicas.replicas}["a:1"] == "draining"
    # No new request goes to the draining replica; the running one finishes.
    assert {(await drain(replicas.generate(request())))[0] for _ in range(5)} == {"b:1"}
    hold.set()
    for stream in on_a:
        assert await drain(stream) == [""]
    await asyncio.sleep(0)
    assert servers("a:1").closed and [r.address for r in replicas.replicas] == ["b:1"]


async def test_a_failed_resolution_keeps_the_known_replicas() -> None:
    servers = Servers()

    async def broken() -> list[str]:
        raise OSError("Temporary failure in name resolution")

    replicas = ReplicaSet("chat", broken, servers, ["ensemble"], SETTINGS)
    replicas.reconcile(["a:1"])
    await replicas.refresh()
    assert [r.address for r in replicas.replicas] == ["a:1"]


async def test_unavailable_before_the_first_chunk_ejects_and_retries_on_another() -> None:
    servers, clock = Servers(), Clock()
    replicas, _ = replica_set(["a:1", "b:1"], servers, clock)
    await replicas.refresh()
    servers("a:1").fail_before_first = BackendUnavailableError("connection refused")
    texts = [(await drain(replicas.generate(request())))[0] for _ in range(6)]
    assert texts == ["b:1"] * 6  # one went to a first, failed over; the rest avoid a
    assert servers("a:1").started == 1
    states = {r.address: r.state for r in replicas.replicas}
    assert states == {"a:1": "ejected", "b:1": "ready"}


async def test_an_ejected_replica_is_readmitted_when_its_check_passes() -> None:
    servers, clock = Servers(), Clock()
    replicas, _ = replica_set(["a:1", "b:1"], servers, clock)
    await replicas.refresh()
    a = servers("a:1")
    a.fail_before_first = BackendUnavailableError("connection refused")
    await drain(replicas.generate(request()))
    ejected = {r.address: r for r in replicas.replicas}["a:1"]
    assert replicas.due_checks() == [{r.address: r for r in replicas.replicas}["b:1"]]
    await replicas.check(replicas.due_checks()[0])
    assert replicas.due_checks() == []  # not before its back-off (eject_s = 1)
    clock.now = 1.0
    a.ready = False  # still down: back-off doubles, capped at max_eject_s
    for expected in (2.0, 4.0, 4.0):
        assert ejected in replicas.due_checks()
        assert not await replicas.check(ejected)
        assert ejected.backoff_s == expected
        clock.now = ejected.ejected_until or 0.0
    a.ready, a.fail_before_first = True, None
    assert await replicas.check(ejected)
    assert ejected.state == "ready" and ejected.backoff_s == 0
    assert sorted(await spread(replicas, 2)) == ["a:1", "b:1"]


async def test_a_replica_that_turns_unready_is_taken_out_at_its_periodic_check() -> None:
    servers, clock = Servers(), Clock()
    replicas, _ = replica_set(["a:1", "b:1"], servers, clock)
    await replicas.refresh()
    clock.now = SETTINGS.resolve_interval_s
    servers("b:1").ready = False
    due = replicas.due_checks()
    assert {r.address for r in due} == {"a:1", "b:1"}
    for replica in due:
        await replicas.check(replica)
    assert {r.address: r.state for r in replicas.replicas} == {"a:1": "ready", "b:1": "ejected"}


async def test_a_stream_cut_after_its_first_chunk_is_a_replica_fault() -> None:
    servers = Servers()
    replicas, _ = replica_set(["a:1", "b:1"], servers)
    await replicas.refresh()
    servers("a:1").cut_after_first = True
    servers("b:1").cut_after_first = True
    stream = replicas.generate(request())
    first = await anext(stream)
    with pytest.raises(ReplicaLostError) as lost:
        await anext(stream)
    # A 503 to the client, not counted by the model's breaker: the other replica serves.
    assert lost.value.status_code == 503 and not counts_as_failure(lost.value)
    assert {r.address: r.state for r in replicas.replicas}[first.text] == "ejected"
    # The last replica in rotation cut too: that is the model's failure, counted.
    stream = replicas.generate(request())
    await anext(stream)
    with pytest.raises(BackendUnavailableError) as failed:
        await anext(stream)
    assert type(failed.value) is BackendUnavailableError and counts_as_failure(failed.value)


async def test_with_every_replica_ejected_requests_still_try_them() -> None:
    servers = Servers()
    replicas, _ = replica_set(["a:1"], servers)
    await replicas.refresh()
    servers("a:1").fail_before_first = BackendUnavailableError("connection refused")
    with pytest.raises(BackendUnavailableError):
        await drain(replicas.generate(request()))
    servers("a:1").fail_before_first = None
    assert await drain(replicas.generate(request())) == ["a:1", ""]


async def test_no_replica_known_is_a_503() -> None:
    replicas, _ = replica_set([], Servers())
    with pytest.raises(BackendUnavailableError, match="No replica"):
        await drain(replicas.generate(request()))


async def test_readiness_is_any_replica_and_lists_each() -> None:
    servers = Servers()
    replicas, _ = replica_set(["a:1", "b:1"], servers)
    servers("a:1").ready = False
    readiness = await replicas.readiness(["ensemble"])
    assert readiness.ready and readiness.models == {"ensemble": True}
    assert readiness.replicas == {"chat": {"a:1": "ready", "b:1": "ready"}}
    assert "a:1" in readiness.detail
    servers("b:1").ready = False
    assert not (await replicas.readiness(["ensemble"])).ready
    await replicas.close()
    assert servers("a:1").closed and servers("b:1").closed


async def test_a_failed_check_does_not_take_out_a_replica_that_is_serving() -> None:
    """On a saturated host a readiness check can time out while the replica streams: it stays
    in rotation as long as it answered moments ago; a replica that went quiet is taken out."""
    servers, clock = Servers(), Clock()
    replicas, _ = replica_set(["a:1", "b:1"], servers, clock)
    await replicas.refresh()
    async for _ in replicas.generate(request()):
        pass  # one of them answered just now
    busy = next(r for r in replicas.replicas if r.answered_at == clock.now)
    quiet = next(r for r in replicas.replicas if r is not busy)
    for replica in (busy, quiet):
        servers(replica.address).ready = False
        await replicas.check(replica)
    assert (busy.state, quiet.state) == ("ready", "ejected")
    clock.now += 11  # long after its last answer: the next failed check takes it out too
    await replicas.check(busy)
    assert busy.state == "ejected"


async def test_each_replica_reports_its_load_and_rotation_as_metrics() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from api.backend.admission import Admission
    from api.backend.breaker import BreakerBoard, BreakerPolicy
    from api.resilience import Resilience
    from api.resilience_metrics import register
    from api.settings import ResilienceSettings

    servers = Servers()
    replicas, _ = replica_set(["a:1", "b:1"], servers)
    await replicas.refresh()
    hold = asyncio.Event()
    servers.by_address["a:1"].hold = hold
    servers.by_address["b:1"].hold = hold
    streams = [replicas.generate(request()) for _ in range(3)]
    for stream in streams:
        await anext(stream)
    options = ResilienceSettings()
    registry = CollectorRegistry()
    register(
        registry,
        Resilience(
            settings=options,
            breakers=BreakerBoard(BreakerPolicy.from_settings(options)),
            admission=Admission(options, {}, lambda route: 1),
            replica_sets=(replicas,),
        ),
    )
    text = generate_latest(registry).decode()
    assert 'api_replica_requests_in_flight{endpoint="chat",replica="a:1"} 2.0' in text
    assert 'api_replica_requests_in_flight{endpoint="chat",replica="b:1"} 1.0' in text
    assert 'api_replica_requests_started_total{endpoint="chat",replica="a:1"} 2.0' in text
    assert 'api_replica_in_rotation{endpoint="chat",replica="b:1"} 1.0' in text
    hold.set()
    for stream in streams:
        await drain(stream)
    text = generate_latest(registry).decode()
    assert 'api_replica_requests_in_flight{endpoint="chat",replica="a:1"} 0.0' in text
