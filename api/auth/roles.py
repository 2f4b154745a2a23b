"""Who may reach what on the admin API: the platform operator, or an organization's admin.

The ``operator`` scope reaches everything: every organization, tier, key and usage record. The
``admin`` scope manages its own organization only. Another organization's keys, usage or the
organization itself answer 404 exactly like ids that do not exist, so an id does not reveal
whether it exists elsewhere; what only the operator may do (organizations, tiers) answers 403.

A key an admin creates never exceeds what the admin holds: scopes it has itself (never
``operator``), a tier no looser than its organization's, its own model allowlist and its own
expiry. Nor may it revoke a key holding a scope it lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from api.auth.identity import Identity, Scope, effective
from api.errors import NotFoundError, PermissionDeniedError
from api.settings import ModelLimits, TierLimits

# The limits a tier compares on (``None``: no limit), beside its per-model limits.
_TIER_FIELDS = (
    "requests_per_minute",
    "tokens_per_minute",
    "max_concurrent",
    "tokens_per_day",
    "tokens_per_month",
)


def require_operator(identity: Identity, action: str) -> None:
    """403 unless ``identity`` is the platform operator."""
    if not identity.is_operator:
        raise PermissionDeniedError(
            f"{action} needs the '{Scope.OPERATOR}' scope; this key manages its own "
            "organization only."
        )


def org_in_reach(identity: Identity, org_id: str | None, param: str = "org_id") -> str | None:
    """The organization a request may act on: the operator's choice (None: every one), else
    the admin's own; another organization is 404 like one that does not exist."""
    if identity.is_operator:
        return org_id
    if org_id is not None and org_id != identity.org_id:
        raise NotFoundError(f"No organization {org_id!r}.", param=param)
    return identity.org_id


def check_grantable_scopes(identity: Identity, scopes: Sequence[str], verb: str = "grant") -> None:
    """403 for a scope the caller does not hold itself (``operator``: only the operator).

    The same bound keeps an admin from revoking (``verb``) a key above it, such as an
    operator's key stored in the admin's organization.
    """
    held = effective(identity.scopes)
    if beyond := sorted(set(scopes) - held):
        raise PermissionDeniedError(
            f"This key cannot {verb} the '{beyond[0]}' scope: it does not hold it.",
            param="scopes",
        )


def granted_models(identity: Identity, models: Sequence[str] | None) -> list[str] | None:
    """The new key's allowlist: within the caller's own (its own when none is asked for)."""
    if identity.models is None:
        return None if models is None else list(models)
    if models is None:
        return sorted(identity.models)
    if beyond := sorted(set(models) - identity.models):
        raise PermissionDeniedError(
            f"This key cannot grant the model {beyond[0]!r}: its own allowlist lacks it.",
            param="models",
        )
    return list(models)


def granted_expiry(identity: Identity, expires_at: datetime | None) -> datetime | None:
    """A key made by an expiring key expires no later than it."""
    if identity.expires_at is None:
        return expires_at
    if expires_at is None:
        return identity.expires_at
    if expires_at > identity.expires_at:
        raise PermissionDeniedError(
            "This key cannot create a key that outlives it.", param="expires_in_days"
        )
    return expires_at


def tier_within(limits: TierLimits, ceiling: TierLimits) -> bool:
    """Whether every limit of ``limits`` is at most the same limit of ``ceiling``.

    A model's limit under ``ceiling`` is matched by the stricter of the tier's limit for that
    model and its overall limit, since both apply to a request for the model.
    """
    if not all(_at_most(getattr(limits, name), getattr(ceiling, name)) for name in _TIER_FIELDS):
        return False
    for model, cap in ceiling.models.items():
        own = limits.models.get(model, ModelLimits())
        for name in ("requests_per_minute", "tokens_per_minute"):
            strictest = _min(getattr(own, name), getattr(limits, name))
            if not _at_most(strictest, getattr(cap, name)):
                return False
    return True


def _at_most(value: int | None, cap: int | None) -> bool:
    return cap is None or (value is not None and value <= cap)


def _min(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)
