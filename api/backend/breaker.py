"""A circuit breaker per Triton model: fail fast while a model is broken, probe to recover.

``CircuitBreaker`` is the state machine (closed -> open -> half-open -> closed), driven by a
clock so tests need no sleeps. ``BreakerBackend`` puts one breaker in front of every Triton
model an ``InferenceBackend`` serves. Only backend faults count as failures (unavailable,
internal errors, timeouts); a client's bad request or the API's own refusals do not.

The active probe (api/backend/probe.py) drives a breaker too: a model that fails the probe is
``trip``-ped (held open and reported ``unresponsive``), and a probe that runs the model again
closes the breaker at once (``recovered``), however long its back-off had grown: readiness,
not a timer, ends an outage.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from api.backend.errors import ReplicaLostError
from api.backend.protocol import InferenceBackend
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.errors import APIError, CircuitOpenError, ModelOverloadedError, ShuttingDownError
from api.settings import ResilienceSettings

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and for how long (see ``ResilienceSettings``)."""

    failure_threshold: int = 5
    failure_rate: float = 0.5
    window_s: float = 30.0
    min_calls: int = 20
    open_s: float = 1.0
    max_open_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: ResilienceSettings) -> BreakerPolicy:
        return cls(
            failure_threshold=settings.breaker_failure_threshold,
            failure_rate=settings.breaker_failure_rate,
            window_s=settings.breaker_window_s,
            min_calls=settings.breaker_min_calls,
            open_s=settings.breaker_open_s,
            max_open_s=settings.breaker_max_open_s,
        )


def counts_as_failure(exc: BaseException) -> bool:
    """Backend faults open the breaker; client errors, refusals and cancellation do not, nor
    does the loss of one replica while others of its endpoint serve (ReplicaLostError: the
    replica set takes that replica out, the model itself is fine)."""
    if isinstance(
        exc, ModelOverloadedError | CircuitOpenError | ShuttingDownError | ReplicaLostError
    ):
        return False
    if isinstance(exc, APIError):
        return exc.status_code >= 500
    return isinstance(exc, Exception)


class CircuitBreaker:
    """One model's breaker. Not thread-safe: it lives on the event loop."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Clock = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self._policy = policy
        self._clock = clock
        self._jitter = jitter
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._open_until = 0.0
        self._opens_in_a_row = 0
        self._probe_in_flight = False
        self.opened_total = 0
        self.rejected_total = 0
        # Why the active probe holds the breaker open (None: it does not).
        self.unresponsive: str | None = None
        # When the model last answered (a chunk, an embedding, a probe): the probe skips a
        # model that answers anyway.
        self.last_answer = clock()

    @property
    def state(self) -> BreakerState:
        """The state now; an open breaker whose back-off has passed is half-open."""
        if self._state is BreakerState.OPEN and self._clock() >= self._open_until:
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
            logger.info("circuit breaker %s is half-open: probing", self.name)
        return self._state

    def retry_after_s(self) -> int:
        """Whole seconds until the breaker lets a probe through (at least 1)."""
        return max(1, math.ceil(self._open_until - self._clock()))

    def before_call(self) -> bool:
        """Admit a call or raise ``CircuitOpenError``; returns whether the call is the probe."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        self.rejected_total += 1
        raise CircuitOpenError(
            f"The model is failing and temporarily unavailable ({self.name} circuit open); "
            "retry shortly.",
            headers={"Retry-After": str(self.retry_after_s())},
        )

    def on_success(self, probe: bool) -> None:
        if probe or self.state is BreakerState.HALF_OPEN:
            if self._state is not BreakerState.CLOSED:
                logger.info("circuit breaker %s closed: the model answers again", self.name)
            self._close()
            return
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures = 0
            self._record(failed=False)

    def on_failure(self, probe: bool) -> None:
        if probe or self.state is BreakerState.HALF_OPEN:
            self._open("the probe failed")
            return
        if self._state is not BreakerState.CLOSED:
            return  # a call that started before the breaker opened: already counted
        self._consecutive_failures += 1
        self._record(failed=True)
        if self._consecutive_failures >= self._policy.failure_threshold:
            self._open(f"{self._consecutive_failures} failures in a row")
        elif self._failure_rate_exceeded():
            self._open("failure rate over the window")

    def degraded(self) -> str | None:
        """How readiness reports this model: ``unresponsive``, ``open`` or None (fine)."""
        if self.unresponsive is not None:
            return "unresponsive"
        return BreakerState.OPEN.value if self.state is BreakerState.OPEN else None

    def answered(self) -> None:
        """The model sent something: it is alive, whatever the call's verdict."""
        self.last_answer = self._clock()

    def silent_s(self) -> float:
        """Seconds since the model last answered."""
        return self._clock() - self.last_answer

    def trip(self, reason: str, hold_s: float) -> None:
        """The active probe failed: open now and hold for ``hold_s`` (the next failure renews it).

        The hold is a timer only as a safety net: if probing stopped, the breaker would go
        half-open after it as usual.
        """
        if self.unresponsive is None:
            logger.warning(
                "model %s does not answer (%s): holding its breaker open", self.name, reason
            )
        if self._state is not BreakerState.OPEN:
            self.opened_total += 1
        self.unresponsive = reason
        self._state = BreakerState.OPEN
        self._open_until = self._clock() + hold_s
        self._probe_in_flight = False

    def recovered(self) -> None:
        """A probe ran the model successfully: close at once, whatever the back-off."""
        self.answered()
        if self._state is not BreakerState.CLOSED or self.unresponsive is not None:
            logger.info("circuit breaker %s closed: the model answers the probe", self.name)
        self._close()

    def on_abandon(self, probe: bool) -> None:
        """The call ended without a verdict (client gone): let another call probe."""
        if probe:
            self._probe_in_flight = False

    def _record(self, failed: bool) -> None:
        now = self._clock()
        self._window.append((now, failed))
        while self._window and self._window[0][0] < now - self._policy.window_s:
            self._window.popleft()

    def _failure_rate_exceeded(self) -> bool:
        calls = len(self._window)
        if calls < self._policy.min_calls:
            return False
        failures = sum(1 for _, failed in self._window if failed)
        return failures / calls >= self._policy.failure_rate

    def _open(self, reason: str) -> None:
        # Exponential back-off per reopen, "equal jitter" so that replicas do not probe in step.
        base = min(self._policy.max_open_s, self._policy.open_s * 2**self._opens_in_a_row)
        duration = base * (0.5 + 0.5 * self._jitter())
        self._state = BreakerState.OPEN
        self._open_until = self._clock() + duration
        self._opens_in_a_row += 1
        self._probe_in_flight = False
        self.opened_total += 1
        logger.warning("circuit breaker %s opened for %.2f s: %s", self.name, duration, reason)

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._opens_in_a_row = 0
        self._probe_in_flight = False
        self._window.clear()
        self.unresponsive = None


class BreakerBoard:
    """The breakers of all Triton models, created on first use."""

    def __init__(self, policy: BreakerPolicy, clock: Clock = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, triton_model: str) -> CircuitBreaker:
        breaker = self._breakers.get(triton_model)
        if breaker is None:
            breaker = CircuitBreaker(triton_model, self._policy, self._clock)
            self._breakers[triton_model] = breaker
        return breaker

    def items(self) -> list[tuple[str, CircuitBreaker]]:
        return sorted(self._breakers.items())


class BreakerBackend:
    """``InferenceBackend`` that fails fast (503 ``circuit_open``) while a model's breaker is open.

    A generation counts as a success once its first chunk arrives (so a long stream does not
    hold the half-open probe), and as a failure if it fails before or after that.
    """

    def __init__(self, inner: InferenceBackend, board: BreakerBoard) -> None:
        self._inner = inner
        self.board = board

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        breaker = self.board[request.triton_model]
        probe = breaker.before_call()
        stream = self._inner.generate(request)
        answered = False
        try:
            async for chunk in stream:
                breaker.answered()
                if not answered:
                    answered = True
                    breaker.on_success(probe)
                yield chunk
        except BaseException as exc:
            _judge(breaker, probe and not answered, exc)
            raise
        finally:
            if not answered:
                breaker.on_abandon(probe)
            await stream.aclose()

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        breaker = self.board[triton_model]
        probe = breaker.before_call()
        try:
            result = await self._inner.embed(triton_model, texts, request_id, truncate=truncate)
        except BaseException as exc:
            _judge(breaker, probe, exc)
            breaker.on_abandon(probe)
            raise
        breaker.answered()
        breaker.on_success(probe)
        return result

    async def readiness(self, models: Sequence[str]) -> Readiness:
        """Triton's view, plus every model whose breaker is open (half-open lets traffic in)
        or that failed the active probe (``unresponsive``: Triton's own readiness stays green
        when a Python-backend stub dies)."""
        readiness = await self._inner.readiness(models)
        degraded = {name: label for name in models if (label := self.board[name].degraded())}
        return dataclasses.replace(readiness, degraded={**readiness.degraded, **degraded})

    async def close(self) -> None:
        await self._inner.close()


def _judge(breaker: CircuitBreaker, probe: bool, exc: BaseException) -> None:
    if counts_as_failure(exc):
        breaker.on_failure(probe)
