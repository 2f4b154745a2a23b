"""Organizations, API keys and tiers in the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth.keys import generate_key, hash_key, hint_of, new_id
from api.storage.tables import api_keys, organizations, tiers
from api.storage.time import as_utc, utcnow


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    tier: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key: everything but the key itself."""

    id: str
    hint: str
    name: str
    org_id: str
    tier: str
    scopes: tuple[str, ...]
    models: tuple[str, ...] | None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "api_key",
            "hint": self.hint,
            "name": self.name,
            "org_id": self.org_id,
            "tier": self.tier,
            "scopes": list(self.scopes),
            "models": None if self.models is None else list(self.models),
            "created_at": int(self.created_at.timestamp()),
            "expires_at": _epoch(self.expires_at),
            "revoked_at": _epoch(self.revoked_at),
        }


@dataclass(frozen=True, slots=True)
class NewKey:
    """What ``create_key`` needs; the tier defaults to the organization's."""

    org_id: str
    name: str
    scopes: Sequence[str]
    tier: str | None = None
    models: Sequence[str] | None = None
    expires_at: datetime | None = None


class KeyStore:
    """Repository of organizations, keys and tier overrides."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_org(self, name: str, tier: str) -> Organization:
        org = Organization(id=new_id("org"), name=name, tier=tier, created_at=utcnow())
        async with self._engine.begin() as conn:
            await conn.execute(organizations.insert().values(**_fields(org)))
        return org

    async def org_by_name(self, name: str) -> Organization | None:
        return await self._one_org(organizations.c.name == name)

    async def org(self, org_id: str) -> Organization | None:
        return await self._one_org(organizations.c.id == org_id)

    async def list_orgs(self) -> list[Organization]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(organizations).order_by(organizations.c.created_at))
            return [_org(row) for row in rows]

    async def create_key(self, new: NewKey, key: str | None = None) -> tuple[str, KeyRecord]:
        """Store a new key (generated unless given) and return it with its record, once."""
        org = await self.org(new.org_id)
        if org is None:
            raise LookupError(f"no organization {new.org_id!r}")
        key = key or generate_key()
        record = KeyRecord(
            id=new_id("key"),
            hint=hint_of(key),
            name=new.name,
            org_id=org.id,
            tier=new.tier or org.tier,
            scopes=tuple(new.scopes),
            models=None if new.models is None else tuple(new.models),
            created_at=utcnow(),
            expires_at=new.expires_at,
        )
        values = {**_fields(record), "scopes": list(record.scopes), "key_hash": hash_key(key)}
        values["models"] = None if record.models is None else list(record.models)
        async with self._engine.begin() as conn:
            await conn.execute(api_keys.insert().values(**values))
        return key, record

    async def key_by_hash(self, key_hash: str) -> tuple[KeyRecord, str] | None:
        """The record and stored hash for ``key_hash`` (revoked ones included)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))
            ).first()
        return None if row is None else (_key(row), str(row.key_hash))

    async def list_keys(self, org_id: str | None = None) -> list[KeyRecord]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if org_id is not None:
            query = query.where(api_keys.c.org_id == org_id)
        async with self._engine.connect() as conn:
            return [_key(row) for row in await conn.execute(query)]

    async def key(self, key_id: str, org_id: str | None = None) -> KeyRecord | None:
        """The key ``key_id`` (of ``org_id`` when given), revoked ones included."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(*_key_of(key_id, org_id)))).first()
        return None if row is None else _key(row)

    async def revoke(self, key_id: str, org_id: str | None = None) -> KeyRecord | None:
        """Mark the key revoked (idempotent); None if there is no such key (in ``org_id``)."""
        found = _key_of(key_id, org_id)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(api_keys)
                .where(*found, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            row = (await conn.execute(select(api_keys).where(*found))).first()
        return None if row is None else _key(row)

    async def set_scopes(self, key_id: str, scopes: Sequence[str]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(scopes=list(scopes))
            )

    async def tier_overrides(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(tiers).where(tiers.c.name.in_(list(names))))
            return {row.name: dict(row.limits) for row in rows}

    async def set_tier(self, name: str, limits: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(tiers.delete().where(tiers.c.name == name))
            await conn.execute(tiers.insert().values(name=name, limits=limits, updated_at=utcnow()))

    async def _one_org(self, condition: Any) -> Organization | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(organizations).where(condition))).first()
        return None if row is None else _org(row)


def _key_of(key_id: str, org_id: str | None) -> list[Any]:
    conditions = [api_keys.c.id == key_id]
    if org_id is not None:
        conditions.append(api_keys.c.org_id == org_id)
    return conditions


def _fields(record: Organization | KeyRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _org(row: Row[Any]) -> Organization:
    return Organization(
        id=row.id, name=row.name, tier=row.tier, created_at=as_utc(row.created_at) or utcnow()
    )


def _key(row: Row[Any]) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        hint=row.hint,
        name=row.name,
        org_id=row.org_id,
        tier=row.tier,
        scopes=tuple(row.scopes),
        models=None if row.models is None else tuple(row.models),
        created_at=as_utc(row.created_at) or utcnow(),
        expires_at=as_utc(row.expires_at),
        revoked_at=as_utc(row.revoked_at),
    )


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
