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


# The platform operator's key: everything, every organization.
BOOTSTRAP_SCOPES = (Scope.OPERATOR, Scope.ADMIN, Scope.INFERENCE)


async def ensure_bootstrap_key(keys: KeyStore, settings: Settings) -> None:
    """Store ``auth.bootstrap_key`` (operator, org "default") unless it exists.

    A bootstrap key stored by an older release (``admin`` + ``inference``, when ``admin``
    meant everything) is given the ``operator`` scope, so it keeps reaching everything.
    """
    assert settings.auth.bootstrap_key is not None
    key = settings.auth.bootstrap_key.get_secret_value()
    if await _upgrade_existing(keys, key):
        return
    for attempt in range(3):
        try:
            await _store(keys, settings, key)
            return
        except IntegrityError:
            # Another replica starting at the same moment stored the key, or so far only
            # the organization: look again, then retry with that organization.
            if await _upgrade_existing(keys, key):
                return
            if attempt == 2:
                raise


async def _upgrade_existing(keys: KeyStore, key: str) -> bool:
    """Whether the key is stored; if so, with the ``operator`` scope from now on."""
    found = await keys.key_by_hash(hash_key(key))
    if found is None:
        return False
    record = found[0]
    if Scope.OPERATOR not in record.scopes:
        await keys.set_scopes(record.id, [Scope.OPERATOR, *record.scopes])
        logger.info("bootstrap key given the operator scope", extra={"key_id": record.id})
    return True


async def _store(keys: KeyStore, settings: Settings, key: str) -> None:
    org = await keys.org_by_name(DEFAULT_ORG)
    if org is None:
        org = await keys.create_org(DEFAULT_ORG, settings.auth.bootstrap_tier)
    new = NewKey(
        org_id=org.id,
        name="bootstrap",
        scopes=list(BOOTSTRAP_SCOPES),
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
