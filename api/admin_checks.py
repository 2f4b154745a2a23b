"""What an admin request may name: tiers that exist and models this deployment serves.

A key on a tier that does not exist would silently fall back to the default tier's limits,
and an allowlist (or a tier's per-model limits) naming a model that is not served would never
match a request; both are refused when they are written instead. Shared by the admin routes
and the ``python -m api`` admin commands.
"""

from __future__ import annotations

from collections.abc import Iterable

from api.errors import InvalidRequestError
from api.model_names import known_models
from api.settings import Settings
from api.storage.keys import KeyStore


def check_models(names: Iterable[str], settings: Settings, param: str) -> None:
    known = known_models(settings)
    if unknown := sorted(set(names) - known):
        raise InvalidRequestError(
            f"Unknown model {unknown[0]!r} in '{param}'; this deployment serves "
            f"{', '.join(sorted(known))}.",
            param=param,
            code="model_not_found",
        )


async def check_tier(name: str, settings: Settings, store: KeyStore, param: str = "tier") -> None:
    """A tier exists if the settings define it or an admin stored it (``PUT .../tiers``)."""
    if name in settings.limits.tiers or await store.tier_overrides([name]):
        return
    defined = sorted(settings.limits.tiers)
    raise InvalidRequestError(
        f"No tier {name!r}. Define it first (PUT /v1/admin/tiers/{{name}}) or use one of "
        f"{', '.join(defined)}.",
        param=param,
        code="invalid_value",
    )
