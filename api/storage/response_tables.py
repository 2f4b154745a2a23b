"""The Responses API's tables (beside ``api.storage.tables``, in the same ``metadata``).

Kept in their own module so that the conversations' and the responses' schema changes
(migrations 0005 and 0006) never touch the same file.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from api.storage.tables import metadata

# Responses API objects (``/v1/responses``): the request's echoed parameters, the items that
# went in (``context``: earlier turns and this input) and came out, kept until ``expires_at``.
# A background response is run by the process holding its lease (``lease_owner`` until
# ``lease_expires``, renewed while it runs); one whose lease ran out is ended as failed.
responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("model", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("background", Boolean, nullable=False),
    Column("params", JSON, nullable=False),
    Column("context", JSON, nullable=False),
    # How many of ``context``'s items were this response's own input (the newest ones).
    Column("input_count", Integer, nullable=False),
    Column("output", JSON, nullable=False),
    Column("usage", JSON, nullable=True),
    Column("error", JSON, nullable=True),
    Column("incomplete_details", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires", DateTime(timezone=True), nullable=True),
    Index("ix_responses_org_created", "org_id", "created_at"),
    Index("ix_responses_status_lease", "status", "lease_expires"),
    Index("ix_responses_expires", "expires_at"),
)

# A background response's stream events, numbered by ``sequence_number``: what
# ``GET /v1/responses/{id}?stream=true&starting_after=N`` replays, from any replica.
response_events = Table(
    "response_events",
    metadata,
    Column(
        "response_id", String(64), ForeignKey("responses.id", ondelete="CASCADE"), nullable=False
    ),
    Column("sequence_number", Integer, nullable=False),
    Column("event", Text, nullable=False),
    PrimaryKeyConstraint("response_id", "sequence_number"),
)
