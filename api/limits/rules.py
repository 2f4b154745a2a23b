"""What one admission checks: a list of counters, each with its kind, limit and cost.

Every counter of a request lives under its organization's hash tag, so one Lua script can
check and take them all atomically on one Redis Cluster slot.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from api.auth.identity import Identity
from api.settings import ModelLimits, TierLimits


class Kind(StrEnum):
    BUCKET = "bucket"  # token bucket refilled continuously over window_s
    QUOTA = "quota"  # counter that resets when its period (window_s from now) ends
    # Concurrent generations: one lease per choice of a request (its cost), all expiring after
    # window_s; the first carries the request's lease id, the others ``{id}#{j}``.
    LEASE = "lease"


class Measure(StrEnum):
    REQUESTS = "requests"
    TOKENS = "tokens"
    CONCURRENCY = "concurrency"


@dataclass(frozen=True, slots=True)
class Rule:
    key: str
    kind: Kind
    measure: Measure
    limit: int
    cost: int
    window_s: float


@dataclass(frozen=True, slots=True)
class Demand:
    """What a request asks for: its model (if known), tokens to reserve, and the generations
    it runs at once (each holds a concurrency slot)."""

    model: str | None = None
    tokens: int = 0
    choices: int = 1


@dataclass(frozen=True, slots=True)
class Plan:
    tag: str
    rules: tuple[Rule, ...] = field(default_factory=tuple)


def plan_admission(identity: Identity, demand: Demand, now: datetime, lease_s: float) -> Plan:
    """The counters a request takes: key and organization, overall and for its model."""
    rules: list[Rule] = []
    for owner, tier in ((f"k:{identity.key_id}", identity.key_tier), ("o", identity.org_tier)):
        rules += _rate_rules(owner, tier, demand.tokens)
        rules += _quota_rules(owner, tier, demand.tokens, now)
        if tier.max_concurrent is not None:
            rules.append(
                Rule(
                    f"{owner}:conc",
                    Kind.LEASE,
                    Measure.CONCURRENCY,
                    tier.max_concurrent,
                    max(demand.choices, 1),
                    lease_s,
                )
            )
        if demand.model is not None and demand.model in tier.models:
            rules += _rate_rules(
                f"{owner}:m:{demand.model}", tier.models[demand.model], demand.tokens
            )
    return Plan(tag=f"o:{identity.org_id}", rules=tuple(rules))


@functools.lru_cache(maxsize=4096)  # plans are immutable; recent clients reuse theirs
def plan_ip(address: str, requests_per_minute: int) -> Plan:
    rule = Rule("rpm", Kind.BUCKET, Measure.REQUESTS, requests_per_minute, 1, 60.0)
    return Plan(tag=f"ip:{address}", rules=(rule,))


def _rate_rules(owner: str, limits: ModelLimits, tokens: int) -> list[Rule]:
    rules = []
    if limits.requests_per_minute is not None:
        rules.append(
            Rule(f"{owner}:rpm", Kind.BUCKET, Measure.REQUESTS, limits.requests_per_minute, 1, 60.0)
        )
    if limits.tokens_per_minute is not None:
        rules.append(
            Rule(
                f"{owner}:tpm", Kind.BUCKET, Measure.TOKENS, limits.tokens_per_minute, tokens, 60.0
            )
        )
    return rules


def _quota_rules(owner: str, tier: TierLimits, tokens: int, now: datetime) -> list[Rule]:
    rules = []
    if tier.tokens_per_day is not None:
        day_end = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
        rules.append(
            Rule(
                f"{owner}:day:{now.year:04d}{now.month:02d}{now.day:02d}",
                Kind.QUOTA,
                Measure.TOKENS,
                tier.tokens_per_day,
                tokens,
                float(day_end),
            )
        )
    if tier.tokens_per_month is not None:
        days = calendar.monthrange(now.year, now.month)[1]
        month_end = (days - now.day) * 86400 + 86400 - (now.hour * 3600 + now.minute * 60)
        rules.append(
            Rule(
                f"{owner}:month:{now.year:04d}{now.month:02d}",
                Kind.QUOTA,
                Measure.TOKENS,
                tier.tokens_per_month,
                tokens,
                float(month_end),
            )
        )
    return rules
