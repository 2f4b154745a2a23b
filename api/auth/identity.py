"""Who is calling: the identity a key or a token resolves to, and what its scopes grant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from starlette.requests import HTTPConnection

from api.settings import TierLimits


class Scope(StrEnum):
    """What a key may do.

    ``admin`` manages its own organization (its keys and usage) and may also run inference;
    ``operator`` is the platform's: every organization, tier, key and usage, and ``/metrics``.
    """

    INFERENCE = "inference"
    ADMIN = "admin"
    METRICS = "metrics"
    OPERATOR = "operator"


# What each scope grants beyond itself.
IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.INFERENCE: frozenset(),
    Scope.METRICS: frozenset(),
    Scope.ADMIN: frozenset({Scope.INFERENCE}),
    Scope.OPERATOR: frozenset(Scope),
}


def effective(scopes: frozenset[Scope]) -> frozenset[Scope]:
    """The scopes ``scopes`` grant, the implied ones included."""
    return scopes.union(*(IMPLIED[scope] for scope in scopes))


def parse_scopes(names: object) -> frozenset[Scope]:
    """Known scope names of a stored list; unknown ones (a newer release's) grant nothing."""
    known = set(Scope.__members__.values())
    if not isinstance(names, list | tuple):
        return frozenset()
    return frozenset(Scope(name) for name in names if name in known)


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
        return scope in effective(self.scopes)

    @property
    def is_operator(self) -> bool:
        """The platform operator: not confined to its own organization."""
        return Scope.OPERATOR in self.scopes

    def allows_model(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at


def identity_of(connection: HTTPConnection) -> Identity:
    """The identity the auth middleware attached (every route but health has one)."""
    identity: Identity = connection.state.identity
    return identity
