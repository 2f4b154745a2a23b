"""Persistence: SQLAlchemy 2 (async) tables, engine, migrations and repositories."""
