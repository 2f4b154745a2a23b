"""Admin commands: ``python -m api db|orgs|keys|tiers|batches ...`` (settings as for ``serve``).

They act as the platform operator: whoever runs them has the database itself.

A new key is written to stdout once and never again; listings show its hint only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from api.admin_checks import check_models, check_tier
from api.auth.identity import Scope
from api.batches import cli as batch_cli
from api.errors import InvalidRequestError
from api.gateway import build_limiter, revocation_ttl_s
from api.settings import Settings, TierLimits
from api.storage import migrate
from api.storage.engine import create_engine
from api.storage.keys import KeyStore, NewKey
from api.storage.time import utcnow

COMMANDS = ("db", "orgs", "keys", "tiers", "batches")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    root.add_argument("--config", help="TOML settings file (same as API_CONFIG_FILE)")
    groups = root.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="migrate the schema to the newest revision")
    orgs = groups.add_parser("orgs").add_subparsers(dest="action", required=True)
    create_org = orgs.add_parser("create")
    create_org.add_argument("name")
    create_org.add_argument("--tier", help="defaults to the settings' default tier")
    orgs.add_parser("list")
    keys = groups.add_parser("keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="print a new key (shown this once)")
    create.add_argument("--org", required=True, help="organization name or id")
    create.add_argument("--name", default="")
    create.add_argument(
        "--scopes",
        default=Scope.INFERENCE.value,
        help="comma-separated: inference, metrics, admin (its organization's keys and usage), "
        "operator (the platform: every organization, tier and key)",
    )
    create.add_argument("--tier", help="defaults to the organization's tier")
    create.add_argument("--models", help="comma-separated allowlist (default: all)")
    create.add_argument("--expires-in-days", type=float)
    listing = keys.add_parser("list")
    listing.add_argument("--org", help="organization name or id")
    revoke = keys.add_parser("revoke")
    revoke.add_argument("key_id")
    tiers = groups.add_parser("tiers").add_subparsers(dest="action", required=True)
    set_tier = tiers.add_parser("set", help="e.g. set gold '{\"requests_per_minute\": 600}'")
    set_tier.add_argument("name")
    set_tier.add_argument("limits", help="TierLimits as JSON")
    batch_cli.add_parser(groups)
    return root


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    settings = Settings(config_file=args.config) if args.config else Settings()
    return asyncio.run(run(args, settings))


async def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.database.url)
    try:
        await migrate.upgrade(engine)
        if args.group == "db":
            _out({"revision": await migrate.current_revision(engine)})
            return 0
        if args.group == "batches":
            return await batch_cli.run(args, settings)
        store = KeyStore(engine)
        handler = {"orgs": _orgs, "keys": _keys, "tiers": _tiers}[args.group]
        return await handler(args, store, settings)
    except InvalidRequestError as exc:
        sys.stderr.write(f"{exc.message}\n")
        return 2
    finally:
        await engine.dispose()


async def _orgs(args: argparse.Namespace, store: KeyStore, settings: Settings) -> int:
    if args.action == "create":
        tier = args.tier or settings.limits.default_tier
        await check_tier(tier, settings, store)
        org = await store.create_org(args.name, tier)
        _out({"id": org.id, "name": org.name, "tier": org.tier})
    else:
        _out([{"id": o.id, "name": o.name, "tier": o.tier} for o in await store.list_orgs()])
    return 0


async def _keys(args: argparse.Namespace, store: KeyStore, settings: Settings) -> int:
    if args.action == "revoke":
        return await _revoke(args.key_id, store, settings)
    org_id = None
    if args.org:
        org = await store.org_by_name(args.org) or await store.org(args.org)
        if org is None:
            sys.stderr.write(f"no organization {args.org!r}\n")
            return 1
        org_id = org.id
    if args.action == "list":
        _out([record.public() for record in await store.list_keys(org_id)])
        return 0
    assert org_id is not None
    models = None if args.models is None else [m.strip() for m in args.models.split(",")]
    if args.tier is not None:
        await check_tier(args.tier, settings, store)
    if models is not None:
        check_models(models, settings, "models")
    expires = None if args.expires_in_days is None else utcnow() + timedelta(args.expires_in_days)
    new = NewKey(
        org_id=org_id,
        name=args.name,
        scopes=_scopes(args.scopes),
        tier=args.tier,
        models=models,
        expires_at=expires,
    )
    key, record = await store.create_key(new)
    _out({**record.public(), "key": key})
    return 0


async def _revoke(key_id: str, store: KeyStore, settings: Settings) -> int:
    record = await store.revoke(key_id)
    if record is None:
        sys.stderr.write(f"no API key {key_id!r}\n")
        return 1
    # With Redis every replica refuses the key from its next request on; without it, a
    # running single-process API notices within auth.cache_ttl_s.
    limiter = build_limiter(settings)
    try:
        await limiter.revoke(f"o:{record.org_id}", record.id, revocation_ttl_s(settings))
    finally:
        await limiter.close()
    _out(record.public())
    return 0


async def _tiers(args: argparse.Namespace, store: KeyStore, settings: Settings) -> int:
    limits = TierLimits.model_validate_json(args.limits)
    check_models(limits.models, settings, "models")
    await store.set_tier(args.name, limits.model_dump())
    _out({"name": args.name, **limits.model_dump()})
    return 0


def _scopes(names: str) -> list[Scope]:
    known = {scope.value for scope in Scope}
    scopes = [name.strip() for name in names.split(",")]
    if unknown := [name for name in scopes if name not in known]:
        raise InvalidRequestError(
            f"Unknown scope {unknown[0]!r}; scopes are {', '.join(sorted(known))}.",
            param="scopes",
        )
    return [Scope(name) for name in scopes]


def _out(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
