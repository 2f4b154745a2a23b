"""The signing keys of a token issuer (a JSON Web Key Set), fetched and cached.

The set is fetched with httpx and reused for ``jwks_cache_ttl_s``. A token signed with a key
the cache does not know (the issuer rotated its keys) refetches the set at once, but at most
every ``MIN_REFETCH_S`` seconds, so tokens with made-up ``kid`` values cannot flood the
issuer. When a refetch fails the last known keys keep serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from api.errors import BackendUnavailableError

logger = logging.getLogger(__name__)

MIN_REFETCH_S = 10.0


class JwksCache:
    """Keys by ``kid``: a static set, or one fetched from ``url`` and refreshed."""

    def __init__(
        self,
        *,
        url: str | None = None,
        static: dict[str, Any] | None = None,
        ttl_s: float = 300.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._ttl_s = ttl_s
        self._clock = clock
        self._client = client if client is not None or url is None else httpx.AsyncClient()
        self._keys: dict[str, jwt.PyJWK] = parse_jwks(static) if static is not None else {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key with this ``kid`` (the only key when the token names none), or None."""
        if self._url is not None and self._stale(kid):
            async with self._lock:
                if self._stale(kid):
                    await self._refresh()
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _stale(self, kid: str | None) -> bool:
        if self._fetched_at is None:
            return True
        age = self._clock() - self._fetched_at
        unknown = kid is not None and kid not in self._keys
        return age >= self._ttl_s or (unknown and age >= MIN_REFETCH_S)

    async def _refresh(self) -> None:
        assert self._url is not None and self._client is not None
        self.fetches += 1
        try:
            response = await self._client.get(self._url, timeout=5.0)
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            logger.warning("fetching the JWKS failed: %s", exc)
            if not self._keys:
                raise BackendUnavailableError("The token issuer's keys are unavailable.") from None
            # Keep serving the known keys; try again after the refetch interval.
            self._fetched_at = self._clock() - self._ttl_s + MIN_REFETCH_S
            return
        self._keys = keys
        self._fetched_at = self._clock()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """Signing keys of a JWKS document by ``kid``; keys of unusable types are skipped."""
    if not isinstance(document, dict):
        raise ValueError("a JWKS document is a JSON object")
    key_set = jwt.PyJWKSet.from_dict(document)
    return {
        str(key.key_id or ""): key for key in key_set.keys if key.public_key_use in (None, "sig")
    }
