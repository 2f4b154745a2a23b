"""OpenAI's rate-limit headers and the 429 that goes with them."""

from __future__ import annotations

import math

from api.errors import RateLimitError
from api.limits.limiter import Counter, Decision
from api.limits.rules import Kind, Measure, Plan, Rule


class QuotaExceededError(RateLimitError):
    error_type = "insufficient_quota"
    code = "insufficient_quota"


def format_reset(seconds: float) -> str:
    """Go-style durations as OpenAI sends them: ``20ms``, ``1s``, ``1.5s``, ``6m0s``."""
    millis = max(0, math.ceil(seconds * 1000))
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rate_limit_headers(plan: Plan, decision: Decision) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` for the tightest bucket."""
    tightest: dict[Measure, tuple[Rule, Counter]] = {}
    # One pass over the plan (this runs for every request): per measure, the bucket with the
    # fewest left, then the longest reset; the first one wins a tie.
    for rule, counter in zip(plan.rules, decision.counters, strict=True):
        best = tightest.get(rule.measure)
        if rule.kind is Kind.BUCKET and (best is None or _tighter(counter, best[1])):
            tightest[rule.measure] = (rule, counter)
    headers: dict[str, str] = {}
    for measure in (Measure.REQUESTS, Measure.TOKENS):
        if measure in tightest:
            rule, counter = tightest[measure]
            headers[f"x-ratelimit-limit-{measure}"] = str(rule.limit)
            headers[f"x-ratelimit-remaining-{measure}"] = str(counter.remaining)
            headers[f"x-ratelimit-reset-{measure}"] = format_reset(counter.reset_s)
    return headers


def _tighter(counter: Counter, than: Counter) -> bool:
    return (counter.remaining, -counter.reset_s) < (than.remaining, -than.reset_s)


def rejection(decision: Decision, headers: dict[str, str]) -> RateLimitError:
    """The 429 for a denied decision, with ``Retry-After`` and ``retry-after-ms``."""
    wait = decision.retry_after_s
    retry = {
        "retry-after": str(max(1, math.ceil(wait))),
        "retry-after-ms": str(math.ceil(wait * 1000)),
    }
    rule = decision.blocked
    error_class = QuotaExceededError if rule and rule.kind is Kind.QUOTA else RateLimitError
    return error_class(_message(rule, wait), headers={**headers, **retry})


def _message(rule: Rule | None, wait: float) -> str:
    if rule is None:
        return f"Rate limit reached. Please try again in {format_reset(wait)}."
    what = {
        Kind.BUCKET: f"{rule.measure} per min",
        Kind.QUOTA: "tokens per period (quota)",
        Kind.LEASE: "concurrent requests",
    }[rule.kind]
    scope = "organization" if rule.key.startswith("o") else "API key"
    if rule.kind in (Kind.BUCKET, Kind.LEASE) and rule.cost > rule.limit:
        return (
            f"Request too large for {what} of this {scope}: "
            f"Limit {rule.limit}, Requested {rule.cost}."
        )
    return (
        f"Rate limit reached for {what} of this {scope}: Limit {rule.limit}. "
        f"Please try again in {format_reset(wait)}."
    )
