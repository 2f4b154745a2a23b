"""The gateway's long-lived objects (database, key resolver, limiter, usage writer, metrics).

Built on start-up by ``open_gateway`` and closed on shutdown; the usage writer flushes
everything it has on close, so a graceful stop loses nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope

from api.auth.bootstrap import ensure_bootstrap_key
from api.auth.resolver import IdentityResolver
from api.auth.tokens import TokenVerifier, build_verifier
from api.limits.limiter import Limiter
from api.limits.memory import MemoryLimiter
from api.limits.redis import RedisLimiter
from api.metrics import Metrics
from api.services import Services
from api.settings import Settings
from api.storage import migrate
from api.storage.engine import create_engine
from api.storage.keys import KeyStore
from api.storage.usage import UsageStore
from api.usage.recorder import UsageRecorder

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Gateway:
    settings: Settings
    engine: AsyncEngine
    keys: KeyStore
    resolver: IdentityResolver
    limiter: Limiter
    usage: UsageStore
    recorder: UsageRecorder
    metrics: Metrics
    # OIDC/JWT bearer tokens beside API keys (``auth.jwt``), None when not configured.
    tokens: TokenVerifier | None = None

    async def revoke(self, key_id: str, org_id: str) -> None:
        """Revocation on every replica: the local cache now, the others through the limiter."""
        self.resolver.forget(key_id)
        await self.limiter.revoke(f"o:{org_id}", key_id, revocation_ttl_s(self.settings))

    async def close(self) -> None:
        try:
            await self.recorder.close()
        finally:
            await self.limiter.close()
            await self.engine.dispose()
            if self.tokens is not None:
                await self.tokens.close()


def revocation_ttl_s(settings: Settings) -> float:
    # Longer than any replica may keep the key in its cache; after that the database says so.
    return settings.auth.cache_ttl_s + 60.0


def build_limiter(settings: Settings) -> Limiter:
    if settings.redis_url is None:
        return MemoryLimiter()
    client = Redis.from_url(settings.redis_url.get_secret_value())
    return RedisLimiter(client, settings.limits.redis_prefix)


async def open_gateway(settings: Settings) -> Gateway:
    engine = create_engine(settings.database.url, echo=settings.database.echo)
    if settings.database.migrate_on_start:
        await migrate.upgrade(engine)
    keys = KeyStore(engine)
    if settings.auth.bootstrap_key is not None:
        await ensure_bootstrap_key(keys, settings)
    usage = UsageStore(engine)
    recorder = UsageRecorder(
        usage,
        settings.usage.journal_dir,
        settings.usage.flush_interval_s,
        settings.usage.batch_size,
    )
    await recorder.start()
    resolver = IdentityResolver(keys, settings.limits, settings.auth.cache_ttl_s)
    jwt_settings = settings.auth.jwt
    return Gateway(
        settings=settings,
        engine=engine,
        keys=keys,
        resolver=resolver,
        limiter=build_limiter(settings),
        usage=usage,
        recorder=recorder,
        metrics=Metrics(),
        tokens=None
        if jwt_settings is None
        else build_verifier(jwt_settings, resolver, settings.limits.default_tier),
    )


def gateway_of(scope: Scope) -> Gateway:
    """The gateway of the app serving ``scope`` (set on start-up, before any request)."""
    gateway: Gateway = scope["app"].state.gateway
    return gateway


def services_in(scope: Scope) -> Services:
    services: Services = scope["app"].state.services
    return services
