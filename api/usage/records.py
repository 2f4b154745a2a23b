"""One slim usage record per request."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from api.storage.time import as_utc


@dataclass(frozen=True, slots=True)
class UsageRecord:
    id: str
    request_id: str
    created_at: datetime
    key_id: str
    org_id: str
    model: str
    endpoint: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    latency_ms: float
    cost_nanos: int
    # Settled from its in-flight journal after the process serving it died (see
    # api/usage/interrupted.py): the tokens are those delivered before the crash.
    interrupted: bool = False

    def to_row(self) -> dict[str, Any]:
        """The fields as they go into the database (``created_at`` stays a datetime)."""
        # Every field is a flat value: no need for asdict's recursive deep copy, which was a
        # visible share of a request's CPU time (two records' worth per request).
        return {name: getattr(self, name) for name in _FIELDS}

    def to_json(self) -> dict[str, Any]:
        values = self.to_row()
        values["created_at"] = self.created_at.isoformat()
        return values

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRecord:
        created = as_utc(datetime.fromisoformat(data["created_at"]))
        assert created is not None
        return cls(**{**data, "created_at": created})

    @property
    def day(self) -> str:
        """``YYYY-MM-DD``; ``date().isoformat()`` gives the same as ``strftime("%Y-%m-%d")``
        at an eighth of its cost (the roll-up asks once per record)."""
        return self.created_at.date().isoformat()


_FIELDS = tuple(field.name for field in fields(UsageRecord))
