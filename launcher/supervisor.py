"""Keep `tritonserver` running: restart it with back-off when it dies, and reap what it leaves.

A Triton that dies (a crash, the OOM killer, `kill -9`) is started again on the same ports
after a back-off that doubles on every restart in a row (and resets once a server has stayed
up for a while). Each run's `TritonServer.stop` kills the server's whole process group first,
so its Python-backend stubs (which outlive a SIGKILLed tritonserver, holding their memory) go
with it. A first start that fails is not retried: that is a configuration error, reported at
once. One killed by a signal before it was ready (a crash, not a configuration) gets one more.

A server whose process lives on while its models stop answering (a Python-backend stub killed
or hung: Triton's own readiness stays green) is restarted too, when a ``ModelCheck`` is given:
after ``failures`` checks in a row fail, as the chart's liveness probe has the kubelet do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from launcher.server import TritonServer, TritonStartError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How often and how soon a dead Triton is started again."""

    # Restarts in a row before giving up (0: never restart).
    max_restarts: int = 10
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    # A server that stayed up this long resets the count and the back-off.
    stable_after_s: float = 60.0

    def delay(self, restarts_in_a_row: int) -> float:
        return float(min(self.max_backoff_s, self.backoff_s * 2**restarts_in_a_row))


@dataclass(frozen=True, slots=True)
class ModelCheck:
    """Whether a ready server's models still answer (``check``), and how often to ask."""

    check: Callable[[TritonServer], bool]
    every_s: float = 10.0
    # Checks failed in a row that restart the server.
    failures: int = 3


class Supervisor:
    """Runs one server after another until ``stop`` is set or restarts run out."""

    def __init__(
        self,
        make_server: Callable[[], TritonServer],
        ready_timeout_s: float,
        policy: RestartPolicy,
        stop: threading.Event,
        on_ready: Callable[[TritonServer], None] = lambda server: None,
        poll_s: float = 0.5,
        model_check: ModelCheck | None = None,
    ) -> None:
        self._make_server = make_server
        self._ready_timeout_s = ready_timeout_s
        self._policy = policy
        self._stop = stop
        self._on_ready = on_ready
        self._poll_s = poll_s
        self._model_check = model_check
        self.starts = 0

    def run(self) -> int:
        """Serve until stopped (0) or Triton cannot be kept up (its exit code, or 1)."""
        restarts = 0
        ever_ready = crashed_unready = False
        while True:
            code, uptime_s = self._run_once()
            if code is None or self._stop.is_set():
                return 0
            if uptime_s is None and not ever_ready:
                if code >= 0 or crashed_unready:
                    return code  # never came up: a configuration error, not a crash
                # Killed by a signal before it was ready (an abort from a shared-memory lock
                # on a loaded host): one more start before calling it a configuration error.
                crashed_unready = True
            ever_ready = ever_ready or uptime_s is not None
            if uptime_s is not None and uptime_s >= self._policy.stable_after_s:
                restarts = 0
            if restarts >= self._policy.max_restarts:
                logger.error("tritonserver exited (code %s); not restarting it again", code)
                return code or 1
            delay = self._policy.delay(restarts)
            restarts += 1
            logger.warning(
                "tritonserver exited (code %s); restart %d in %.1f s", code, restarts, delay
            )
            if self._stop.wait(delay):
                return 0

    def _run_once(self) -> tuple[int | None, float | None]:
        """One server's life: (exit code or None when stopped, seconds it was ready or None)."""
        self.starts += 1
        # Leaving the block stops the server and kills its process group (the stubs too).
        with self._make_server() as server:
            try:
                server.wait_ready(self._ready_timeout_s, cancel=self._stop)
            except TritonStartError as exc:
                if self._stop.is_set():
                    return None, None
                logger.error("%s", exc)
                return server.poll() or 1, None
            ready_at = time.monotonic()
            self._on_ready(server)
            watch = _ModelWatch(self._model_check)
            while not self._stop.wait(timeout=self._poll_s):
                code = server.poll()
                if code is not None:
                    return code or 1, time.monotonic() - ready_at
                if watch.dead(server):
                    # Leaving the block kills the server and its stubs; the loop restarts it.
                    return 1, time.monotonic() - ready_at
            return None, time.monotonic() - ready_at


class _ModelWatch:
    """Runs a ``ModelCheck`` on its schedule and counts its failures in a row."""

    def __init__(self, model_check: ModelCheck | None) -> None:
        self._check = model_check
        self._due = time.monotonic() + (model_check.every_s if model_check else 0.0)
        self._failed = 0

    def dead(self, server: TritonServer) -> bool:
        check = self._check
        if check is None or time.monotonic() < self._due:
            return False
        self._failed = 0 if check.check(server) else self._failed + 1
        self._due = time.monotonic() + check.every_s
        if self._failed >= check.failures:
            logger.error(
                "tritonserver's models did not answer %d checks in a row; restarting it",
                self._failed,
            )
            return True
        return False
