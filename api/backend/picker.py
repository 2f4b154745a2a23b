"""Least request: send the next generation to the replica running the fewest.

LLM requests differ in length by orders of magnitude, so round robin leaves one replica with
every long generation while another idles; counting what each replica runs now follows the
real load (Envoy's LEAST_REQUEST). Replicas are few per endpoint, so every one is looked at
(Envoy samples two when weights are equal; a full scan is exact and cheap at this size), and
ties are broken at random so that idle replicas share the first requests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar


class Loaded(Protocol):
    @property
    def in_flight(self) -> int: ...


R = TypeVar("R", bound=Loaded)


def least_request(
    candidates: Sequence[R], choice: Callable[[Sequence[R]], R] = random.choice
) -> R | None:
    """The candidate with the fewest requests in flight (a random one among equals)."""
    if not candidates:
        return None
    fewest = min(candidate.in_flight for candidate in candidates)
    return choice([candidate for candidate in candidates if candidate.in_flight == fewest])
