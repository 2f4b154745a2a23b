"""The guards around the backend, as the rest of the application sees them.

``api.app.guarded_backend`` wraps the Triton backend in the breaker, deadline, admission and
retry layers and returns this handle: readiness and metrics read the breakers and gates from
it, shutdown drains through it, and its prober (api/backend/probe.py) runs for the
application's lifetime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from api.backend.admission import Admission
from api.backend.breaker import BreakerBoard
from api.backend.probe import ModelProber
from api.backend.replica_set import ReplicaSet
from api.settings import ResilienceSettings

logger = logging.getLogger(__name__)

# Streams still running when the drain time is nearly up end with an error event this long
# before the server cancels them, so that no client sees a silently cut stream.
_DRAIN_MARGIN_S = 1.0


@dataclass(frozen=True, slots=True)
class Resilience:
    """The breakers, admission gates and model prober of one application."""

    settings: ResilienceSettings
    breakers: BreakerBoard
    admission: Admission
    prober: ModelProber | None = None
    # The balanced endpoints, for the per-replica metrics (empty for fixed addresses).
    replica_sets: tuple[ReplicaSet, ...] = field(default=())

    def start(self) -> None:
        """Start probing the models (on the running event loop)."""
        if self.prober is not None:
            self.prober.start()

    async def close(self) -> None:
        """Stop probing."""
        if self.prober is not None:
            await self.prober.close()

    def begin_drain(self) -> None:
        """Stop admitting; running requests must end before the server's drain timeout."""
        timeout = self.settings.drain_timeout_s
        self.admission.begin_drain(max(timeout - min(_DRAIN_MARGIN_S, timeout / 4), 0.0))

    async def drain(self) -> None:
        """Begin draining (if the server has not) and wait for running requests to end."""
        self.begin_drain()
        if not await self.admission.wait_idle(self.settings.drain_timeout_s):
            logger.warning("drain timeout: %d requests still running", self.admission.busy)
