"""The cyclic garbage collector, tuned for a request-serving process.

With Python's defaults (a generation-0 collection every 700 allocations) every request's
short-lived objects went through several collections, enough of them survived into the old
generation to trigger a full collection every second or so, and each full collection walked
the whole start-up heap (SQLAlchemy, pydantic, gRPC, numpy: about 100 ms each). Measured on
the in-process ceiling benchmark (non-streaming, gateway on, one worker): 775 µs of CPU per
request before, 475 µs after (benchmarks/README.md).

- A higher generation-0 threshold lets request objects die young, by reference counting,
  before any collection sees them.
- ``gc.freeze()`` after start-up moves everything alive then (modules, settings, the app) to a
  permanent generation that collections no longer walk.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)

_frozen = False


def tune_gc(threshold0: int, freeze: bool) -> None:
    """Apply the settings; the freeze happens once per process (later calls are no-ops)."""
    global _frozen
    if threshold0 > 0:
        _, threshold1, threshold2 = gc.get_threshold()
        gc.set_threshold(threshold0, threshold1, threshold2)
    if freeze and not _frozen:
        gc.collect()  # what is garbage now must not be frozen with the rest
        gc.freeze()
        _frozen = True
        logger.info(
            "gc: froze %d start-up objects; thresholds %s",
            gc.get_freeze_count(),
            gc.get_threshold(),
        )
