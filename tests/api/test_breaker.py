"""The circuit breaker: its state machine on a fake clock, and the backend layer."""

from __future__ import annotations

import pytest

from api.backend.breaker import (
    BreakerBackend,
    BreakerBoard,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    counts_as_failure,
)
from api.backend.types import GenerationRequest, SamplingParams
from api.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CircuitOpenError,
    ContextLengthExceededError,
    ModelOverloadedError,
)
from tests.api.fakes import FakeBackend

POLICY = BreakerPolicy(failure_threshold=3, failure_rate=0.5, window_s=10, min_calls=6, open_s=2)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, policy: BreakerPolicy = POLICY) -> CircuitBreaker:
    # jitter 1.0: the open period is exactly the back-off, so tests can step over it.
    return CircuitBreaker("m", policy, clock=clock, jitter=lambda: 1.0)


def state(b: CircuitBreaker) -> BreakerState:
    """Read through a function: the state changes with the clock, which mypy cannot know."""
    return b.state


def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        b.on_failure(b.before_call())


def test_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 2)
    assert state(b) is BreakerState.CLOSED
    fail(b)
    assert state(b) is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as raised:
        b.before_call()
    assert raised.value.status_code == 503
    assert raised.value.headers["Retry-After"] == "2"
    assert (b.opened_total, b.rejected_total) == (1, 1)


def test_a_success_resets_the_consecutive_count() -> None:
    b = breaker(Clock())
    fail(b, 2)
    b.on_success(b.before_call())
    fail(b, 2)
    assert state(b) is BreakerState.CLOSED


def test_opens_on_failure_rate_over_the_window() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):  # alternate: never 3 in a row, but half of the calls fail
        b.on_success(b.before_call())
        fail(b)
    assert state(b) is BreakerState.OPEN


def test_old_calls_leave_the_window() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(2):
        fail(b, 2)
        b.on_success(b.before_call())
    clock.now += 11  # the four failures are older than the window
    b.on_success(b.before_call())
    fail(b)
    assert state(b) is BreakerState.CLOSED


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now += 2
    assert state(b) is BreakerState.HALF_OPEN
    probe = b.before_call()
    assert probe
    with pytest.raises(CircuitOpenError):
        b.before_call()  # only one probe at a time
    b.on_success(probe)
    assert state(b) is BreakerState.CLOSED
    assert not b.before_call()


def test_failed_probe_reopens_with_a_longer_back_off() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now += 2
    b.on_failure(b.before_call())
    assert state(b) is BreakerState.OPEN
    clock.now += 2
    assert state(b) is BreakerState.OPEN  # the second period is 4 s
    clock.now += 2
    assert state(b) is BreakerState.HALF_OPEN


def test_back_off_is_capped_and_jittered() -> None:
    clock = Clock()
    policy = BreakerPolicy(failure_threshold=1, open_s=1, max_open_s=4)
    jittered = CircuitBreaker("m", policy, clock=clock, jitter=lambda: 0.0)
    for _ in range(5):
        jittered.on_failure(jittered.before_call())
        assert jittered.retry_after_s() <= 2  # half the capped 4 s with jitter 0
        clock.now += 2
        assert state(jittered) is BreakerState.HALF_OPEN


def test_an_abandoned_probe_frees_the_slot() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now += 2
    b.on_abandon(b.before_call())
    assert b.before_call()


@pytest.mark.parametrize(
    ("error", "counted"),
    [
        (BackendUnavailableError("x"), True),
        (BackendError("x"), True),
        (BackendTimeoutError("x"), True),
        (RuntimeError("x"), True),
        (ContextLengthExceededError("x"), False),
        (ModelOverloadedError("x"), False),
        (CircuitOpenError("x"), False),
        (GeneratorExit(), False),
    ],
)
def test_only_backend_faults_count(error: BaseException, counted: bool) -> None:
    assert counts_as_failure(error) is counted


def request(model: str = "ensemble") -> GenerationRequest:
    return GenerationRequest(
        request_id="r", triton_model=model, params=SamplingParams(max_tokens=4), prompt="hi"
    )


async def drain(backend: BreakerBackend, model: str = "ensemble") -> list[str]:
    return [chunk.text async for chunk in backend.generate(request(model))]


async def test_backend_layer_opens_per_model_and_reports_degraded() -> None:
    fake = FakeBackend(fail_before_first=BackendUnavailableError("down"))
    guarded = BreakerBackend(fake, BreakerBoard(POLICY, clock=Clock()))
    for _ in range(3):
        with pytest.raises(BackendUnavailableError):
            await drain(guarded)
    with pytest.raises(CircuitOpenError):
        await drain(guarded)
    assert len(fake.requests) == 3  # the fourth never reached the backend
    readiness = await guarded.readiness(["embedding", "ensemble"])
    assert readiness.degraded == {"ensemble": "open"}
    assert not readiness.ready
    fake.fail_before_first = None
    assert await drain(guarded, "other") != []  # another model is unaffected


async def test_backend_layer_counts_a_mid_stream_failure() -> None:
    fake = FakeBackend(fail_after_chunks=1)
    board = BreakerBoard(POLICY, clock=Clock())
    guarded = BreakerBackend(fake, board)
    for _ in range(3):
        with pytest.raises(Exception, match="engine crashed"):
            await drain(guarded)
    assert board["ensemble"].state is BreakerState.OPEN


async def test_client_errors_and_early_close_are_not_failures() -> None:
    fake = FakeBackend(fail_before_first=ContextLengthExceededError("long"))
    board = BreakerBoard(POLICY, clock=Clock())
    guarded = BreakerBackend(fake, board)
    for _ in range(5):
        with pytest.raises(ContextLengthExceededError):
            await drain(guarded)
    fake.fail_before_first = None
    for _ in range(5):
        stream = guarded.generate(request())
        await anext(stream)
        await stream.aclose()
    assert board["ensemble"].state is BreakerState.CLOSED


async def test_embeddings_share_the_model_breaker() -> None:
    board = BreakerBoard(POLICY, clock=Clock())
    guarded = BreakerBackend(FakeBackend(), board)
    board["embedding"].on_failure(False)
    board["embedding"].on_failure(False)
    board["embedding"].on_failure(False)
    with pytest.raises(CircuitOpenError):
        await guarded.embed("embedding", ["a"], "r")
