from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from api.auth.keys import hash_key
from api.auth.resolver import IdentityResolver
from api.settings import LimitSettings
from api.storage.keys import KeyRecord

KEY = "sk-test-resolver"


class SlowKeyStore:
    """The three lookups a load makes, each taking a moment; counts how often it was asked."""

    def __init__(self) -> None:
        self.loads = 0
        self.record = KeyRecord(
            "key_1", "sk-...ver", "k", "org_1", "default", ("inference",), None, datetime.now(UTC)
        )

    async def key_by_hash(self, key_hash: str) -> tuple[KeyRecord, str] | None:
        self.loads += 1
        await asyncio.sleep(0.05)
        return (self.record, hash_key(KEY)) if key_hash == hash_key(KEY) else None

    async def org(self, org_id: str) -> None:
        return None

    async def tier_overrides(self, names: Any) -> dict[str, Any]:
        return {}


def resolver(store: SlowKeyStore, clock: list[float]) -> IdentityResolver:
    return IdentityResolver(store, LimitSettings(), ttl_s=5.0, clock=lambda: clock[0])  # type: ignore[arg-type]


async def test_requests_arriving_together_share_one_load() -> None:
    store, clock = SlowKeyStore(), [0.0]
    resolve = resolver(store, clock).resolve
    identities = await asyncio.gather(*(resolve(KEY) for _ in range(20)))
    assert store.loads == 1
    assert {identity.key_id for identity in identities if identity} == {"key_1"}
    await resolve(KEY)  # cached
    assert store.loads == 1
    clock[0] = 6.0  # expired: loaded again, once
    await asyncio.gather(*(resolve(KEY) for _ in range(5)))
    assert store.loads == 2


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    store = SlowKeyStore()
    resolve = resolver(store, [0.0]).resolve
    first = asyncio.ensure_future(resolve(KEY))
    second = asyncio.ensure_future(resolve(KEY))
    await asyncio.sleep(0.01)
    first.cancel()
    identity = await second
    assert identity is not None and identity.key_id == "key_1"
    assert first.cancelled() and store.loads == 1


async def test_unknown_keys_resolve_to_none_and_are_cached() -> None:
    store = SlowKeyStore()
    resolve = resolver(store, [0.0]).resolve
    assert await resolve("sk-unknown") is None
    assert await resolve("sk-unknown") is None
    assert store.loads == 1
