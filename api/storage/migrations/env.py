"""Alembic environment: always given a live connection by ``api.storage.migrate``."""

from __future__ import annotations

from alembic import context

from api.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `python -m api db upgrade`")
# Batch mode rewrites tables on SQLite, which cannot ALTER most things in place.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
