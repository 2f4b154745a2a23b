"""Settling the requests a crashed process left in flight, from what they had delivered.

At admission a request journals what its usage record and its limiter reservation need
(``admission``); while it runs its slot counts the tokens delivered (``api.usage.inflight``).
After a crash each request still in a slot becomes one usage record, marked ``interrupted``,
with the tokens delivered to its client, under the id its normal record would have had: the
store skips ids it has, so a request is never recorded twice, whether it finished before the
crash or is replayed again. A request whose slot still held its reservation has it settled
against the same tokens (the Redis limiter does that once per lease, see ``release_once``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from api.limits.rules import Kind, Measure, Plan, Rule
from api.settings import ModelPrice
from api.storage.time import as_utc
from api.usage.inflight import SlotState, SlotView
from api.usage.pricing import cost_nanos
from api.usage.records import UsageRecord

logger = logging.getLogger(__name__)

# What an admission journals about its record (all strings; ``created_at`` in ISO format).
RECORD_FIELDS = ("id", "request_id", "created_at", "key_id", "org_id", "model", "endpoint")
# What a client saw when the process died before the response started.
NO_RESPONSE_STATUS = 500


@dataclass(frozen=True, slots=True)
class Release:
    """A reservation to settle: the request's plan and lease, and the tokens it used."""

    plan: Plan
    lease_id: str
    used_tokens: int


def admission(fields: Mapping[str, str], plan: Plan, lease_id: str) -> bytes:
    """The JSON a slot keeps: the record's identity ``fields`` (``RECORD_FIELDS``), the plan
    and the lease."""
    rules = [
        [rule.key, rule.kind.value, rule.measure.value, rule.limit, rule.cost, rule.window_s]
        for rule in plan.rules
    ]
    return orjson.dumps({**fields, "lease_id": lease_id, "tag": plan.tag, "rules": rules})


def settle(
    slots: list[SlotView], prices: Mapping[str, ModelPrice]
) -> tuple[list[UsageRecord], list[Release]]:
    """The records of ``slots`` and the reservations still to settle."""
    records, releases = [], []
    for slot in slots:
        try:
            data: dict[str, Any] = orjson.loads(slot.admission)
            record, release = _settled(slot, data, prices)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            logger.warning("skipping an unreadable in-flight slot")
            continue
        records.append(record)
        if release is not None:
            releases.append(release)
    return records, releases


def _settled(
    slot: SlotView, data: dict[str, Any], prices: Mapping[str, ModelPrice]
) -> tuple[UsageRecord, Release | None]:
    created = as_utc(datetime.fromisoformat(data["created_at"]))
    assert created is not None
    record = UsageRecord(
        id=data["id"],
        request_id=data["request_id"],
        created_at=created,
        key_id=data["key_id"],
        org_id=data["org_id"],
        model=data["model"],
        endpoint=data["endpoint"],
        status=slot.status or NO_RESPONSE_STATUS,
        prompt_tokens=slot.prompt_tokens,
        completion_tokens=slot.completion_tokens,
        cached_tokens=0,
        latency_ms=0.0,
        cost_nanos=cost_nanos(
            prices, data["model"] or None, slot.prompt_tokens, slot.completion_tokens
        ),
        interrupted=True,
    )
    if slot.state is not SlotState.RUNNING:
        return record, None
    plan = Plan(
        tag=data["tag"],
        rules=tuple(
            Rule(key, Kind(kind), Measure(measure), limit, cost, window_s)
            for key, kind, measure, limit, cost, window_s in data["rules"]
        ),
    )
    used = slot.prompt_tokens + slot.completion_tokens
    return record, Release(plan, data["lease_id"], used)
