"""Resolving a presented key to an Identity, with a short-lived cache.

Only SHA-256 hashes are looked up or cached. Unknown keys are cached too (bounded), so a flood
of made-up keys costs no database round trips; a new key is never in that cache because it is
new. A revoked key leaves the cache of the replica that revoked it at once; other replicas see
the revocation marker that the Redis limiter checks on every admission (api/limits/redis.py),
or, without Redis, when their cache entry expires (``auth.cache_ttl_s``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from api.auth.identity import Identity, parse_scopes
from api.auth.keys import hash_key
from api.settings import LimitSettings, TierLimits
from api.storage.keys import KeyRecord, KeyStore

logger = logging.getLogger(__name__)

_MAX_ENTRIES = 10_000


class IdentityResolver:
    """Key -> Identity (or None), cached for ``ttl_s`` seconds."""

    def __init__(
        self,
        store: KeyStore,
        limits: LimitSettings,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._limits = limits
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Identity | None]] = OrderedDict()
        # One database load per key at a time: when a busy key's entry expires, every request
        # in flight with that key would otherwise run the same queries at once.
        self._loading: dict[str, asyncio.Future[Identity | None]] = {}

    async def resolve(self, key: str) -> Identity | None:
        key_hash = hash_key(key)
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        loading = self._loading.get(key_hash)
        if loading is None:
            loading = asyncio.ensure_future(self._load_and_cache(key_hash))
            self._loading[key_hash] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key_hash, None))
        # Shielded: a caller that is cancelled must not cancel the load the others wait for.
        return await asyncio.shield(loading)

    async def _load_and_cache(self, key_hash: str) -> Identity | None:
        identity = await self._load(key_hash)
        self._cache[key_hash] = (self._clock() + self._ttl_s, identity)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > _MAX_ENTRIES:
            self._cache.popitem(last=False)
        return identity

    def forget(self, key_id: str) -> None:
        """Drop cached identities of ``key_id`` (after a revocation)."""
        stale = [h for h, (_, ident) in self._cache.items() if ident and ident.key_id == key_id]
        for key_hash in stale:
            del self._cache[key_hash]

    async def _load(self, key_hash: str) -> Identity | None:
        found = await self._store.key_by_hash(key_hash)
        if found is None:
            return None
        record, stored_hash = found
        if not secrets.compare_digest(stored_hash.encode(), key_hash.encode()):
            return None
        if record.revoked_at is not None:
            return None
        org = await self._store.org(record.org_id)
        org_tier = org.tier if org is not None else self._limits.default_tier
        return await self._identity(record, org_tier)

    async def _identity(self, record: KeyRecord, org_tier: str) -> Identity:
        tiers = await self.tiers(record.tier, org_tier)
        return Identity(
            key_id=record.id,
            org_id=record.org_id,
            key_tier=tiers[record.tier],
            org_tier=tiers[org_tier],
            scopes=parse_scopes(record.scopes),
            models=None if record.models is None else frozenset(record.models),
            expires_at=record.expires_at,
        )

    async def tiers(self, *names: str) -> dict[str, TierLimits]:
        """Tier limits by name: the database's override, else the settings' tier."""
        overrides = await self._store.tier_overrides(names)
        resolved: dict[str, TierLimits] = {}
        for name in names:
            if name in overrides:
                resolved[name] = TierLimits.model_validate(overrides[name])
            elif name in self._limits.tiers:
                resolved[name] = self._limits.tiers[name]
            else:
                logger.warning("unknown tier %r: using %r", name, self._limits.default_tier)
                resolved[name] = self._limits.tiers[self._limits.default_tier]
        return resolved
