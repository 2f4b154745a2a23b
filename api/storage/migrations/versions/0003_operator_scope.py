"""The ``operator`` scope: ``admin`` keys now manage their own organization only.

Before this revision every ``admin`` key reached every organization. Keys of the platform's own
organization ("default", where the bootstrap key lives and the first admin was made) keep that
reach: they are given ``operator``. ``admin`` keys of any other organization become that
organization's admins. The bootstrap key is given ``operator`` at start-up wherever it is.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PLATFORM_ORG = "default"

_keys = sa.table(
    "api_keys",
    sa.column("id", sa.String),
    sa.column("org_id", sa.String),
    sa.column("scopes", sa.JSON),
)
_orgs = sa.table("organizations", sa.column("id", sa.String), sa.column("name", sa.String))


def upgrade() -> None:
    platform = sa.select(_orgs.c.id).where(_orgs.c.name == PLATFORM_ORG)
    for key_id, scopes in _rows(
        sa.select(_keys.c.id, _keys.c.scopes).where(_keys.c.org_id.in_(platform))
    ):
        if "admin" in scopes and "operator" not in scopes:
            _set(key_id, ["operator", *scopes])


def downgrade() -> None:
    for key_id, scopes in _rows(sa.select(_keys.c.id, _keys.c.scopes)):
        if "operator" in scopes:
            kept = [scope for scope in scopes if scope != "operator"]
            _set(key_id, kept if "admin" in kept else ["admin", *kept])


def _rows(query: Any) -> list[tuple[str, list[str]]]:
    # JSON columns compare differently on SQLite and PostgreSQL: filter in Python.
    return [(row.id, list(row.scopes or [])) for row in op.get_bind().execute(query)]


def _set(key_id: str, scopes: list[str]) -> None:
    op.get_bind().execute(sa.update(_keys).where(_keys.c.id == key_id).values(scopes=scopes))
