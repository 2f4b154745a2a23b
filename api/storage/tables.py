"""The database schema as SQLAlchemy Core tables (migrations in ``api/storage/migrations``).

Identifiers are short prefixed strings (``org_...``, ``key_...``) so they can be shown to
users and put in logs; the secret part of an API key is never stored, only its SHA-256.
Token counts and costs are integers (cost in nano-dollars) so sums stay exact.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

# Deterministic constraint names: migrations (and SQLite batch mode) need them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tiers = Table(
    "tiers",
    metadata,
    Column("name", String(64), primary_key=True),
    # A serialised TierLimits; overrides the tier of the same name in the settings.
    Column("limits", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("tier", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    # The first characters of the key, enough for a human to recognise it in a listing.
    Column("hint", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("org_id", String(40), ForeignKey("organizations.id"), nullable=False, index=True),
    Column("tier", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("models", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

usage_records = Table(
    "usage_records",
    metadata,
    # Generated when the request finishes: replaying a journal twice inserts nothing twice.
    Column("id", String(32), primary_key=True),
    Column("request_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("org_id", String(40), nullable=False),
    Column("model", String(200), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    # Settled after a crash from what the request had delivered (api/usage/interrupted.py).
    Column("interrupted", Boolean, nullable=False, server_default=false()),
    Index("ix_usage_records_key_created", "key_id", "created_at"),
    Index("ix_usage_records_org_created", "org_id", "created_at"),
)

# One row per (day, key, model): what usage queries read, kept current by the writer.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("key_id", String(40), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    Index("ix_usage_daily_org_day", "org_id", "day"),
)

# Uploaded files (batch input) and the files batches write; the bytes live in a FileStore.
files = Table(
    "files",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    # Where the FileStore keeps the bytes (a relative path or an object key).
    Column("storage_key", String(300), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_files_org_created", "org_id", "created_at"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("input_file_id", String(40), nullable=False),
    Column("completion_window", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("metadata", JSON, nullable=True),
    Column("errors", JSON, nullable=True),
    Column("output_file_id", String(40), nullable=True),
    Column("error_file_id", String(40), nullable=True),
    Column("total", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("in_progress_at", DateTime(timezone=True), nullable=True),
    Column("finalizing_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("failed_at", DateTime(timezone=True), nullable=True),
    Column("expired_at", DateTime(timezone=True), nullable=True),
    Column("cancelling_at", DateTime(timezone=True), nullable=True),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Index("ix_batches_org_created", "org_id", "created_at"),
    Index("ix_batches_status", "status"),
)

# One row per input line: its request, its state and, once run, its output line. A result
# is stored in the same statement that marks the line done, so a resumed batch never reruns
# a finished line and the output file (assembled from these rows) holds each line once.
batch_lines = Table(
    "batch_lines",
    metadata,
    Column("batch_id", String(40), ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
    Column("line_index", Integer, nullable=False),
    Column("custom_id", String(512), nullable=True),
    Column("request", JSON, nullable=True),
    # pending -> running (leased) -> done | failed; malformed lines start as failed.
    Column("status", String(16), nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False),
    # The whole output (or error) line as JSON text.
    Column("result", Text, nullable=True),
    PrimaryKeyConstraint("batch_id", "line_index"),
    Index("ix_batch_lines_batch_status", "batch_id", "status"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("key_id", String(40), nullable=False),
    # Only conversations made for the deprecated /messages routes name a model.
    Column("model", String(200), nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_conversations_org_created", "org_id", "created_at"),
)

# A conversation's items in OpenAI's wire shape (``item``, JSON), numbered per conversation
# (``position``, unique): listed in that order and appended with the next numbers. An item id
# is unique within its conversation; ``role`` (messages only) lets the history and the
# deprecated /messages listing filter without reading the JSON.
conversation_items = Table(
    "conversation_items",
    metadata,
    Column(
        "conversation_id",
        String(40),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("type", String(40), nullable=False),
    Column("role", String(16), nullable=True),
    Column("item", JSON, nullable=False),
    # The token usage of a reply made through the deprecated /messages route.
    Column("usage", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("conversation_id", "id"),
    Index("ix_conversation_items_conv_position", "conversation_id", "position", unique=True),
)
