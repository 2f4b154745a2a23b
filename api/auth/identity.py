"""Who is calling: the identity a key (or, later, a token) resolves to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from starlette.requests import HTTPConnection

from api.settings import TierLimits


class Scope(StrEnum):
    """What a key may do; ``admin`` may do everything."""

    INFERENCE = "inference"
    ADMIN = "admin"
    METRICS = "metrics"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller with the limits of its key and of its organization."""

    key_id: str
    org_id: str
    key_tier: TierLimits
    org_tier: TierLimits
    scopes: frozenset[Scope]
    models: frozenset[str] | None = None
    expires_at: datetime | None = None

    def has_scope(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    def allows_model(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at


def identity_of(connection: HTTPConnection) -> Identity:
    """The identity the auth middleware attached (every route but health has one)."""
    identity: Identity = connection.state.identity
    return identity
