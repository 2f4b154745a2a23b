"""Active probe: find a model that no longer answers, and see it answer again at once.

Triton's own readiness stays green when a model's Python-backend stub dies: requests to it then
hang. So the API asks the model itself. A model that sent nothing for ``interval_s`` (no chunk,
no embedding) gets a one-token generation (or a one-word embedding) straight from the Triton
backend, past the breaker and admission; one that fails it within ``timeout_s`` has its breaker
tripped (held open, ``/health/ready`` 503 naming it ``unresponsive``). While a breaker is open
the model is probed every ``tick_s``, and the first probe that succeeds closes the breaker: the
API serves again a probe tick after Triton does, whatever back-off the breaker had reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from api.backend.breaker import BreakerBoard, BreakerState, CircuitBreaker, counts_as_failure
from api.backend.protocol import InferenceBackend
from api.backend.types import GenerationRequest, SamplingParams
from api.ids import unique_hex
from api.settings import ModelKind, ResilienceSettings, ServedModel

logger = logging.getLogger(__name__)

PROBE_PROMPT = "ping"


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One Triton model and how to ask it something: generate or embed."""

    triton_model: str
    kind: ModelKind

    @classmethod
    def of(cls, models: Iterable[ServedModel]) -> list[ProbeTarget]:
        """One target per Triton model the API routes to, on each endpoint (by route)."""
        kinds = {model.route: model.kind for model in models}
        return [cls(name, kinds[name]) for name in sorted(kinds)]


async def ask(backend: InferenceBackend, target: ProbeTarget) -> None:
    """One tiny request to the model, read to its end; raises what the backend raises."""
    request_id = f"probe-{unique_hex(64)}"
    if target.kind is ModelKind.EMBEDDING:
        await backend.embed(target.triton_model, [PROBE_PROMPT], request_id)
        return
    request = GenerationRequest(
        request_id=request_id,
        triton_model=target.triton_model,
        params=SamplingParams(max_tokens=1, temperature=0.0),
        prompt=PROBE_PROMPT,
    )
    stream = backend.generate(request)
    try:
        async for chunk in stream:
            if chunk.final:
                break
    finally:
        await stream.aclose()


class ModelProber:
    """Probes the models of one application on a background task (``start`` / ``close``)."""

    def __init__(
        self,
        backend: InferenceBackend,
        board: BreakerBoard,
        targets: Iterable[ProbeTarget],
        settings: ResilienceSettings,
    ) -> None:
        self._backend = backend
        self._board = board
        self._targets = list(targets)
        self._interval_s = settings.probe_interval_s
        self._timeout_s = settings.probe_timeout_s
        # How often due models are looked for; an open breaker is probed this often.
        self.tick_s = min(1.0, self._interval_s)
        self._running: dict[str, asyncio.Task[bool]] = {}
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval_s > 0 and self._targets and self._loop_task is None:
            for target in self._targets:
                self._board[target.triton_model].answered()  # silent from now on, if at all
            self._loop_task = asyncio.create_task(self._run(), name="model-prober")

    async def close(self) -> None:
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None
        self._running.clear()

    async def _run(self) -> None:
        # Nothing is due before a whole interval has passed: every model "answered" at start.
        await asyncio.sleep(self._interval_s)
        while True:
            self.probe_due()
            await asyncio.sleep(self.tick_s)

    def probe_due(self) -> list[asyncio.Task[bool]]:
        """Start a probe for every model that is due and not probed already."""
        started = []
        for target in self._targets:
            name = target.triton_model
            if name not in self._running and self._due(self._board[name]):
                task = asyncio.create_task(self.probe(target), name=f"probe-{name}")
                task.add_done_callback(functools.partial(self._finished, name))
                self._running[name] = task
                started.append(task)
        return started

    def _finished(self, name: str, task: asyncio.Task[bool]) -> None:
        self._running.pop(name, None)

    def _due(self, breaker: CircuitBreaker) -> bool:
        if breaker.unresponsive is not None or breaker.state is not BreakerState.CLOSED:
            return True
        return breaker.silent_s() >= self._interval_s

    async def probe(self, target: ProbeTarget) -> bool:
        """Probe one model now and tell its breaker; True when the model answered."""
        breaker = self._board[target.triton_model]
        try:
            async with asyncio.timeout(self._timeout_s):
                await ask(self._backend, target)
        except Exception as exc:
            if not counts_as_failure(exc):
                breaker.recovered()  # it answered, with a refusal: alive
                return True
            reason = (
                f"no answer to a probe within {self._timeout_s:g} s"
                if isinstance(exc, TimeoutError)
                else f"probe failed: {exc}"
            )
            breaker.trip(reason, hold_s=self._interval_s + self._timeout_s)
            return False
        breaker.recovered()
        return True
