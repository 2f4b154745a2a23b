"""The replicas of one Triton endpoint: found by a resolver, balanced by least request.

Each replica is its own ``InferenceBackend`` (a ``TritonGrpcBackend``: one channel, one pool
of streams), so pooled streams never pin traffic to one server. gRPC's own ``dns:///`` +
``round_robin`` balances calls, not load: it cannot pick the server running the fewest
generations, and a stream reused from a pool stays on the subchannel it was opened on.

Every ``resolve_interval_s`` the resolver is asked again: new addresses join once a readiness
check passes, vanished ones drain (their running streams finish, no new ones start) and are
closed. A replica that fails a request with "unavailable" (connection refused, reset, Triton
restarting) or a readiness check is ejected for ``eject_s``, doubled per failed check up to
``max_eject_s``, and re-admitted by the first check that passes. A generation that fails
before its first chunk is sent once more to another replica; one cut after it ends with
``ReplicaLostError`` (the error event), which circuit breakers do not count while other
replicas serve. When no replica is in rotation, all of them are tried (Envoy's panic mode):
refusing everything would be no better than trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass

from api.backend.discovery import Resolver
from api.backend.errors import ReplicaLostError
from api.backend.picker import least_request
from api.backend.protocol import InferenceBackend
from api.backend.retry import is_retryable
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.errors import BackendUnavailableError
from api.settings import TritonSettings

logger = logging.getLogger(__name__)

ReplicaFactory = Callable[[str], InferenceBackend]


# How recently a replica must have answered for a failed readiness check to be ignored.
_BUSY_GRACE_S = 10.0


@dataclass(eq=False)
class Replica:
    """One server of the endpoint and what the balancer knows about it."""

    address: str
    backend: InferenceBackend
    in_flight: int = 0
    # None: in rotation; else when it is due for the readiness check that may re-admit it.
    ejected_until: float | None = None
    backoff_s: float = 0.0
    draining: bool = False
    checking: bool = False
    checked_at: float = -math.inf
    started_total: int = 0
    # When it last sent a response: a replica streaming right now is busy, not dead, even
    # if a readiness check times out on a saturated host.
    answered_at: float = -math.inf

    @property
    def in_rotation(self) -> bool:
        return self.ejected_until is None and not self.draining

    @property
    def state(self) -> str:
        if self.draining:
            return "draining"
        return "ready" if self.ejected_until is None else "ejected"


class ReplicaSet:
    """``InferenceBackend`` over the replicas of one endpoint (see the module docstring)."""

    def __init__(
        self,
        name: str,
        resolver: Resolver,
        factory: ReplicaFactory,
        models: Iterable[str],
        settings: TritonSettings,
        *,
        dynamic: bool = True,
        clock: Callable[[], float] = time.monotonic,
        tie_break: Callable[[Sequence[Replica]], Replica] = random.choice,
    ) -> None:
        self.name = name
        self._resolver = resolver
        self._factory = factory
        # The Triton models this endpoint serves: a replica is ready when all of them are.
        self._models = sorted(set(models))
        self._settings = settings
        self._dynamic = dynamic
        self._clock = clock
        self._tie_break = tie_break
        self._replicas: dict[str, Replica] = {}
        self._resolved = False
        self._start: asyncio.Future[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.tick_s = min(1.0, settings.eject_s, settings.resolve_interval_s)

    @property
    def replicas(self) -> list[Replica]:
        return list(self._replicas.values())

    @property
    def serving(self) -> int:
        """Replicas in rotation (taking new requests) now."""
        return sum(replica.in_rotation for replica in self._replicas.values())

    # -- requests -------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        await self._started()
        tried: list[Replica] = []
        while True:
            replica = self._take(tried)
            stream = replica.backend.generate(request)
            answered = False
            try:
                async for chunk in stream:
                    answered = True
                    replica.answered_at = self._clock()
                    yield chunk
                return
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                self._eject(replica, f"request failed: {exc}")
                if answered:
                    raise self._lost(replica, exc) from exc
                tried.append(replica)
                if len(tried) > 1 or self._candidate(tried) is None:
                    raise
                logger.info(
                    "%s: retrying on another replica (%s failed)", self.name, replica.address
                )
            finally:
                await stream.aclose()
                self._release(replica)

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        await self._started()
        tried: list[Replica] = []
        while True:
            replica = self._take(tried)
            try:
                result = await replica.backend.embed(
                    triton_model, texts, request_id, truncate=truncate
                )
                replica.answered_at = self._clock()
                return result
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                self._eject(replica, f"request failed: {exc}")
                tried.append(replica)
                if len(tried) > 1 or self._candidate(tried) is None:
                    raise
            finally:
                self._release(replica)

    def _candidate(self, tried: Sequence[Replica]) -> Replica | None:
        """Least request among the replicas in rotation; all live ones if none is (panic)."""
        live = [r for r in self._replicas.values() if not r.draining and r not in tried]
        in_rotation = [r for r in live if r.in_rotation]
        return least_request(in_rotation or live, self._tie_break)

    def _take(self, tried: Sequence[Replica]) -> Replica:
        replica = self._candidate(tried)
        if replica is None:
            raise BackendUnavailableError(
                f"No replica of the '{self.name}' Triton endpoint is known; retry shortly.",
                headers={"Retry-After": "1"},
            )
        replica.in_flight += 1
        replica.started_total += 1
        return replica

    def _release(self, replica: Replica) -> None:
        replica.in_flight -= 1
        if replica.draining and replica.in_flight == 0:
            self._retire(replica)

    def _lost(self, replica: Replica, exc: Exception) -> Exception:
        """What a stream cut mid-way raises: ``ReplicaLostError`` if others still serve."""
        if not any(r.in_rotation for r in self._replicas.values() if r is not replica):
            return exc
        return ReplicaLostError(
            "The model's server failed while streaming; the reply is incomplete.",
            headers={"Retry-After": "1"},
        )

    # -- rotation -------------------------------------------------------------------------

    def _eject(self, replica: Replica, reason: str, *, check_failed: bool = False) -> None:
        if replica.ejected_until is not None and not check_failed:
            return  # already out; its next check decides
        eject_s, max_s = self._settings.eject_s, self._settings.max_eject_s
        replica.backoff_s = min(max_s, replica.backoff_s * 2) if replica.backoff_s else eject_s
        if replica.ejected_until is None:
            logger.warning(
                "%s: replica %s out of rotation for %.1f s: %s",
                self.name,
                replica.address,
                replica.backoff_s,
                reason,
            )
        replica.ejected_until = self._clock() + replica.backoff_s

    def _admit(self, replica: Replica) -> None:
        if replica.ejected_until is not None:
            logger.info("%s: replica %s in rotation", self.name, replica.address)
        replica.ejected_until = None
        replica.backoff_s = 0.0

    async def check(self, replica: Replica) -> bool:
        """Ask the replica whether it and every model of the endpoint are ready; admit or
        eject it accordingly. True when ready."""
        replica.checking = True
        try:
            readiness = await replica.backend.readiness(self._models)
            ready, reason = readiness.ready, readiness.detail or "not ready"
        except Exception as exc:
            ready, reason = False, str(exc)
        finally:
            replica.checking = False
            replica.checked_at = self._clock()
        if replica.draining:
            return ready
        if ready:
            self._admit(replica)
        elif replica.in_rotation and self._clock() - replica.answered_at < _BUSY_GRACE_S:
            # It answered requests moments ago: a check that failed now (a timeout on a
            # saturated host) does not take a serving replica out; a request that fails does.
            logger.info(
                "%s: replica %s failed a readiness check while serving: %s",
                self.name,
                replica.address,
                reason,
            )
        else:
            self._eject(replica, f"readiness check: {reason}", check_failed=True)
        return ready

    def due_checks(self) -> list[Replica]:
        """Replicas whose readiness check is due: ejected ones past their back-off, and the
        others every ``resolve_interval_s``."""
        now = self._clock()
        due = []
        for replica in self._replicas.values():
            if replica.checking or replica.draining:
                continue
            if replica.ejected_until is not None:
                if now >= replica.ejected_until:
                    due.append(replica)
            elif now - replica.checked_at >= self._settings.resolve_interval_s:
                due.append(replica)
        return due

    # -- discovery ------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Resolve the endpoint again and reconcile: a failed resolution keeps what is known."""
        try:
            addresses = await self._resolver()
        except Exception as exc:
            logger.warning(
                "%s: resolving replicas failed, keeping %d: %s", self.name, len(self._replicas), exc
            )
            return
        self.reconcile(addresses)

    def reconcile(self, addresses: Iterable[str]) -> None:
        """Add new addresses (in rotation only at the first resolution; later ones once a
        check passes) and drain the ones that are gone."""
        wanted = list(dict.fromkeys(addresses))
        now = self._clock()
        for address in wanted:
            replica = self._replicas.get(address)
            if replica is None:
                replica = Replica(address, self._factory(address))
                if self._resolved:
                    replica.ejected_until = now  # due for its first check
                self._replicas[address] = replica
                logger.info("%s: replica %s added", self.name, address)
            elif replica.draining:
                replica.draining = False
                logger.info("%s: replica %s back, no longer draining", self.name, address)
        for address, replica in list(self._replicas.items()):
            if address not in wanted and not replica.draining:
                replica.draining = True
                logger.info(
                    "%s: replica %s removed, draining %d requests",
                    self.name,
                    address,
                    replica.in_flight,
                )
                if replica.in_flight == 0:
                    self._retire(replica)
        self._resolved = True

    def _retire(self, replica: Replica) -> None:
        if self._replicas.get(replica.address) is replica:
            del self._replicas[replica.address]
        self._spawn(replica.backend.close())

    def _spawn(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifetime -------------------------------------------------------------------------

    async def _started(self) -> None:
        """Resolve once before the first request, and start the background task."""
        if self._start is None:
            self._start = asyncio.get_running_loop().create_task(
                self._begin(), context=contextvars.Context()
            )
        if not self._start.done():
            await asyncio.shield(self._start)

    async def _begin(self) -> None:
        await self.refresh()
        if self._dynamic or len(self._replicas) > 1:
            # A context of its own: not the first request's (its request id in every log).
            self._loop_task = asyncio.create_task(
                self._run(), name=f"replicas-{self.name}", context=contextvars.Context()
            )

    async def _run(self) -> None:
        next_resolve = self._clock() + self._settings.resolve_interval_s
        while True:
            await asyncio.sleep(self.tick_s)
            if self._dynamic and self._clock() >= next_resolve:
                next_resolve = self._clock() + self._settings.resolve_interval_s
                await self.refresh()
            for replica in self.due_checks():
                self._spawn(self.check(replica))

    async def readiness(self, models: Sequence[str]) -> Readiness:
        """Ready where any live replica is; each replica's state under ``replicas``."""
        await self._started()
        live = [r for r in self._replicas.values() if not r.draining]
        states = {r.address: r.state for r in self._replicas.values()}
        if not live:
            return Readiness(
                server_ready=False,
                models=dict.fromkeys(models, False),
                detail=f"no replica of endpoint {self.name}",
                replicas={self.name: states},
            )
        answers = await asyncio.gather(*(r.backend.readiness(models) for r in live))
        problems = [
            f"{r.address}: {a.detail or 'not ready'}"
            for r, a in zip(live, answers, strict=True)
            if not a.ready
        ]
        return Readiness(
            server_ready=any(a.server_ready for a in answers),
            models={m: any(a.models.get(m, False) for a in answers) for m in models},
            detail="; ".join(problems),
            replicas={self.name: states},
        )

    async def close(self) -> None:
        tasks = [t for t in (self._loop_task, self._start) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Checks end within their own timeout; closing retired replicas lets stops finish.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self._settings.ready_timeout_s * 2)
        for task in list(self._tasks):
            task.cancel()
        for replica in self._replicas.values():
            await replica.backend.close()
        self._replicas.clear()
