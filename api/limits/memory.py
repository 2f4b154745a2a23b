"""The in-process limiter: the same algorithm as the Lua scripts, for one replica.

Each check runs without awaiting, so on one event loop it is as atomic as the script.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from api.limits.limiter import Counter, Decision, lease_members, settlement_delta
from api.limits.rules import Kind, Plan, Rule


@dataclass
class _State:
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    quotas: dict[str, tuple[int, float]] = field(default_factory=dict)
    leases: dict[str, dict[str, float]] = field(default_factory=dict)
    revoked: dict[str, float] = field(default_factory=dict)


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._state = _State()

    async def admit(self, plan: Plan, lease_id: str, revoked_key: str | None = None) -> Decision:
        now = self._clock()
        if revoked_key and self._state.revoked.get(f"{plan.tag}:{revoked_key}", 0) > now:
            return Decision(allowed=False, revoked=True)
        # One pass to check every rule, a second to take them all (all or nothing): this runs
        # on every request, so it avoids building intermediate lists per rule.
        prefix = plan.tag + ":"
        checked = []
        longest_wait, blocked = 0.0, None
        for rule in plan.rules:
            key = prefix + rule.key
            left = self._available(key, rule, now)
            wait = self._wait(key, rule, left, now)
            if wait > 0:
                if blocked is None:
                    blocked = rule
                longest_wait = max(longest_wait, wait)
            checked.append((key, rule, left))
        allowed = blocked is None
        counters = []
        for key, rule, left in checked:
            if allowed:
                left -= rule.cost
                self._take(key, rule, left, lease_id, now)
            counters.append(Counter(math.floor(max(left, 0)), self._reset(key, rule, left, now)))
        return Decision(
            allowed=allowed,
            counters=tuple(counters),
            retry_after_s=longest_wait,
            blocked=blocked,
        )

    async def settle(self, plan: Plan, lease_id: str, used_tokens: int) -> None:
        now = self._clock()
        for rule in plan.rules:
            key = f"{plan.tag}:{rule.key}"
            delta = settlement_delta(rule, used_tokens)
            if rule.kind is Kind.LEASE:
                leases = self._state.leases.get(key, {})
                for member in lease_members(lease_id, rule.cost):
                    leases.pop(member, None)
            elif delta and rule.kind is Kind.BUCKET:
                tokens = min(rule.limit, self._available(key, rule, now) - delta)
                self._state.buckets[key] = (tokens, now)
            elif delta and key in self._state.quotas:
                used, expires = self._state.quotas[key]
                self._state.quotas[key] = (used + delta, expires)

    async def release_interrupted(self, plan: Plan, lease_id: str, used_tokens: int) -> None:
        # The reservation lived in the memory of the process that crashed: nothing is left.
        return None

    async def revoke(self, tag: str, key_id: str, ttl_s: float) -> None:
        self._state.revoked[f"{tag}:{key_id}"] = self._clock() + ttl_s

    async def close(self) -> None:
        return None

    def _available(self, key: str, rule: Rule, now: float) -> float:
        if rule.kind is Kind.BUCKET:
            tokens, since = self._state.buckets.get(key, (float(rule.limit), now))
            return min(rule.limit, tokens + (now - since) * rule.limit / rule.window_s)
        if rule.kind is Kind.QUOTA:
            used, expires = self._state.quotas.get(key, (0, math.inf))
            return rule.limit - (used if expires > now else 0)
        leases = self._state.leases.setdefault(key, {})
        if len(leases) + rule.cost > rule.limit:
            # Expired leases (requests that never settled) only matter when they would refuse
            # this one; pruning them on every check would cost O(requests in flight).
            for lease, expires in list(leases.items()):
                if expires <= now:
                    del leases[lease]
        return rule.limit - len(leases)

    def _wait(self, key: str, rule: Rule, avail: float, now: float) -> float:
        if rule.cost > rule.limit and rule.kind is Kind.BUCKET:
            return rule.window_s
        if avail >= rule.cost:
            return 0.0
        if rule.kind is Kind.BUCKET:
            return (rule.cost - avail) * rule.window_s / rule.limit
        if rule.kind is Kind.QUOTA:
            return self._quota_expiry(key, rule, now) - now
        return 1.0

    def _take(self, key: str, rule: Rule, left: float, lease_id: str, now: float) -> None:
        if rule.kind is Kind.BUCKET:
            self._state.buckets[key] = (left, now)
        elif rule.kind is Kind.QUOTA:
            self._state.quotas[key] = (rule.limit - int(left), self._quota_expiry(key, rule, now))
        else:
            leases = self._state.leases.setdefault(key, {})
            for member in lease_members(lease_id, rule.cost):
                leases[member] = now + rule.window_s

    def _reset(self, key: str, rule: Rule, left: float, now: float) -> float:
        if rule.kind is Kind.BUCKET:
            return (rule.limit - left) * rule.window_s / rule.limit
        if rule.kind is Kind.QUOTA:
            return max(self._quota_expiry(key, rule, now) - now, 0.0)
        return 0.0

    def _quota_expiry(self, key: str, rule: Rule, now: float) -> float:
        _, expires = self._state.quotas.get(key, (0, math.inf))
        return expires if expires > now and expires != math.inf else now + rule.window_s
