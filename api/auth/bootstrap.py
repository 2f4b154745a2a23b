"""The operator's first key: from the settings, or a development key kept in a local file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError

from api.auth.identity import Scope
from api.auth.keys import generate_key, hash_key
from api.settings import Settings
from api.storage.keys import KeyStore, NewKey

logger = logging.getLogger(__name__)

DEFAULT_ORG = "default"


async def ensure_bootstrap_key(keys: KeyStore, settings: Settings) -> None:
    """Store ``auth.bootstrap_key`` (admin + inference, org "default") unless it exists."""
    assert settings.auth.bootstrap_key is not None
    key = settings.auth.bootstrap_key.get_secret_value()
    if await keys.key_by_hash(hash_key(key)) is not None:
        return
    for attempt in range(3):
        try:
            await _store(keys, settings, key)
            return
        except IntegrityError:
            # Another replica starting at the same moment stored the key, or so far only
            # the organization: look again, then retry with that organization.
            if await keys.key_by_hash(hash_key(key)) is not None:
                return
            if attempt == 2:
                raise


async def _store(keys: KeyStore, settings: Settings, key: str) -> None:
    org = await keys.org_by_name(DEFAULT_ORG)
    if org is None:
        org = await keys.create_org(DEFAULT_ORG, settings.auth.bootstrap_tier)
    new = NewKey(
        org_id=org.id,
        name="bootstrap",
        scopes=[Scope.ADMIN, Scope.INFERENCE],
        tier=settings.auth.bootstrap_tier,
    )
    _, record = await keys.create_key(new, key=key)
    logger.info("bootstrap key stored", extra={"key_id": record.id})


def dev_key(path: Path) -> SecretStr:
    """The key in ``path``, created (mode 0600) with a fresh random key if missing."""
    if path.exists():
        return SecretStr(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(generate_key() + "\n")
    return SecretStr(path.read_text().strip())
