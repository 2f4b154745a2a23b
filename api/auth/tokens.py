"""OIDC/JWT bearer tokens: verified against the issuer's keys, mapped to an Identity.

A token is accepted when its signature checks out with a key of the configured JWKS and its
``iss``, ``aud`` and ``exp`` are right (``leeway_s`` of clock skew). Its claims then fill the
same ``Identity`` an API key resolves to: organization, scopes, tier (for both the key and the
organization limits), optionally a model allowlist. The identity's ``key_id`` is derived from
issuer and subject, so per-key limits and usage apply per subject.

Claims grant only what the settings map: scopes are ``default_scopes`` plus what ``scope_map``
gives the values of the scopes claim, and the tier is what ``tier_map`` gives the tier claim,
else the default tier. An issuer (or anyone who can put claims into its tokens) cannot make a
token an operator, an admin or a higher tier by writing it into a claim.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

import jwt

from api.auth.identity import Identity, Scope, parse_scopes
from api.auth.jwks import JwksCache
from api.auth.resolver import IdentityResolver
from api.settings import JwtSettings

logger = logging.getLogger(__name__)

# Ids are stored in 40-character columns (usage records, limit counters).
MAX_ORG_ID = 40


class TokenVerifier:
    """Token -> Identity, or None for any token that is not valid here."""

    def __init__(
        self,
        settings: JwtSettings,
        keys: JwksCache,
        resolver: IdentityResolver,
        default_tier: str,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._resolver = resolver
        self._default_tier = default_tier

    async def identity(self, token: str) -> Identity | None:
        claims = await self._claims(token)
        if claims is None:
            return None
        org_id = claims.get(self._settings.org_claim)
        if not isinstance(org_id, str) or not 0 < len(org_id) <= MAX_ORG_ID:
            logger.info("token without a usable %r claim", self._settings.org_claim)
            return None
        tier_name = self._tier(claims)
        tiers = await self._resolver.tiers(tier_name)
        return Identity(
            key_id=subject_id(str(claims["iss"]), str(claims.get("sub", ""))),
            org_id=org_id,
            key_tier=tiers[tier_name],
            org_tier=tiers[tier_name],
            scopes=self._scopes(claims),
            models=self._models(claims),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )

    async def _claims(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
            key = await self._keys.key(header.get("kid"))
            if key is None:
                logger.info("token signed with an unknown key")
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._settings.algorithms,
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            logger.info("token refused: %s", exc)
            return None
        return claims

    def _scopes(self, claims: dict[str, Any]) -> frozenset[Scope]:
        """``default_scopes`` and what ``scope_map`` maps the claim's values to."""
        names = set(self._settings.default_scopes)
        for value in _claim_values(claims.get(self._settings.scopes_claim)):
            names.update(self._settings.scope_map.get(value, ()))
        return parse_scopes(sorted(names))

    def _tier(self, claims: dict[str, Any]) -> str:
        """The tier ``tier_map`` maps the claim to; an unmapped or missing claim: the default."""
        value = claims.get(self._settings.tier_claim)
        mapped = self._settings.tier_map.get(value) if isinstance(value, str) else None
        if mapped is None and value is not None:
            logger.info("token tier %r is not mapped: using the default tier", value)
        return mapped or self._settings.default_tier or self._default_tier

    def _models(self, claims: dict[str, Any]) -> frozenset[str] | None:
        if self._settings.models_claim is None:
            return None
        raw = claims.get(self._settings.models_claim)
        if raw is None:
            return None
        return frozenset(str(item) for item in raw) if isinstance(raw, list) else frozenset()

    async def close(self) -> None:
        await self._keys.close()


def _claim_values(raw: object) -> list[str]:
    """A claim as a list of names: space-separated, or a JSON list of strings."""
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, str)]
    return []


def looks_like_jwt(credential: str) -> bool:
    """A compact JWS: three base64url parts. API keys (``sk-...``) never have dots."""
    return credential.count(".") == 2 and not credential.startswith("sk-")


def subject_id(issuer: str, subject: str) -> str:
    digest = hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()
    return f"jwt_{digest[:24]}"


def build_verifier(
    settings: JwtSettings, resolver: IdentityResolver, default_tier: str
) -> TokenVerifier:
    keys = JwksCache(url=settings.jwks_url, static=settings.jwks, ttl_s=settings.jwks_cache_ttl_s)
    return TokenVerifier(settings, keys, resolver, default_tier)
