"""The Redis limiter: exact counts shared by every replica (one Lua script per check).

All keys of one check carry the plan's hash tag (``gw:{o:org_...}:k:key_...:rpm``), so the
script touches one slot and runs unchanged on Redis Cluster.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from api.limits.limiter import Counter, Decision, settlement_delta
from api.limits.lua import ADMIT, SETTLE, SETTLE_ONCE
from api.limits.rules import Plan, Rule

# How long the marker of a reservation released after a crash is kept.
RELEASE_MARKER_TTL_S = 7 * 86400.0


class RedisLimiter:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)
        self._settle_once = client.register_script(SETTLE_ONCE)

    def key(self, plan: Plan, name: str) -> str:
        return f"{self._prefix}:{{{plan.tag}}}:{name}"

    async def admit(self, plan: Plan, lease_id: str, revoked_key: str | None = None) -> Decision:
        keys = [self.key(plan, f"revoked:{revoked_key or '-'}")]
        keys += [self.key(plan, rule.key) for rule in plan.rules]
        args: list[Any] = [lease_id]
        for rule in plan.rules:
            args += [rule.kind.value, rule.limit, rule.cost, _ms(rule.window_s)]
        reply = [int(value) for value in await self._admit(keys=keys, args=args)]
        return decision_from(plan.rules, reply)

    async def settle(self, plan: Plan, lease_id: str, used_tokens: int) -> None:
        keys, args = self._settlement(plan, used_tokens)
        if keys:
            await self._settle(keys=keys, args=[lease_id, *args])

    async def release_interrupted(self, plan: Plan, lease_id: str, used_tokens: int) -> None:
        keys, args = self._settlement(plan, used_tokens)
        if keys:
            # The marker makes a second replay of the same lease (a crash during the first)
            # a no-op; it outlives any replay that could still be running.
            marker = self.key(plan, f"released:{lease_id}")
            ttl = _ms(RELEASE_MARKER_TTL_S)
            await self._settle_once(keys=[marker, *keys], args=[lease_id, ttl, *args])

    def _settlement(self, plan: Plan, used_tokens: int) -> tuple[list[str], list[Any]]:
        """The keys and per-rule arguments (kind, limit, delta, window) of a settlement."""
        keys: list[str] = []
        args: list[Any] = []
        for rule in plan.rules:
            delta = settlement_delta(rule, used_tokens)
            if rule.kind.value == "lease":
                # A lease's argument is its cost: the members to release (api/limits/lua.py).
                keys.append(self.key(plan, rule.key))
                args += [rule.kind.value, rule.limit, rule.cost, _ms(rule.window_s)]
            elif delta:
                keys.append(self.key(plan, rule.key))
                args += [rule.kind.value, rule.limit, delta, _ms(rule.window_s)]
        return keys, args

    async def revoke(self, tag: str, key_id: str, ttl_s: float) -> None:
        await self._client.set(self.key(Plan(tag=tag), f"revoked:{key_id}"), 1, px=_ms(ttl_s))

    async def close(self) -> None:
        await self._client.aclose()


def decision_from(rules: tuple[Rule, ...], reply: list[int]) -> Decision:
    """Decode the script's flat reply (status, retry ms, blocked index, then pairs)."""
    status, retry_ms, blocked = reply[0], reply[1], reply[2]
    if status == -1:
        return Decision(allowed=False, revoked=True)
    pairs = reply[3:]
    counters = tuple(
        Counter(remaining=pairs[2 * i], reset_s=pairs[2 * i + 1] / 1000) for i in range(len(rules))
    )
    return Decision(
        allowed=status == 1,
        counters=counters,
        retry_after_s=retry_ms / 1000,
        blocked=rules[blocked - 1] if blocked else None,
    )


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
