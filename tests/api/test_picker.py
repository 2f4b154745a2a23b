from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from api.backend.picker import least_request


@dataclass
class Server:
    name: str
    in_flight: int


def test_the_fewest_in_flight_wins() -> None:
    servers = [Server("a", 4), Server("b", 1), Server("c", 7)]
    assert least_request(servers) == servers[1]


def test_ties_are_broken_at_random_over_every_tied_candidate() -> None:
    servers = [Server("a", 2), Server("b", 2), Server("c", 3)]
    picks = Counter(least_request(servers).name for _ in range(400))  # type: ignore[union-attr]
    assert set(picks) == {"a", "b"} and min(picks.values()) > 120


def test_the_tie_break_is_injectable_and_nothing_to_pick_is_none() -> None:
    servers = [Server("a", 0), Server("b", 0)]
    assert least_request(servers, lambda tied: tied[-1]) == servers[1]
    assert least_request([]) is None
