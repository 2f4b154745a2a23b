"""The limiter interface shared by the in-memory and the Redis implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from api.limits.rules import Kind, Measure, Plan, Rule


@dataclass(frozen=True, slots=True)
class Counter:
    """One rule's state after the check: what is left and when it is whole again."""

    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    counters: tuple[Counter, ...] = ()
    retry_after_s: float = 0.0
    blocked: Rule | None = None
    revoked: bool = False


class Limiter(Protocol):
    """Checks and takes every rule of a plan atomically (all or nothing)."""

    async def admit(self, plan: Plan, lease_id: str, revoked_key: str | None = None) -> Decision:
        """Take the plan's costs; ``revoked_key`` names a key whose revocation denies it."""
        ...

    async def settle(self, plan: Plan, lease_id: str, used_tokens: int) -> None:
        """Replace reserved tokens by ``used_tokens`` and release the concurrency lease."""
        ...

    async def release_interrupted(self, plan: Plan, lease_id: str, used_tokens: int) -> None:
        """``settle`` for a request a crashed process left in flight, at most once per lease
        however often it is replayed (a no-op where the counters died with that process)."""
        ...

    async def revoke(self, tag: str, key_id: str, ttl_s: float) -> None:
        """Deny ``key_id`` on every replica for ``ttl_s`` (longer than any identity cache)."""
        ...

    async def close(self) -> None: ...


def settlement_delta(rule: Rule, used_tokens: int) -> int | None:
    """How much to add to a rule once the real usage is known (None: nothing to do)."""
    if rule.measure is Measure.TOKENS and rule.kind in (Kind.BUCKET, Kind.QUOTA):
        return used_tokens - rule.cost
    return None


def lease_members(lease_id: str, cost: int) -> list[str]:
    """The concurrency slots one request holds: its lease id, then ``{id}#2`` .. ``{id}#cost``
    (one per choice; the Lua scripts name them alike)."""
    return [lease_id, *(f"{lease_id}#{j}" for j in range(2, cost + 1))]
