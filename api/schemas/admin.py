"""Bodies of the admin routes (organizations, keys, tiers)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas.common import LenientModel

# ``admin``: its own organization; ``operator``: the platform (see api/auth/roles.py).
ScopeName = Literal["inference", "admin", "metrics", "operator"]


class CreateOrganization(LenientModel):
    name: str = Field(min_length=1, max_length=200)
    # None: the settings' default tier. A named tier must exist.
    tier: str | None = Field(default=None, min_length=1, max_length=64)


class CreateKey(LenientModel):
    """A key for ``org_id`` (default: the caller's); its tier defaults to the organization's."""

    org_id: str | None = Field(default=None, min_length=1, max_length=40)
    name: str = Field(default="", max_length=200)
    scopes: list[ScopeName] = Field(default_factory=lambda: list[ScopeName](["inference"]))
    tier: str | None = Field(default=None, min_length=1, max_length=64)
    # An allowlist of served model names (ids or aliases); None: every model.
    models: list[str] | None = None
    # At most ~100 years: later dates overflow datetime arithmetic.
    expires_in_days: float | None = Field(default=None, gt=0, le=36_500)
